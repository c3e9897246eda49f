"""Caches and datasets at URLs against local paths, on moto's S3 emulator on loopback.

    python benchmarks/bench_remote.py [--images 2000] [--backbone mobilenet_v2]
                                      [--image-size 96] [--latency-ms 20] [--rounds 3]
                                      [--json PATH]
    python benchmarks/bench_remote.py --tiny          # a check that the script runs (seconds)

Four figures, each measured side by side in this one run (the emulator is a Python server on
the same machine: the figures show what bottleneck adds, not what a real store costs):

(i)   extract into s3:// vs into a local folder: seconds, ratio;
(ii)  a WebDataset source (the same images in .tar shards) vs the folder: extract seconds;
(iii) fit (logreg) from the s3:// cache, first (cold read-through cache) and second (warm),
      vs from the local cache: seconds, ratios;
(iv)  extract from a dataset at s3:// through a server that delays every request by
      ``--latency-ms`` vs the same without delay: seconds, ratio (how well the concurrent
      reads hide latency).

Every pair runs ``--rounds`` times, A and B alternated and the order flipped each round;
the script prints the medians and the median of the per-round ratios against the targets
(issue 25). Features come from random weights (``--weights none``: no network); the images
are generated.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}


class Emulator:
    """moto's S3 app served on loopback, every request delayed by ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        import logging

        from moto.server import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = DomainDispatcherApplication(create_backend_app)

        def delayed(environ: dict[str, Any], start_response: Any) -> Any:
            if delay:
                time.sleep(delay)
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, delayed, threaded=True,
                                  request_handler=MotoRequestHandler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def options(self) -> dict[str, Any]:
        """As a user's: fsspec keeps one client per endpoint in the process (the tests'
        ``skip_instance_cache`` would build a new S3 client, 0.1-0.4 s, at every open)."""
        return {"endpoint_url": self.endpoint}

    def stop(self) -> None:
        self.server.shutdown()


def write_images(root: Path, count: int, classes: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)
        pixels[:, :, i % 3] //= 2
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)
    return root


def write_tars(images: Path, out: Path, per_tar: int = 500) -> str:
    """The folder's images as WebDataset shards (NNNNN.jpg + NNNNN.cls)."""
    out.mkdir(parents=True)
    files = sorted(images.rglob("*.jpg"))
    classes = sorted({f.parent.name for f in files})
    count = (len(files) + per_tar - 1) // per_tar
    for t in range(count):
        with tarfile.open(out / f"{t:05d}.tar", "w") as tar:
            for f in files[t * per_tar:(t + 1) * per_tar]:
                for name, data in ((f"{f.stem}.jpg", f.read_bytes()),
                                   (f"{f.stem}.cls",
                                    str(classes.index(f.parent.name)).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return str(out / f"{{00000..{count - 1:05d}}}.tar")


def timed(function: Any, *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (A/B alternated, the order flipped each round)")
    parser.add_argument("--tiny", action="store_true", help="a quick check that it runs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.tiny:
        args.images, args.backbone, args.image_size, args.rounds = 24, "vgg16", 32, 2
    warnings.filterwarnings("ignore")
    os.environ.update(CREDENTIALS)
    work = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    os.environ["BOTTLENECK_LOCAL_CACHE"] = str(work / "local-cache")

    import s3fs

    import bottleneck

    fast, slow = Emulator(), Emulator(args.latency_ms / 1000)
    os.environ["BOTTLENECK_STORAGE_OPTIONS"] = json.dumps(fast.options())
    fs = s3fs.S3FileSystem(**fast.options())
    fs.mkdir("bench")
    images = write_images(work / "images", args.images)
    tars = write_tars(images, work / "tars", per_tar=max(8, args.images // 8))
    common = {"backbone": args.backbone, "weights": "none", "image_size": args.image_size,
              "progress": False, "shard_size": max(8, args.images // 8)}
    bottleneck.extract(str(images), out=work / "warmup", **common)  # imports, first build
    bottleneck.fit(str(work / "warmup"), head="logreg", out=work / "warmup-model")

    fs.put(str(images), "bench/photos", recursive=True)
    samples: dict[str, list[float]] = {k: [] for k in (
        "local", "s3", "folder", "tar", "fit_local", "fit_first", "fit_second", "zero",
        "delayed")}

    def run_extract(r: int) -> None:
        samples["local"].append(timed(bottleneck.extract, str(images), out=work / f"l{r}",
                                      **common))

    def run_s3(r: int) -> None:
        samples["s3"].append(timed(bottleneck.extract, str(images), out=f"s3://bench/c{r}",
                                   **common))

    def run_folder(r: int) -> None:
        samples["folder"].append(timed(bottleneck.extract, str(images), out=work / f"f{r}",
                                       **common))

    def run_tar(r: int) -> None:
        samples["tar"].append(timed(bottleneck.extract, tars, out=work / f"w{r}", **common))

    def run_fit_local(r: int) -> None:
        samples["fit_local"].append(timed(bottleneck.fit, str(work / "l0"), head="logreg",
                                          out=work / f"m{r}"))

    def run_fit_remote(r: int) -> None:  # a fresh read-through cache: cold, then warm
        os.environ["BOTTLENECK_LOCAL_CACHE"] = str(work / f"local-cache-{r}")
        samples["fit_first"].append(timed(bottleneck.fit, "s3://bench/c0", head="logreg",
                                          out=work / f"m1-{r}"))
        samples["fit_second"].append(timed(bottleneck.fit, "s3://bench/c0", head="logreg",
                                           out=work / f"m2-{r}"))
        os.environ["BOTTLENECK_LOCAL_CACHE"] = str(work / "local-cache")

    def run_dataset(server: Emulator, key: str, r: int) -> None:
        os.environ["BOTTLENECK_STORAGE_OPTIONS"] = json.dumps(server.options())
        samples[key].append(timed(bottleneck.extract, "s3://bench/photos",
                                  out=work / f"{key}{r}", **common))
        os.environ["BOTTLENECK_STORAGE_OPTIONS"] = json.dumps(fast.options())

    pairs = [(run_extract, run_s3), (run_folder, run_tar), (run_fit_local, run_fit_remote),
             (lambda r: run_dataset(fast, "zero", r), lambda r: run_dataset(slow, "delayed", r))]
    for r in range(args.rounds):  # A/B alternated, the order flipped every round
        for first, second in pairs:
            for step in ((first, second) if r % 2 == 0 else (second, first)):
                step(r)
    fast.stop()
    slow.stop()

    med = {k: statistics.median(v) for k, v in samples.items()}

    def ratio(top: str, bottom: str) -> float:  # the median of the per-round ratios
        return statistics.median(a / b for a, b in zip(samples[top], samples[bottom],
                                                        strict=True))

    figures: dict[str, Any] = {
        "images": args.images, "backbone": args.backbone, "image_size": args.image_size,
        "rounds": args.rounds, "latency_ms": args.latency_ms, "seconds": samples,
        "medians_s": med,
        "ratios": {"extract_s3_rate_over_local": ratio("local", "s3"),
                   "tar_rate_over_folder": ratio("folder", "tar"),
                   "fit_first_s_over_local": ratio("fit_first", "fit_local"),
                   "fit_second_s_over_local": ratio("fit_second", "fit_local"),
                   "delayed_rate_over_zero": ratio("zero", "delayed")}}
    x = figures["ratios"]

    def verdict(value: float, target: float, above: bool) -> str:
        return "met" if (value >= target if above else value <= target) else "NOT met"

    print(f"{args.images} images, {args.backbone} at {args.image_size} px, moto on loopback; "
          f"medians of {args.rounds} interleaved rounds (ratios: median of per-round ratios)")
    print(f"(i)   extract: local {med['local']:.2f} s, s3:// {med['s3']:.2f} s; rate "
          f"{x['extract_s3_rate_over_local']:.2f}x local (target >= 0.9: "
          f"{verdict(x['extract_s3_rate_over_local'], 0.9, True)})")
    print(f"(ii)  source: folder {med['folder']:.2f} s, WebDataset tar {med['tar']:.2f} s; rate "
          f"{x['tar_rate_over_folder']:.2f}x the folder (target >= 1.0: "
          f"{verdict(x['tar_rate_over_folder'], 1.0, True)})")
    print(f"(iii) fit logreg: local {med['fit_local']:.2f} s, s3:// first "
          f"{med['fit_first']:.2f} s ({x['fit_first_s_over_local']:.2f}x, target <= 1.5: "
          f"{verdict(x['fit_first_s_over_local'], 1.5, False)}), second "
          f"{med['fit_second']:.2f} s ({x['fit_second_s_over_local']:.2f}x, target <= 1.05: "
          f"{verdict(x['fit_second_s_over_local'], 1.05, False)})")
    print(f"(iv)  dataset at s3://: {med['zero']:.2f} s, with {args.latency_ms:.0f} ms per "
          f"request {med['delayed']:.2f} s; rate {x['delayed_rate_over_zero']:.2f}x "
          f"(target >= 0.8: {verdict(x['delayed_rate_over_zero'], 0.8, True)})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)  # the images, tars, caches and models it made


if __name__ == "__main__":
    main()
