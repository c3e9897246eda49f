"""The ways of extracting features that the extraction benchmarks compare, and what they share.

Every runner takes the same JPEG folder and pays its own model build, as a user would:
  tutorial  PIL-load every image into one array, preprocess_input, model.predict
  keras     keras.utils.image_dataset_from_directory + preprocess_input + model.predict
  ours      bottleneck.extract with an engine (keras | openvino) and precision (fp32 | bf16)
  previous  bottleneck.extract as it was before this version's decode path (tf.data), run
            from ``git archive PREVIOUS`` in a subprocess
  ceiling   the same engine's feature model on random tensors of the same shape (no I/O)
plus the model's FLOPs per image and a float32 matmul's GFLOP/s, the CPU's practical peak.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ENGINES = {"tf": ("keras", "fp32"), "openvino-fp32": ("openvino", "fp32"),
           "openvino-bf16": ("openvino", "bf16"), "openvino-int8": ("openvino", "int8")}
PREVIOUS = "0565e81"  # the last version whose extraction decoded with tf.data


def write_jpegs(root: Path, count: int, seed: int = 0, shape: tuple[int, int] = (240, 320)
                ) -> Path:
    """``count`` JPEGs of about ``shape`` (height, width; default 320×240) with smooth
    content (like photos, unlike white noise)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        h, w = shape[0] + (i % 5) * 8, shape[1] - (i % 3) * 16
        base = rng.random((h // 16 + 1, w // 16 + 1, 3)) * 255
        image = np.kron(base, np.ones((16, 16, 1)))[:h, :w] + rng.normal(0, 8, (h, w, 3))
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg",
                                                                  quality=90)
    return root


def timed(func: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - start


def run_tutorial(folder: Path, backbone: Any, size: int, batch: int) -> None:
    import keras

    model = backbone.build(None, size)
    paths = sorted(folder.rglob("*.jpg"))
    arrays = np.stack([keras.utils.img_to_array(
        keras.utils.load_img(p, target_size=(size, size), interpolation="bilinear"))
        for p in paths])
    model.predict(backbone.preprocess_input(arrays), batch_size=batch, verbose=0)


def run_keras(folder: Path, backbone: Any, size: int, batch: int) -> None:
    import keras
    import tensorflow as tf

    model = backbone.build(None, size)
    dataset = keras.utils.image_dataset_from_directory(
        folder, image_size=(size, size), batch_size=batch, shuffle=False, label_mode=None,
        verbose=False)
    dataset = dataset.map(backbone.preprocess_input).prefetch(tf.data.AUTOTUNE)
    model.predict(dataset, verbose=0)


def run_ours(folder: Path, name: str, size: int, batch: int, out: Path, engine: str = "tf",
             **options: Any) -> None:
    import bottleneck

    kind, precision = ENGINES[engine]
    shutil.rmtree(out, ignore_errors=True)
    bottleneck.extract(str(folder), backbone=name, weights="none", image_size=size, out=out,
                       batch_size=batch, progress=False, engine=kind, precision=precision,
                       **options)


def previous_version(ref: str, where: Path) -> Path:
    """The ``bottleneck`` package as it was at ``ref`` (git archive), to import instead."""
    repo = Path(__file__).resolve().parents[1]
    where.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "bottleneck"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def run_previous(folder: Path, name: str, size: int, batch: int, out: Path, code: Path,
                 engine: str = "tf") -> None:
    """``bottleneck.extract`` of the previous version (tf.data decoding), in a subprocess."""
    kind, precision = ENGINES[engine]
    kind = "tf" if kind == "keras" else kind
    shutil.rmtree(out, ignore_errors=True)
    script = (f"import bottleneck; bottleneck.extract({str(folder)!r}, backbone={name!r}, "
              f"weights='none', image_size={size}, out={str(out)!r}, batch_size={batch}, "
              f"progress=False, engine={kind!r}, precision={precision!r})")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=code,
                   env=os.environ | {"PYTHONPATH": str(code)}, capture_output=True)


def run_ceiling(name: str, size: int, batch: int, count: int, engine: str = "tf",
                calibrate_on: Path | None = None) -> float:
    """Seconds to build the engine's feature model and run it on ``count`` random images
    (int8: quantized on ``calibrate_on``'s images)."""
    from bottleneck.data import open_source
    from bottleneck.extraction import ExtractConfig, FeatureExtractor

    kind, precision = ENGINES[engine]
    batches = [np.random.default_rng(i).uniform(0, 255, (batch, size, size, 3)).astype("float32")
               for i in range(2)]
    start = time.perf_counter()
    extractor = FeatureExtractor(ExtractConfig(backbone=name, weights="none", image_size=size,
                                               engine=kind, precision=precision),
                                 source=open_source(str(calibrate_on))
                                 if calibrate_on and precision == "int8" else None)
    for i in range(0, count, batch):
        extractor(batches[(i // batch) % 2][: min(batch, count - i)])
    return time.perf_counter() - start


def engine_available(name: str, size: int, engine: str) -> str | None:
    """None if ``engine`` runs here, else why not (OpenVINO missing, no bf16 on this CPU, no
    VNNI/AMX-INT8 or NNCF for int8)."""
    import importlib.util

    from bottleneck.backbones import get_backbone
    from bottleneck.errors import UserError
    from bottleneck.extraction.engines import check_engine

    if ENGINES[engine][1] == "int8":  # needs images to calibrate: check what it needs
        try:
            check_engine(*ENGINES[engine])
        except UserError as exc:
            return str(exc)
        missing = [m for m in ("openvino", "nncf") if importlib.util.find_spec(m) is None]
        return f"{' and '.join(missing)} not installed" if missing else None
    try:  # a small model is enough to learn whether the engine runs
        run_ceiling(name, max(min(size, 64), get_backbone(name).min_size), 1, 1, engine)
    except UserError as exc:
        return str(exc)
    return None


def model_gflops(name: str, size: int) -> float:
    """GFLOP of one image through the backbone (a multiply-add counts 2), by TF's profiler."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from bottleneck.backbones import get_backbone

    model = get_backbone(name).build(None, size)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, size, size, 3], tf.float32))
    graph = convert_variables_to_constants_v2(function).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(),
                                            cmd="op", options=options)
    return profile.total_float_ops / 1e9


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """A float32 n×n matmul's GFLOP/s on this CPU with TensorFlow (best of ``repeats``)."""
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))
    tf.linalg.matmul(a, b).numpy()
    best = min(timed(lambda: tf.linalg.matmul(a, b).numpy()) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def steady_rate(times: dict[str, list[float]], n: int) -> float:
    """Images/s from the median times on n and on 4n images: 3n / (t(4n) - t(n))."""
    return 3 * n / max(1e-9, statistics.median(times["4x"]) - statistics.median(times["1x"]))
