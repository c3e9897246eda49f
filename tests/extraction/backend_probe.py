"""Run in a fresh process on one Keras backend (argv: backend, work folder, weights files):
features of three backbones on a fixed batch, then extract → fit (dense, logreg) → predict.

Writes ``<work>/<backend>.npz`` (features) and ``<work>/<backend>.json`` (what ran, the
cache's rows and the predictions), for tests/extraction/test_backends.py to compare.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(backend: str, work: Path, mnv2_weights: str, vgg_weights: str, images: str) -> None:
    import bottleneck
    from bottleneck.backend import active_backend, set_backend
    from bottleneck.extraction import ExtractConfig, FeatureExtractor

    set_backend(backend)
    batch = np.load(work / "batch.npz")
    features = {}
    for name, weights, size in (("mobilenet_v2", mnv2_weights, 64),
                                ("vgg16", vgg_weights, 32),
                                ("efficientnet_lite0", "imagenet", 64)):
        extractor = FeatureExtractor(ExtractConfig(name, weights, image_size=size))
        features[name] = extractor(batch[str(size)])
    np.savez(work / f"{backend}.npz", **features)
    cache = bottleneck.extract(images, backbone="vgg16", weights=vgg_weights, image_size=32,
                               out=work / f"cache-{backend}", shard_size=16, progress=False)
    tensorflow_imported = "tensorflow" in sys.modules  # decode, hash, model, shards: none
    predictions = {}
    for head in ("dense", "logreg"):
        model = work / f"model-{backend}-{head}"
        bottleneck.fit(cache, head, model, params={"epochs": 3} if head == "dense" else None)
        files = sorted(str(p) for p in Path(images).rglob("*.jpg"))[:6]
        predictions[head] = [r["class"] for r in bottleneck.predict(model, files)]
    report = {"backend": active_backend(), "runtime": cache.manifest.runtime,
              "rows": cache.rows, "predictions": predictions,
              "tensorflow_imported": tensorflow_imported}
    if backend == "torch":
        report["gpu_decode"] = gpu_decode_shard(work, images, vgg_weights)
    (work / f"{backend}.json").write_text(json.dumps(report))


def gpu_decode_shard(work: Path, images: str, vgg_weights: str) -> dict[str, object]:
    """A ``decode="gpu"`` shard on torch's CPU device, the CPU JPEG decoder standing in for
    the batched nvJPEG call: torch tensors from the decoder through the model to the file."""
    import h5py
    import torch

    from bottleneck.data import open_source
    from bottleneck.data.decode import decode_bytes
    from bottleneck.data.decode_gpu import GpuDecoder, gpu_decode_problem
    from bottleneck.extraction import ExtractConfig, FeatureExtractor
    from bottleneck.extraction.plan import plan_shards
    from bottleneck.extraction.shard import run_shard

    def jpeg_batch(datas: list) -> list:
        return [torch.from_numpy(decode_bytes(d.numpy().tobytes())).permute(2, 0, 1)
                for d in datas]

    source = open_source(images)
    extractor = FeatureExtractor(ExtractConfig("vgg16", vgg_weights, image_size=32,
                                               decode="gpu"))
    plan = plan_shards(source.items(), 1000)[0]
    out = work / "gpu-decode"
    out.mkdir()
    result = run_shard(source, extractor, plan, out, 8,
                       gpu_decoder=GpuDecoder(32, "cpu", jpeg_batch))
    with h5py.File(out / plan.file) as f:
        rows = {"paths": [p.decode() for p in f["paths"][:]],
                "features": f["features"][:].tolist(),
                "content_hash": [str(h) for h in f["content_hash"][:]]}
    return {"rows": result.rows, "failures": len(result.failures), **rows,
            "problem": gpu_decode_problem()}


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:])
