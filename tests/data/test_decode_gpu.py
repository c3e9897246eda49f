"""``--decode gpu`` on a machine without CUDA: what can be checked here.

nvJPEG itself runs only on a GPU (benchmarks/gpu/check.py measures it there). Here the
decoder's batching, its fallbacks to the CPU decoder, the resize on torch tensors and the
content hash run for real on torch's CPU device, with the CPU JPEG decoder standing in for the
batched nvJPEG call (the one line that differs on a GPU); refusals run through the CLI.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from bottleneck.cli import main
from bottleneck.data import images
from bottleneck.data.decode import decode_bytes
from bottleneck.data.resize import resize_bilinear
from tests.data.encoded import jpeg, jpeg_kinds, other_formats, photo

torch = pytest.importorskip("torch")
from bottleneck.data.decode_gpu import GpuDecoder, gpu_decode_problem  # noqa: E402


def cpu_jpeg_batch(datas: list) -> list:
    """Stands in for torchvision's batched nvJPEG call: a batch with one bad file fails whole,
    with a RuntimeError, as torchvision's does."""
    try:
        return [torch.from_numpy(decode_bytes(d.numpy().tobytes())).permute(2, 0, 1)
                for d in datas]
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None


@pytest.mark.parametrize("shape,size", [((123, 171), 64), ((40, 30), 96), ((64, 64), 64),
                                        ((255, 97), 224)])
def test_resize_on_torch_equals_tensorflows_bilinear(shape, size):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    decoder = GpuDecoder(size, device="cpu", jpeg_batch=cpu_jpeg_batch)
    ours = decoder.resize(torch.from_numpy(image).permute(2, 0, 1)).numpy()
    assert ours.shape == (size, size, 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, resize_bilinear(image, size), atol=2e-3)


def test_every_kind_decodes_as_on_the_cpu_and_bad_files_say_why():
    files = {**{f"jpeg-{k}": v for k, v in jpeg_kinds().items()}, **other_formats()}
    good = jpeg()
    bad = {"truncated": good[:len(good) // 2], "garbage": b"not an image at all",
           "empty": b"", "corrupt-scan": good[:400] + bytes(600) + good[-2:]}
    names = list(files) + list(bad)
    decoder = GpuDecoder(48, device="cpu", jpeg_batch=cpu_jpeg_batch)
    found = decoder.rows([*files.values(), *bad.values()])
    for name, data, got in zip(names, [*files.values(), *bad.values()], found, strict=True):
        try:
            expected = decode_bytes(data)
        except ValueError as exc:
            assert got == str(exc), name  # a failure, with the CPU decoder's reason
            continue
        assert not isinstance(got, str), f"{name}: {got}"
        pixels, digest = got
        assert digest == images.content_hash(expected), name
        np.testing.assert_allclose(pixels.numpy(), resize_bilinear(expected, 48), atol=2e-3)
    assert all(isinstance(found[names.index(k)], str) for k in ("truncated", "garbage", "empty"))


def test_a_failing_batch_is_decoded_one_by_one():
    """One corrupt JPEG (ending in its end marker, so it goes to the batch) fails the batch;
    the others still come out, and it gets its reason."""
    good = jpeg(photo()[:64, :64])
    corrupt = good[:300] + b"\xff\xd0" * 50 + good[-2:]
    calls = []

    def batch(datas):
        calls.append(len(datas))
        return cpu_jpeg_batch(datas)

    try:
        decode_bytes(corrupt)
    except ValueError:
        pass
    else:
        pytest.skip("the corrupt JPEG happens to decode")
    found = GpuDecoder(32, device="cpu", jpeg_batch=batch).rows([good, corrupt, good])
    assert calls == [3, 1, 1, 1] and isinstance(found[1], str)
    assert found[0][1] == found[2][1] == images.content_hash(decode_bytes(good))


def test_the_problem_is_named_on_this_process_backend():
    problem = gpu_decode_problem()  # TensorFlow runs the tests in this process
    assert problem and problem.startswith("--decode gpu runs on the PyTorch backend")


def test_cli_refuses_gpu_decode_in_one_line(tmp_path, image_folder):
    for extra, says in ((["--backend", "tensorflow"], "PyTorch backend"),
                        (["--augment", "1"], "does not combine with --augment"),
                        (["--fast-decode"], "does not combine with --fast-decode")):
        out = tmp_path / f"cache{len(says)}"
        result = CliRunner().invoke(main, [
            "extract", str(image_folder), "-b", "vgg16", "--weights", "none", "--image-size", "32",
            "--out", str(out), "--decode", "gpu", *extra])
        assert result.exit_code == 2, result.output
        line = result.output.strip()
        assert says in line and "\n" not in line and "Traceback" not in line
        assert not out.exists()
