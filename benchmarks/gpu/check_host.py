"""check.py's sections that need no Keras: the machine, the throughput JPEGs, the decode-only
rate, and timm / torchvision on the same GPU (a worker of its own, PyTorch alone)."""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from typing import Any

import kitlib
import numpy as np
from check_ctx import Context, Skip, gpu_memory, reset_gpu_peak

VERSIONS = ("bottleneck", "keras", "jax", "jaxlib", "jax-cuda13-plugin", "torch", "torchvision",
            "timm", "numpy", "h5py", "scikit-learn", "scipy", "pillow", "simplejpeg", "cityhash",
            "skops", "ml-dtypes", "optree", "absl-py", "rich", "packaging", "psutil")
JPEG_SIZE = (375, 500)  # a typical ImageNet photo (H, W)
DISTINCT = 256  # distinct encodings among the generated JPEGs


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def unmet_requirements(extras: tuple[str, ...] = ("jax", "torch")) -> list[str]:
    """Requirements of bottleneck (with ``extras``) and of its requirements that the installed
    packages do not satisfy, one level down (what pip's resolver checked offline)."""
    from packaging.requirements import Requirement

    unmet, seen = [], set()
    todo = [("bottleneck", e) for e in extras]
    while todo:
        name, extra = todo.pop()
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            unmet.append(f"{name}: not installed")
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker and not req.marker.evaluate({"extra": extra or ""}):
                continue
            found = _version(req.name)
            if found is None or (req.specifier and found.split("+")[0] not in req.specifier):
                unmet.append(f"{line} (from {name}; installed: {found})")
            elif req.name not in seen and name == "bottleneck":
                seen.add(req.name)
                todo.append((req.name, ""))
    return sorted(set(unmet))


def environment(ctx: Context) -> dict[str, Any]:
    """Python, cores, GPU (nvidia-smi), package versions, which bottleneck runs, and whether
    every requirement is met by what is installed."""
    gpu = None
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=20)
        gpu = done.stdout.strip() or done.stderr.strip()
    import bottleneck

    return {"python": sys.version.split()[0], "executable": sys.executable,
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)), "gpu": gpu,
            "bottleneck_from": bottleneck.__file__,
            "versions": {n: _version(n) for n in VERSIONS}, "unmet_requirements":
            unmet_requirements(),
            "kit": {k: ctx.kit_info.get(k) for k in ("created", "quick", "size_mib")}
            | {"resolver_ok": (ctx.kit_info.get("resolver_check") or {}).get("ok")}}


def jpegs(ctx: Context) -> dict[str, Any]:
    """n and 4n ImageNet-size JPEGs (500×375, quality 90, 4:2:0), made here from crops of the
    kit's photos; the small set is hard links into the big one."""
    import simplejpeg
    from PIL import Image

    from bottleneck.data.decode import decode_file
    from bottleneck.data.loader import ordered_map

    photos = [decode_file(p) for p in sorted((ctx.kit / kitlib.IMAGES).rglob("*.jpg"))]
    n_small = ctx.args.e2e_images
    n_big = 4 * n_small
    height, width = ctx.args.jpeg_size or JPEG_SIZE
    rng = np.random.default_rng(0)

    def encode(i: int) -> bytes:
        picture = photos[i % len(photos)]
        h, w = picture.shape[:2]
        ch, cw = int(h * rng.uniform(0.7, 1.0)), int(w * rng.uniform(0.7, 1.0))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = Image.fromarray(np.ascontiguousarray(picture[top:top + ch, left:left + cw]))
        pixels = np.asarray(crop.resize((width, height), Image.BILINEAR))
        return simplejpeg.encode_jpeg(np.ascontiguousarray(pixels), quality=90,
                                      colorspace="RGB", colorsubsampling="420")

    encoded = [encode(i) for i in range(min(DISTINCT, n_big))]
    root = ctx.work / "jpegs"
    shutil.rmtree(root, ignore_errors=True)
    paths = [root / "big" / f"c{i % 4}" / f"{i:06d}.jpg" for i in range(n_big)]
    for path in {p.parent for p in paths}:
        path.mkdir(parents=True)

    def write(i: int) -> None:
        paths[i].write_bytes(encoded[i % len(encoded)])
        if i < n_small:
            small = root / "small" / paths[i].relative_to(root / "big")
            small.parent.mkdir(parents=True, exist_ok=True)
            os.link(paths[i], small)

    for _ in ordered_map(write, range(n_big), 8, ahead=64):
        pass
    sizes = [len(e) for e in encoded]
    return {"small": n_small, "big": n_big, "size_hw": [height, width], "distinct": len(encoded),
            "mean_kib": round(float(np.mean(sizes)) / 1024, 1)}


def _pass(paths: list[Path], work: Any, threads: int) -> float:
    from bottleneck.data.loader import ordered_map

    start = time.perf_counter()
    for _ in ordered_map(work, paths, threads, ahead=4 * threads):
        pass
    return len(paths) / (time.perf_counter() - start)


def decode(ctx: Context) -> dict[str, Any]:
    """Decode-only rates over the 4n JPEGs on all usable cores, through bottleneck's own decode
    (simplejpeg), resize and content hash in threads: decode alone; decode + resize + hash
    (what extraction's decode threads do per image); then per core (one thread, 256 files):
    decode alone, decode + resize + hash as extraction runs it (the compiled kernels where
    numba loads) and as it ran before issue 27 (the NumPy resize, farmhash over a copy), and
    their ratio. ``compiled`` says whether numba loaded; ``first_call_s`` is the kernels'
    first resize + hash in this process (compiling or loading the cache). Best of two passes
    each."""
    from bottleneck.data import images
    from bottleneck.data.fingerprint import Fingerprint64
    from bottleneck.data.jit import compiled
    from bottleneck.data.resize import resize_bilinear_numpy

    big = ctx.work / "jpegs" / "big"
    if not big.is_dir():
        raise Skip("no JPEGs: the jpegs section did not run")
    paths = sorted(big.rglob("*.jpg"))
    threads = len(os.sched_getaffinity(0))
    size = ctx.lite0_size

    def full(path: Path) -> int:
        image = images.decode_file(path)
        images.resize(image, size)
        return images.content_hash(image)

    def before(path: Path) -> int:  # issue 27's "old" per-image work
        image = images.decode_file(path)
        resize_bilinear_numpy(image, size)
        shape = np.asarray(image.shape, "<i4").view(np.uint8)
        return int(Fingerprint64(memoryview(np.concatenate([shape, image.reshape(-1)]))))

    start = time.perf_counter()
    full(paths[0])  # the kernels compile (or load from numba's cache) here, not in a pass
    results: dict[str, Any] = {"threads": threads, "images": len(paths), "image_size": size,
                               "compiled": compiled() is not None,
                               "first_call_s": round(time.perf_counter() - start, 3)}
    if not results["compiled"]:  # the device's Python may lack numba: its rows say so
        results["note"] = ("numba did not load: decode_resize_hash* ran the NumPy resize and "
                           "farmhash, so per_core_new_over_old is ~1 by construction")
    passes = {"decode_only": (images.decode_file, paths, threads),
              "decode_resize_hash": (full, paths, threads),
              "decode_only_1_thread": (images.decode_file, paths[:256], 1),
              "decode_resize_hash_1_thread": (full, paths[:256], 1),
              "decode_resize_hash_numpy_1_thread": (before, paths[:256], 1)}
    for label, (work, chosen, n) in passes.items():
        rates = [_pass(chosen, work, n) for _ in range(2)]
        results[label] = {"img_s": round(max(rates), 1), "passes": [round(r, 1) for r in rates]}
        ctx.partial(results)
    one = {k: results[k]["img_s"] for k in passes if k.endswith("_1_thread")}
    results["per_core_new_over_old"] = round(
        one["decode_resize_hash_1_thread"] / one["decode_resize_hash_numpy_1_thread"], 3)
    results["per_core_time_over_decode"] = round(
        one["decode_only_1_thread"] / one["decode_resize_hash_1_thread"], 3)
    return results


def _models() -> dict[str, Any]:
    """timm's tf_efficientnet_lite0 and torchvision's mobilenet_v2, random weights, pooled
    features (no classifier), where installed."""
    factories: dict[str, Any] = {}
    if importlib.util.find_spec("timm"):
        import timm

        factories["timm tf_efficientnet_lite0"] = lambda: timm.create_model(
            "tf_efficientnet_lite0", pretrained=False, num_classes=0)
    if importlib.util.find_spec("torchvision"):
        import torch
        import torchvision

        def mobilenet() -> Any:
            model = torchvision.models.mobilenet_v2(weights=None)
            model.classifier = torch.nn.Identity()
            return model

        factories["torchvision mobilenet_v2"] = mobilenet
    return factories


def reference(ctx: Context) -> dict[str, Any]:
    """The same model families in plain PyTorch on the same device: bf16 autocast and fp32
    (TF32 off, as bottleneck's fp32), channels-last, inference mode, a device-resident random
    batch of the same size."""
    if not importlib.util.find_spec("torch"):
        raise Skip("torch is not installed")
    if not (importlib.util.find_spec("timm") or importlib.util.find_spec("torchvision")):
        raise Skip("neither timm nor torchvision is installed")
    import torch
    from check_sections import rate

    factories = _models()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() and ctx.devices != "cpu" else "cpu"
    size, batch = ctx.lite0_size, ctx.batch_size
    images = (torch.rand(batch, 3, size, size, device=device) * 255).to(
        memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    results: dict[str, Any] = {"device": device, "image_size": size, "batch": batch}
    for label, factory in factories.items():
        model = factory().eval().to(device, memory_format=torch.channels_last)
        for precision in ("bf16", "fp32"):
            if ctx.left() < 3:
                results[f"{label}/{precision}"] = {"skipped": "the section's time cap was reached"}
                continue
            reset_gpu_peak("reference")

            def call(model: Any = model, precision: str = precision) -> None:
                with torch.inference_mode(), torch.autocast(
                        device, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    model(images)
                sync()

            seconds = min(ctx.min_seconds, max(0.0, ctx.left() / 6))
            results[f"{label}/{precision}"] = rate(call, batch, seconds) | gpu_memory("reference")
            ctx.partial(results)
    return results


SECTIONS = {"environment": environment, "jpegs": jpegs, "decode": decode,
            "reference": reference}
