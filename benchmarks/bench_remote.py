"""Caches and datasets at URLs against local paths, on moto's S3 emulator on loopback.

    python benchmarks/bench_remote.py [--images 2000] [--backbone mobilenet_v2]
                                      [--image-size 96] [--latency-ms 20] [--json PATH]
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

Features come from random weights (``--weights none``: no network); the images are generated.
"""

from __future__ import annotations

import argparse
import io
import json
import os
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
        return {"endpoint_url": self.endpoint, "skip_instance_cache": True}

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
    parser.add_argument("--tiny", action="store_true", help="a quick check that it runs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.tiny:
        args.images, args.backbone, args.image_size = 24, "vgg16", 32
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

    figures: dict[str, Any] = {"images": args.images, "backbone": args.backbone,
                               "image_size": args.image_size}
    local = timed(bottleneck.extract, str(images), out=work / "local", **common)
    remote = timed(bottleneck.extract, str(images), out="s3://bench/cache", **common)
    figures["extract"] = {"local_s": local, "s3_s": remote, "s3_over_local": remote / local}
    folder = timed(bottleneck.extract, str(images), out=work / "folder2", **common)
    webdataset = timed(bottleneck.extract, tars, out=work / "wds", **common)
    figures["webdataset"] = {"folder_s": folder, "tar_s": webdataset,
                             "tar_over_folder": webdataset / folder}
    fit_local = timed(bottleneck.fit, str(work / "local"), head="logreg", out=work / "m0")
    first = timed(bottleneck.fit, "s3://bench/cache", head="logreg", out=work / "m1")
    second = timed(bottleneck.fit, "s3://bench/cache", head="logreg", out=work / "m2")
    figures["fit"] = {"local_s": fit_local, "s3_first_s": first, "s3_second_s": second,
                      "first_over_local": first / fit_local,
                      "second_over_local": second / fit_local}
    fs.put(str(images), "bench/photos", recursive=True)
    zero = timed(bottleneck.extract, "s3://bench/photos", out=work / "d0", **common)
    os.environ["BOTTLENECK_STORAGE_OPTIONS"] = json.dumps(slow.options())
    delayed = timed(bottleneck.extract, "s3://bench/photos", out=work / "d1", **common)
    figures["dataset_latency"] = {"latency_ms": args.latency_ms, "zero_s": zero,
                                  "delayed_s": delayed, "delayed_over_zero": delayed / zero}
    fast.stop()
    slow.stop()

    print(f"{args.images} images, {args.backbone} at {args.image_size} px, moto on loopback")
    e, w, f, d = (figures[k] for k in ("extract", "webdataset", "fit", "dataset_latency"))
    print(f"(i)   extract: local {e['local_s']:.2f} s, s3:// {e['s3_s']:.2f} s "
          f"({e['s3_over_local']:.2f}x)")
    print(f"(ii)  source: folder {w['folder_s']:.2f} s, WebDataset tar {w['tar_s']:.2f} s "
          f"({w['tar_over_folder']:.2f}x)")
    print(f"(iii) fit logreg: local {f['local_s']:.2f} s, s3:// first {f['s3_first_s']:.2f} s "
          f"({f['first_over_local']:.2f}x), second {f['s3_second_s']:.2f} s "
          f"({f['second_over_local']:.2f}x)")
    print(f"(iv)  dataset at s3://: {d['zero_s']:.2f} s, with {args.latency_ms:.0f} ms per "
          f"request {d['delayed_s']:.2f} s ({d['delayed_over_zero']:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
