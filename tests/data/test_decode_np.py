"""The TensorFlow-free decoder gives TensorFlow's pixels (today's decode path: TensorFlow, then
Pillow where TensorFlow fails), and the same reasons for bad files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bottleneck.data.decode import decode_bytes, decode_file, jpeg_info, to_rgb
from tests.data.encoded import jpeg, jpeg_kinds, other_formats, photo

ROOT = Path(__file__).resolve().parents[2]
JPEGS = jpeg_kinds()
OTHERS = other_formats()


def today(tmp_path: Path, data: bytes, decode_size: int | None = None) -> np.ndarray:
    """Today's decode (TensorFlow, else Pillow): the reference."""
    images = pytest.importorskip("bottleneck.data.images")
    path = tmp_path / "image.bin"
    path.write_bytes(data)
    return images.decode_file(path, decode_size)


@pytest.mark.parametrize("kind", list(JPEGS))
def test_jpeg_kinds_decode_to_tensorflows_bits_at_every_scale(kind):
    tf = pytest.importorskip("tensorflow")
    data = JPEGS[kind]
    expected = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    np.testing.assert_array_equal(decode_bytes(data), expected)
    # fast decode: 123×171 → the largest scale whose shorter side keeps decode_size pixels
    for decode_size, ratio in ((15, 8), (30, 4), (61, 2), (62, 1)):
        expected = tf.io.decode_jpeg(data, channels=3, ratio=ratio).numpy()
        np.testing.assert_array_equal(decode_bytes(data, decode_size), expected,
                                      err_msg=f"{kind} at 1/{ratio}")


def test_jpeg_header_gives_size_components_and_the_adobe_marker():
    assert jpeg_info(JPEGS["q75 4:2:0"]) == (123, 171, 3, False)
    assert jpeg_info(JPEGS["grey"]) == (123, 171, 1, False)
    assert jpeg_info(JPEGS["cmyk (Adobe)"]) == (123, 171, 4, True)
    assert jpeg_info(JPEGS["cmyk (no Adobe marker)"]) == (123, 171, 4, False)
    assert jpeg_info(b"\xff\xd8\xff\xe0garbage") is None


@pytest.mark.parametrize("kind", list(OTHERS))
def test_other_formats_decode_as_today(tmp_path, kind):
    data = OTHERS[kind]
    expected = today(tmp_path, data)
    got = decode_bytes(data)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(decode_bytes(data, 8), today(tmp_path, data, 8))


def test_a_gif_has_tensorflows_canvas_black_where_transparent_or_uncovered():
    got = decode_bytes(OTHERS["gif partial first frame"])
    assert got.shape == (10, 12, 3)  # the largest frame, not the 15×11 screen
    assert not got[:2].any() and not got[:, :3].any()  # the first frame starts at (3, 2)


def test_an_8_bit_bmp_gives_its_palette_indices_as_tensorflow_does():
    got = decode_bytes(OTHERS["bmp 8-bit palette"])
    assert (got[..., 0] == got[..., 1]).all() and got.max() < 50  # 50 colours: indices 0..49


@pytest.mark.parametrize("cut", [0.05, 0.3, 0.7, 0.95, 0.999])
def test_truncated_jpegs_are_refused_as_tensorflow_refuses_them(tmp_path, cut):
    for kind in ("q75 4:2:0", "progressive", "restart markers", "grey"):
        data = JPEGS[kind][: int(len(JPEGS[kind]) * cut)]
        with pytest.raises(ValueError, match="truncated"):
            decode_bytes(data)
        with pytest.raises(ValueError, match="truncated"):
            today(tmp_path, data)


def test_a_jpeg_without_its_end_marker_is_refused_and_trailing_bytes_are_not():
    data = JPEGS["q95 4:2:0"]
    with pytest.raises(ValueError, match="truncated"):
        decode_bytes(data[:-2])
    np.testing.assert_array_equal(decode_bytes(data + b"trailing junk" * 5), decode_bytes(data))


def test_corrupt_jpegs_decode_or_fail_as_today(tmp_path):
    rng = np.random.default_rng(3)
    for kind in ("q75 4:2:0", "progressive", "restart markers"):
        data = JPEGS[kind]
        for _ in range(6):
            broken = bytearray(data)
            broken[rng.integers(len(data) // 3, len(data) - 2)] ^= 0x5A
            try:
                expected = today(tmp_path, bytes(broken))
            except ValueError:
                with pytest.raises(ValueError):
                    decode_bytes(bytes(broken))
            else:
                np.testing.assert_array_equal(decode_bytes(bytes(broken)), expected)


def test_bad_files_raise_value_error_with_todays_reasons(tmp_path):
    cases = {
        b"": r"empty file \(0 bytes\)",
        b"not an image at all, just some text" * 3: "not an image",
        b"\xff\xd8\xff" + bytes(range(256)) * 2: "truncated or corrupt|not an image",
        OTHERS["png rgb"][: len(OTHERS["png rgb"]) // 2]: "truncated",
        OTHERS["gif"][: len(OTHERS["gif"]) // 2]: "truncated",
    }
    for data, reason in cases.items():
        with pytest.raises(ValueError, match=reason) as new:
            decode_bytes(data)
        assert str(new.value)
    with pytest.raises(ValueError, match="cannot read"):
        decode_file(tmp_path / "missing.jpg")


def test_decode_file_reads_the_bytes_and_ignores_the_name(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(OTHERS["png rgba"])
    np.testing.assert_array_equal(decode_file(path), decode_bytes(OTHERS["png rgba"]))


def test_fast_decode_of_a_tiny_jpeg_keeps_todays_scale_rule():
    # 2×2 with decode_size 1: the rule says 1/2, where simplejpeg would pick 1/8 (also 1 px)
    got = decode_bytes(jpeg(photo()[:2, :2]), 1)
    assert got.shape == (1, 1, 3)


def test_to_rgb_drops_alpha_and_repeats_grey():
    grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert to_rgb(grey).shape == (2, 3, 3) and (to_rgb(grey)[..., 2] == grey).all()
    assert (to_rgb(np.stack([grey, grey + 1], -1))[..., 0] == grey).all()
    rgba = np.zeros((2, 3, 4), np.uint8)
    assert to_rgb(rgba).shape == (2, 3, 3)
    with pytest.raises(ValueError):
        to_rgb(np.zeros((2, 3, 5), np.uint8))


def test_the_new_modules_import_no_tensorflow_or_keras():
    code = f"""
import importlib, sys, types
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import bottleneck
package = types.ModuleType('bottleneck.data')  # skip the package's __init__ (sources use TF)
package.__path__ = [{str(ROOT / 'bottleneck' / 'data')!r}]
sys.modules['bottleneck.data'] = package
for name in ('decode', 'resize', 'fingerprint', 'augment_ops', 'augment_np', 'loader'):
    importlib.import_module('bottleneck.data.' + name)
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
