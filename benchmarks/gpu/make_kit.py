"""Build the device kit: everything check.py needs on the lent H200, at most 60 MiB.

    .venv/bin/python benchmarks/gpu/make_kit.py [--out bench-out/gpu-kit] [--quick]

Runs here, on the CPU, with TensorFlow. The kit holds: ``wheels/`` (CPython 3.12 manylinux
x86-64 wheels of what the device lacks, and this project's own wheel), ``weights/`` (the
converted EfficientNet-Lite0 ImageNet file, laid out as a bottleneck cache dir), ``images/``
(~64 generated ~480×360 JPEGs in class folders), ``reference.npz`` (their features from
``bottleneck.extract`` on TensorFlow, CPU, fp32: Lite0 ImageNet, and MobileNetV2 / VGG16 with
NumPy-seeded He-normal weights that the device regenerates, so they are not carried),
``fashion-mnist/`` (the four idx .gz files) and ``kit.json`` (what is where, digests, the
resolver check). It then runs pip's resolver offline for the device (kit_wheels.py) and
refuses to finish, exit 1, if that fails or the kit is over ``--max-mib``.

``--quick`` (for the tests): 6 images, small references, Fashion-MNIST linked not copied, no
download and no resolver check; nothing touches the network.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]

import kit_wheels  # noqa: E402
import kitlib  # noqa: E402
import numpy as np  # noqa: E402

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "china", "flower")


def photo(name: str) -> np.ndarray:
    """One of scikit-image's or scikit-learn's sample photographs (bundled, offline)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    return getattr(skimage.data, name)()


def make_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEGs of ImageNet-like sizes (~480×360, some portrait), in one class folder
    per source photo: crops, flips, brightness and contrast, quality 75-95, 4:4:4 / 4:2:2 /
    4:2:0, a few progressive and a few grey."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    sources = {name: photo(name) for name in PHOTOS}
    paths = []
    for i in range(count):
        name = PHOTOS[i % len(PHOTOS)]
        picture = sources[name]
        h, w = picture.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = picture[top:top + ch, left:left + cw].astype(np.float32)
        crop = (crop - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
        crop = crop.clip(0, 255).astype(np.uint8)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        size = (int(rng.integers(440, 521)), int(rng.integers(330, 391)))
        image = Image.fromarray(np.ascontiguousarray(crop)).resize(
            size[::-1] if i % 5 == 4 else size, Image.BILINEAR)
        if i % 9 == 8:
            image = image.convert("L")
        path = folder / name / f"{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=int(rng.choice([75, 85, 90, 95])),
                   subsampling=int(rng.choice([0, 1, 2])), progressive=i % 7 == 6)
        paths.append(path)
    return paths


def lite0_weights(kit: Path) -> Path:
    """Copy the converted Lite0 no-top file into ``kit/weights`` (converting it first if this
    machine has not yet)."""
    from bottleneck.backbones import lite0_weights as lite0

    source = lite0.efficientnet_lite0_weights(include_top=False)
    dest = kit / kitlib.WEIGHTS / source.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, dest)
    return dest


def references(kit: Path, refs: tuple[kitlib.Reference, ...], work: Path,
               backend: str = "tensorflow") -> list[dict]:
    """Extract every reference on ``backend``, CPU, fp32 through ``bottleneck.extract`` (the
    Lite0 file resolved from the kit, as on the device); save reference.npz."""
    saved = os.environ.get("BOTTLENECK_CACHE_DIR")
    os.environ["BOTTLENECK_CACHE_DIR"] = str(kit)  # resolve "imagenet" to the kit's file
    try:
        keys, arrays, records = _extract_references(kit, refs, work, backend)
    finally:
        if saved is None:
            os.environ.pop("BOTTLENECK_CACHE_DIR", None)
        else:
            os.environ["BOTTLENECK_CACHE_DIR"] = saved
    np.savez(kit / kitlib.REFERENCE, keys=np.asarray(keys, dtype=str), **arrays)
    return records


def _extract_references(kit: Path, refs: tuple[kitlib.Reference, ...], work: Path,
                        backend: str) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict]]:
    import bottleneck
    from bottleneck.backend import backend_version

    arrays: dict[str, np.ndarray] = {}
    records, keys = [], None
    for ref in refs:
        weights = kitlib.weights_arg(ref, kit, work)
        cache = bottleneck.extract(str(kit / kitlib.IMAGES), backbone=ref.backbone,
                                   weights=weights, image_size=ref.image_size,
                                   out=work / ref.name, backend=backend, devices="cpu",
                                   precision="fp32", batch_size=16, progress=False)
        data = cache.load(with_paths=True)
        order = np.argsort(data["paths"].astype(str))
        paths = data["paths"].astype(str)[order]
        if keys is not None and list(paths) != list(keys):
            raise SystemExit(f"error: {ref.name} has other rows than the first reference")
        keys = paths
        arrays[ref.name] = data["features"][order].astype(np.float32)
        config = cache.manifest.config
        records.append(ref.to_dict() | {
            "weights_digest": config["weights_digest"], "weights_name": config["weights_name"],
            "feature_shape": config["feature_shape"], "runtime": cache.manifest.runtime,
            backend: backend_version(backend)})
        print(f"reference {ref.name}: {arrays[ref.name].shape}", flush=True)
    return keys, arrays, records


def fashion_mnist(kit: Path, source: Path, link: bool) -> dict[str, str] | None:
    """The four idx files (copied; linked with ``link``), with their sha256."""
    if not all((source / name).is_file() for name in kitlib.FASHION_MNIST_FILES):
        if link:
            return None
        raise SystemExit(f"error: no Fashion-MNIST idx files in {source}; run `make data`.")
    dest = kit / kitlib.FASHION_MNIST
    dest.mkdir(parents=True, exist_ok=True)
    for name in kitlib.FASHION_MNIST_FILES:
        if link:
            (dest / name).symlink_to(source / name)
        else:
            shutil.copy(source / name, dest / name)
    return {name: kitlib.sha256_of(dest / name) for name in kitlib.FASHION_MNIST_FILES}


def wheels(kit: Path) -> tuple[list[dict], dict]:
    """Download the carried wheels, build ours, run the resolver check over them + stubs."""
    dest = kit / kitlib.WHEELS
    dest.mkdir(parents=True, exist_ok=True)
    kit_wheels.download(dest)
    kit_wheels.project_wheel(ROOT, dest)
    with tempfile.TemporaryDirectory() as stubs:
        device = kit_wheels.device_stubs(Path(stubs))
        check = kit_wheels.resolver_check(dest, Path(stubs))
    used = {r["name"] for r in check["resolved"] if r["from"] == "device"}
    check["device_versions_assumed"] = {k: v for k, v in device["assumed"].items() if k in used}
    check["device_versions_stated"] = {k: v for k, v in device["stated"].items() if k in used}
    listing = [{"file": p.name, "bytes": p.stat().st_size, "sha256": kitlib.sha256_of(p)}
               for p in sorted(dest.glob("*.whl"))]
    return listing, check


def build(out: Path, quick: bool, images: int, max_mib: float, fashion: Path,
          backend: str = "tensorflow") -> int:
    """Build the kit in a temp sibling of ``out`` and move it into place when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not (out / kitlib.KIT_JSON).is_file():
        raise SystemExit(f"error: {out} exists and is not a kit; remove it or pick --out.")
    kit = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with tempfile.TemporaryDirectory() as work:
            photos = make_photos(kit / kitlib.IMAGES, images)
            weights = lite0_weights(kit)
            refs = kitlib.QUICK_REFERENCES if quick else kitlib.FULL_REFERENCES
            records = references(kit, refs, Path(work), backend)
        fmnist = fashion_mnist(kit, fashion, link=quick)
        listing, check = ([], {"ok": None, "skipped": "--quick: no download, no resolver "
                                                     "check"}) if quick else wheels(kit)
        size = kitlib.folder_mib(kit)
        now = datetime.datetime.now(datetime.timezone.utc)
        info = {"format": kitlib.KIT_FORMAT, "quick": quick,
                "created": now.isoformat(timespec="seconds"),
                "images": {"folder": kitlib.IMAGES, "count": len(photos)},
                "weights": {"file": f"{kitlib.WEIGHTS}/{weights.name}",
                            "sha256": kitlib.sha256_of(weights)},
                "references": records, "reference_file": kitlib.REFERENCE,
                "fashion_mnist": {"folder": kitlib.FASHION_MNIST, "sha256": fmnist}
                if fmnist else None,
                "wheels": listing, "resolver_check": check, "size_mib": round(size, 2),
                "max_mib": max_mib}
        from bottleneck.storage.atomic import write_json

        write_json(kit / kitlib.KIT_JSON, info)
        print(f"resolver check: {_resolver_line(check)}")
        print(f"kit size: {size:.1f} MiB (limit {max_mib:g} MiB)")
        if check.get("ok") is False:
            print(check["pip_output"], file=sys.stderr)
            raise SystemExit("error: the resolver check failed; the kit is not finished.")
        if size > max_mib:
            raise SystemExit(f"error: the kit is {size:.1f} MiB, over {max_mib:g} MiB.")
        if out.exists():
            shutil.rmtree(out)
        os.replace(kit, out)
    finally:
        shutil.rmtree(kit, ignore_errors=True)
    print(f"kit: {out}")
    return 0


def _resolver_line(check: dict) -> str:
    if check.get("ok") is None:
        return check["skipped"]
    kit = [f"{r['name']} {r['version']}" for r in check["resolved"] if r["from"] == "kit"]
    device = [f"{r['name']} {r['version']}" for r in check["resolved"] if r["from"] == "device"]
    return (f"{'PASSED' if check['ok'] else 'FAILED'} (pip exit {check['returncode']}) for "
            f"{' + '.join(check['requirements'])}: from the kit {', '.join(kit)}; from the "
            f"device {', '.join(device)}; assumed device versions (not stated in its README): "
            f"{check.get('device_versions_assumed')}; unused kit wheels: "
            f"{check['unused_kit_wheels'] or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "gpu-kit")
    parser.add_argument("--quick", action="store_true", help="tiny kit for the tests, offline")
    parser.add_argument("--images", type=int, default=None, help="JPEGs (default 64; quick 6)")
    parser.add_argument("--max-mib", type=float, default=60.0)
    parser.add_argument("--fashion-mnist", type=Path, default=DEBIAN_FASHION_MNIST)
    parser.add_argument("--backend", default="tensorflow",
                        help="what computes the reference features (TensorFlow: the CPU "
                             "reference the issue asks for)")
    args = parser.parse_args(argv)
    images = args.images or (6 if args.quick else 64)
    return build(args.out.resolve(), args.quick, images, args.max_mib, args.fashion_mnist,
                 args.backend)


if __name__ == "__main__":
    sys.exit(main())
