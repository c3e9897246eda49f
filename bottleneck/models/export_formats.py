"""Write a serving model in one format, and read the written file back with that format's own
loader, called the way its users call it, to check it answers as the Keras model does.

The converters (TensorFlow's SavedModel and TFLite writers, tf2onnx) print pages of notices
from Python and C++ alike; :func:`converter_output` keeps them off the terminal unless asked
for, and shows them when the conversion fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.backend import import_keras
from bottleneck.errors import UserError

KERAS_EXPORT = {"saved_model": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}


@contextlib.contextmanager
def converter_output(verbose: bool) -> Iterator[None]:
    """Send what is printed, to ``sys.stdout``/``sys.stderr`` and to file descriptors 1 and 2
    (native code), to a temporary file, unless ``verbose``; on a failure other than a
    :class:`UserError`, print it to stderr before the traceback."""
    if verbose:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    failed = False
    with tempfile.TemporaryFile() as captured, \
            open(os.dup(captured.fileno()), "w", buffering=1, errors="replace") as text:
        try:
            for fd in saved:
                os.dup2(captured.fileno(), fd)
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield
        except UserError:
            raise
        except BaseException:
            failed = True
            raise
        finally:
            text.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            if failed:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))


def write(served: Any, target: Path, format: str) -> None:
    """Write ``served`` (float32 N × H × W × 3 in) to ``target`` as ``format``."""
    if format == "keras":
        served.save(target)
        return
    import tensorflow as tf

    signature = [tf.TensorSpec((None, None, None, 3), tf.float32, name="image")]
    served.export(str(target), format=KERAS_EXPORT[format], verbose=False,
                  input_signature=signature)


def runners(target: Path, format: str) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Ways the written file is run by its users, each images → answers: ``.keras`` loaded
    with ``keras.saving.load_model`` and called ``m(x)`` twice and ``m.predict(x)``;
    SavedModel's ``serve``; the TFLite interpreter; an onnxruntime session."""
    if format == "keras":
        keras = import_keras()
        model = keras.saving.load_model(target, safe_mode=True)
        call = lambda x: np.asarray(keras.ops.convert_to_numpy(model(x)))  # noqa: E731
        return {"m(x)": call, "m(x) again": call,
                "m.predict(x)": lambda x: model.predict(x, verbose=0)}
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        return {"onnxruntime": lambda x: session.run(None, {feed: x})[0]}
    import tensorflow as tf

    if format == "saved_model":
        loaded = tf.saved_model.load(str(target))
        return {"serve(x)": lambda x: loaded.serve(tf.constant(x)).numpy()}
    interpreter = tf.lite.Interpreter(model_path=str(target))

    def invoke(x: np.ndarray) -> np.ndarray:
        entry = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(entry["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(entry["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    return {"the TFLite interpreter": invoke}


def largest_difference(target: Path, format: str, images: np.ndarray,
                       expected: np.ndarray) -> tuple[str, float]:
    """The way of running the written file whose answers on ``images`` differ most from
    ``expected``, and by how much (relative to the answers' scale, at least 1)."""
    scale = max(1.0, float(np.abs(expected).max()))
    differences = {}
    for how, run in runners(target, format).items():
        got = np.asarray(run(images), dtype=np.float64)
        differences[how] = (float(np.abs(got - expected).max()) / scale
                            if got.shape == expected.shape else float("inf"))
    return max(differences.items(), key=lambda pair: pair[1])
