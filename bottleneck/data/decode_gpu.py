"""``--decode gpu``: JPEGs decoded by nvJPEG on a CUDA GPU and resized there (PyTorch backend).

On a GPU the CPU decoder is the bound (16 cores decode ~10k photos/s; one GPU computes
EfficientNet-Lite0 in bf16 at ~25k/s). torchvision's batched ``decode_jpeg(device="cuda")``
hands the work to nvJPEG. Its pixels are nvJPEG's, not libjpeg-turbo's (its IDCT and chroma
upsampling differ by a few levels), so a cache made with it is another config (``decode``:
``gpu``) and ``predict`` decodes its photos the same way.

What nvJPEG is not given goes through the CPU decoder (:mod:`.decode`) and is uploaded: other
formats, CMYK/YCCK JPEGs, a JPEG whose data does not end with its end-of-image marker (the CPU
decoder decides whether it is truncated), and any file a batch decode rejects. A file neither
can read is a failure with the CPU decoder's reason. The resize is torch's bilinear
(half-pixel centres, no antialias): TensorFlow's, within float rounding. The content hash is
taken of the decoded pixels, copied to the host.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.data.decode import decode_bytes, jpeg_info
from bottleneck.data.fingerprint import content_hash
from bottleneck.errors import UserError

DECODES = ("cpu", "gpu")
GPU_DECODE = ("JPEG decoded by nvJPEG on the GPU (torchvision.io.decode_jpeg), other formats "
              "and CMYK as on the CPU; bilinear resize on the GPU (half-pixel, no antialias)")
JpegBatch = Callable[[list[Any]], list[Any]]  # encoded uint8 tensors -> uint8 3×H×W tensors


def gpu_decode_problem() -> str | None:
    """Why ``--decode gpu`` cannot run in this process, or None when it can."""
    from bottleneck.backend import active_backend

    if active_backend() != "torch":
        return ("--decode gpu runs on the PyTorch backend: add --backend torch (a CUDA build "
                "of torch with torchvision), or use --decode cpu.")
    import torch

    try:
        import torchvision.io  # noqa: F401
    except (ImportError, RuntimeError, OSError):  # a CPU-only torch rejects a CUDA torchvision
        return ("--decode gpu needs torchvision built for this torch "
                f"({torch.__version__}): pip install torchvision, or use --decode cpu.")
    if not torch.cuda.is_available():
        return "--decode gpu needs a CUDA GPU, and torch sees none; use --decode cpu."
    return None


def check_gpu_decode() -> None:
    """Refuse in one line where ``--decode gpu`` cannot run."""
    problem = gpu_decode_problem()
    if problem:
        raise UserError(problem)


def nvjpeg_batch(device: Any) -> JpegBatch:
    """torchvision's batched nvJPEG decode to RGB on ``device``."""
    from torchvision.io import ImageReadMode, decode_jpeg

    return lambda datas: decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)


def _for_nvjpeg(data: bytes) -> bool:
    """A grey or YCbCr JPEG that ends with its end-of-image marker."""
    if data[:3] != b"\xff\xd8\xff" or data.rstrip(b"\0")[-2:] != b"\xff\xd9":
        return False
    info = jpeg_info(data)
    return info is not None and info[2] in (1, 3)


class GpuDecoder:
    """Encoded images → (resized float32 H×W×3 pixels on the device, content hash), in
    batches. ``jpeg_batch`` decodes a list of JPEGs at once (default: nvJPEG on ``device``)."""

    def __init__(self, image_size: int, device: str = "cuda",
                 jpeg_batch: JpegBatch | None = None) -> None:
        import torch

        self.torch, self.size = torch, image_size
        self.device = torch.device(device)
        self.jpeg_batch = jpeg_batch or nvjpeg_batch(self.device)

    def decode(self, datas: Sequence[bytes]) -> list[Any | str]:
        """Each image as uint8 3×H×W on the device, or the reason it cannot be read."""
        torch = self.torch
        found: list[Any | str] = [""] * len(datas)
        jpegs = [i for i, data in enumerate(datas) if _for_nvjpeg(data)]
        if jpegs:
            encoded = [torch.frombuffer(bytearray(datas[i]), dtype=torch.uint8) for i in jpegs]
            try:
                decoded = self.jpeg_batch(encoded)
            except RuntimeError:  # one bad file fails the batch: decode them one by one
                decoded = [self._one(data) for data in encoded]
            for i, image in zip(jpegs, decoded, strict=True):
                found[i] = image
        for i, data in enumerate(datas):
            if found[i] is None or isinstance(found[i], str):
                found[i] = self._on_cpu(data)
        return found

    def _one(self, encoded: Any) -> Any:
        try:
            return self.jpeg_batch([encoded])[0]
        except RuntimeError:
            return None  # the CPU decoder says why, or decodes it

    def _on_cpu(self, data: bytes) -> Any | str:
        try:
            pixels = decode_bytes(data)
        except ValueError as exc:
            return str(exc)
        if not pixels.flags.writeable:
            pixels = pixels.copy()
        return self.torch.from_numpy(pixels).permute(2, 0, 1).to(self.device)

    def resize(self, image: Any) -> Any:
        """uint8 3×H×W → float32 size×size×3 in 0..255 (TensorFlow's bilinear resize)."""
        batch = image[None].float()
        if tuple(batch.shape[-2:]) != (self.size, self.size):
            batch = self.torch.nn.functional.interpolate(
                batch, size=(self.size, self.size), mode="bilinear", align_corners=False,
                antialias=False)
        return batch[0].permute(1, 2, 0).contiguous()

    def rows(self, datas: Sequence[bytes]) -> list[tuple[Any, int] | str]:
        """Each image's resized pixels and content hash, or the reason it cannot be read."""
        out: list[tuple[Any, int] | str] = []
        for image in self.decode(datas):
            if isinstance(image, str):
                out.append(image)
                continue
            host = image.permute(1, 2, 0).contiguous().cpu().numpy()
            out.append((self.resize(image), content_hash(host)))
        return out


@functools.cache
def _decoder(image_size: int) -> GpuDecoder:
    return GpuDecoder(image_size)


def load_image_gpu(path: str | Path, image_size: int) -> np.ndarray:
    """One file decoded and resized as ``--decode gpu`` extraction does, on the host."""
    check_gpu_decode()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the file ({exc.strerror or exc})") from None
    if not data:
        raise ValueError("empty file (0 bytes)")
    found = _decoder(image_size).rows([data])[0]
    if isinstance(found, str):
        raise ValueError(found)
    return found[0].cpu().numpy()
