"""check.py's sections that run a Keras backend (one worker process per backend).

Each takes a :class:`check_ctx.Context` and returns its results; ``ctx.partial`` saves what
is done so far, so a section stopped at its cap still leaves its finished parts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import kitlib
import numpy as np
from check_ctx import Context, Skip, gpu_memory, reset_gpu_peak

PRECISIONS = ("fp32", "bf16")


def _extract(ctx: Context, source: Any, out: Path, ref: kitlib.Reference, precision: str,
             batch_size: int, decode: str = "cpu") -> tuple[Any, float]:
    import bottleneck

    weights = kitlib.weights_arg(ref, ctx.kit, ctx.work)
    start = time.perf_counter()
    cache = bottleneck.extract(source, backbone=ref.backbone, weights=weights,
                               image_size=ref.image_size, out=out, backend=ctx.backend,
                               devices=ctx.devices, precision=precision,
                               batch_size=batch_size, progress=False, decode=decode)
    return cache, time.perf_counter() - start


def parity(ctx: Context) -> dict[str, Any]:
    """``bottleneck.extract`` over the kit's JPEGs, fp32 and bf16, against the CPU reference."""
    refs = [kitlib.Reference(**{k: r[k] for k in ("name", "backbone", "image_size", "weights")})
            for r in ctx.kit_info["references"]]
    digests = {r["name"]: r["weights_digest"] for r in ctx.kit_info["references"]}
    reference = np.load(ctx.kit / kitlib.REFERENCE)
    keys = list(reference["keys"])
    # what matters most first: Lite0 in both precisions, then the others (fp32 first)
    others = [p for p in PRECISIONS if p in ctx.args.precisions]
    order = [(refs[0], p) for p in PRECISIONS] + [(r, p) for p in others for r in refs[1:]]
    results: dict[str, Any] = {}
    for ref, precision in order:
        label = f"{ref.name}/{precision}"
        if ctx.left() < 5:
            results[label] = {"skipped": "the section's time cap was reached"}
            continue
        try:
            reset_gpu_peak(ctx.backend)
            cache, seconds = _extract(ctx, str(ctx.kit / kitlib.IMAGES),
                                      ctx.work / f"parity-{ctx.backend}-{label.replace('/', '-')}",
                                      ref, precision, 32)
        except Exception as exc:  # e.g. bf16 refused on this device: record, go on
            results[label] = {"error": f"{type(exc).__name__}: {exc}"}
            ctx.partial(results)
            continue
        data = cache.load(with_paths=True)
        order_rows = np.argsort(data["paths"].astype(str))
        if list(data["paths"].astype(str)[order_rows]) != keys:
            results[label] = {"error": "the cache's rows differ from the reference's"}
            continue
        figures = kitlib.parity(data["features"][order_rows], reference[ref.name])
        config = cache.manifest.config
        results[label] = figures | {
            "seconds": round(seconds, 2), "runtime": cache.manifest.runtime,
            "weights_same_as_reference": config["weights_digest"] == digests[ref.name],
            **gpu_memory(ctx.backend)}
        ctx.partial(results)
    return results


def _device_call(backend: str, extractor: Any, batch: np.ndarray) -> Any:
    """A no-argument call running the compiled feature model on a device-resident batch."""
    from bottleneck.backbones import get_backbone

    model = extractor.model
    preprocess = get_backbone(extractor.config.backbone).preprocess_input
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def forward(trainable: Any, frozen: Any, images: Any) -> Any:
            outputs, _ = model.stateless_call(trainable, frozen, preprocess(images),
                                              training=False)
            return outputs

        images = jax.device_put(batch)
        return lambda: forward(trainable, frozen, images).block_until_ready()
    if backend == "torch":
        import keras
        import torch

        images = keras.ops.convert_to_tensor(batch)  # on Keras' device
        sync = torch.cuda.synchronize if images.is_cuda else (lambda: None)

        def run() -> None:
            with torch.no_grad():
                model(preprocess(images), training=False)
            sync()

        return run
    import tensorflow as tf

    from bottleneck.extraction.runtime import compile_tensorflow

    function = compile_tensorflow(model, preprocess, batch.shape[1])
    images = tf.constant(batch)
    return lambda: function(images)[0].numpy()


def rate(call: Any, images: int, min_seconds: float, max_calls: int = 200) -> dict[str, float]:
    """Images per second of ``call`` (each call does ``images``): two warm-up calls, then
    calls for at least ``min_seconds`` (at least 3; with ``min_seconds`` 0, one of each)."""
    least = 3 if min_seconds else 1
    for _ in range(2 if min_seconds else 1):
        call()
    calls, start = 0, time.perf_counter()
    while calls < max_calls and (calls < least or time.perf_counter() - start < min_seconds):
        call()
        calls += 1
    seconds = time.perf_counter() - start
    return {"img_s": round(images * calls / seconds, 1), "calls": calls,
            "ms_per_batch": round(1000 * seconds / calls, 3)}


def model_only(ctx: Context) -> dict[str, Any]:
    """The Lite0 feature model alone: a random batch already on the device (and, beside it,
    the FeatureExtractor's own call from host float32, as extract feeds it)."""
    from bottleneck.extraction import ExtractConfig, FeatureExtractor

    size = ctx.lite0_size
    batch = np.random.default_rng(0).uniform(0, 255, (ctx.batch_size, size, size, 3)
                                             ).astype(np.float32)
    results: dict[str, Any] = {"image_size": size, "batch": ctx.batch_size}
    for precision in ctx.args.precisions:
        if ctx.left() < 5:
            results[precision] = {"skipped": "the section's time cap was reached"}
            continue
        try:
            reset_gpu_peak(ctx.backend)
            extractor = FeatureExtractor(ExtractConfig("efficientnet_lite0", "imagenet",
                                                       image_size=size, precision=precision))
            seconds = min(ctx.min_seconds, max(0.0, ctx.left() / 6))
            device = rate(_device_call(ctx.backend, extractor, batch), len(batch), seconds)
            host = rate(lambda e=extractor: e(batch), len(batch), seconds)
        except Exception as exc:
            results[precision] = {"error": f"{type(exc).__name__}: {exc}"}
            ctx.partial(results)
            continue
        results[precision] = {"device_resident": device, "from_host_float32": host,
                              "device": extractor.runtime["device"], **gpu_memory(ctx.backend)}
        ctx.partial(results)
    return results


def _jpeg_folders(ctx: Context) -> tuple[Path, Path, int, int]:
    """The jpegs section's n and 4n folders and their sizes."""
    small, big = ctx.work / "jpegs" / "small", ctx.work / "jpegs" / "big"
    if not big.is_dir():
        raise Skip("no JPEGs: the jpegs section did not run")
    n_small, n_big = (sum(1 for _ in f.rglob("*.jpg")) for f in (small, big))
    return small, big, n_small, n_big


def _steady(ctx: Context, label: str, precision: str, decode: str = "cpu") -> dict[str, Any]:
    """Extract Lite0 over the n and 4n JPEGs; steady = 3n / (t(4n) − t(n)) leaves out the
    fixed cost of building and compiling the model."""
    small, big, n_small, n_big = _jpeg_folders(ctx)
    ref = kitlib.Reference("lite0", "efficientnet_lite0", ctx.lite0_size, "imagenet")
    reset_gpu_peak(ctx.backend)
    t_small, t_big = (_extract(ctx, str(folder), ctx.work / f"{label}-{precision}-{name}", ref,
                               precision, ctx.batch_size, decode)[1]
                      for folder, name in ((small, "n"), (big, "4n")))
    steady = (n_big - n_small) / (t_big - t_small) if t_big > t_small else None
    return {"seconds": [round(t_small, 2), round(t_big, 2)],
            "steady_img_s": round(steady, 1) if steady else None,
            "end_to_end_img_s": round(n_big / t_big, 1), **gpu_memory(ctx.backend)}


def extract_rate(ctx: Context) -> dict[str, Any]:
    """End to end: ``bottleneck.extract`` of Lite0 over ImageNet-size JPEGs (made by the
    jpegs section) on n and 4n images, per precision (see :func:`_steady`)."""
    _, _, n_small, n_big = _jpeg_folders(ctx)
    results: dict[str, Any] = {"images": [n_small, n_big], "image_size": ctx.lite0_size,
                               "batch": ctx.batch_size}
    for precision in ctx.args.precisions:
        if ctx.left() < 10:
            results[precision] = {"skipped": "the section's time cap was reached"}
            continue
        try:
            results[precision] = _steady(ctx, f"e2e-{ctx.backend}", precision)
        except Exception as exc:
            results[precision] = {"error": f"{type(exc).__name__}: {exc}"}
        ctx.partial(results)
    return results


def finetune(ctx: Context) -> dict[str, Any]:
    """Fashion-MNIST (60k train, 10% of it val, 10k test) with Lite0 ImageNet: extract at
    fp32 and bf16 → a dense head on each (test accuracy) → fine-tune the fp32 one."""
    import bottleneck
    from bottleneck.data import fashion_mnist_source

    folder = ctx.kit / kitlib.FASHION_MNIST
    if not folder.is_dir():
        raise Skip("the kit holds no Fashion-MNIST")
    source = fashion_mnist_source(folder, limit=ctx.args.fmnist_limit)
    ref = kitlib.Reference("lite0", "efficientnet_lite0", ctx.args.fmnist_size, "imagenet")
    results: dict[str, Any] = {"image_size": ref.image_size, "rows": None}
    dense = {"epochs": ctx.args.dense_epochs, "batch_size": 256}
    heads: dict[str, Path] = {}
    for precision in [p for p in PRECISIONS if p in ctx.args.precisions]:
        try:
            cache, seconds = _extract(ctx, source, ctx.work / f"fmnist-{precision}", ref,
                                      precision, max(ctx.batch_size, 32))
            results["rows"] = cache.split_counts()
            start = time.perf_counter()
            fitted = bottleneck.fit(cache, "dense", ctx.work / f"fmnist-dense-{precision}",
                                    params=dense)
            heads[precision] = fitted.model_dir
            results[precision] = {
                "extract_seconds": round(seconds, 2),
                "extract_img_s": round(sum(cache.split_counts().values()) / seconds, 1),
                "dense_seconds": round(time.perf_counter() - start, 2),
                "dense_test_accuracy": fitted.metrics["test"]["accuracy"],
                "dense_val_accuracy": fitted.metrics["val"]["accuracy"],
                **gpu_memory(ctx.backend)}
        except Exception as exc:
            results[precision] = {"error": f"{type(exc).__name__}: {exc}"}
        ctx.partial(results)
    if "fp32" not in heads:
        raise RuntimeError(f"no fp32 dense head to fine-tune: {results.get('fp32')}")
    start = time.perf_counter()
    tuned = bottleneck.finetune(heads["fp32"], ctx.work / "fmnist-finetuned",
                                epochs=ctx.args.fmnist_epochs, batch_size=128, progress=False)
    results["finetune"] = {
        "epochs": ctx.args.fmnist_epochs, "seconds": round(time.perf_counter() - start, 2),
        "epochs_run": tuned.settings["epochs_run"], "best_epoch": tuned.settings["best_epoch"],
        "test_accuracy_before": tuned.before["test"]["accuracy"],
        "test_accuracy": tuned.metrics["test"]["accuracy"], **gpu_memory(ctx.backend)}
    return results


def gpu_decode(ctx: Context) -> dict[str, Any]:
    """``--decode gpu`` (nvJPEG, PyTorch backend): Lite0 fp32 features of the kit's JPEGs
    against the CPU reference (its pixels differ from libjpeg-turbo's), and end-to-end rates
    over the ImageNet-size JPEGs, GPU against CPU decode, as the extract section measures."""
    from bottleneck.data.decode_gpu import gpu_decode_problem

    problem = gpu_decode_problem()
    if problem:
        raise Skip(problem)
    ref = next(kitlib.Reference(**{k: r[k] for k in ("name", "backbone", "image_size",
                                                      "weights")})
               for r in ctx.kit_info["references"] if r["backbone"] == "efficientnet_lite0")
    reference = np.load(ctx.kit / kitlib.REFERENCE)
    cache, seconds = _extract(ctx, str(ctx.kit / kitlib.IMAGES), ctx.work / "gpudecode-parity",
                              ref, "fp32", 32, decode="gpu")
    data = cache.load(with_paths=True)
    rows = np.argsort(data["paths"].astype(str))
    results: dict[str, Any] = {"parity_fp32": kitlib.parity(data["features"][rows],
                                                            reference[ref.name])
                               | {"seconds": round(seconds, 2)}}
    ctx.partial(results)
    if not (ctx.work / "jpegs" / "big").is_dir():
        return results | {"rates": "no JPEGs: the jpegs section did not run"}
    precision = ctx.args.precisions[0]
    for decode in ("gpu", "cpu"):
        if ctx.left() < 10:
            results[decode] = {"skipped": "the section's time cap was reached"}
            continue
        results[decode] = {"precision": precision} | _steady(ctx, f"gpudecode-{decode}",
                                                            precision, decode)
        ctx.partial(results)
    return results


SECTIONS = {"parity": parity, "model": model_only, "extract": extract_rate,
            "finetune": finetune, "gpudecode": gpu_decode}
