"""The leak check's near-duplicates: a train image re-encoded as JPEG in test is found; a
clean set has no pair above the thresholds."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bottleneck
from bottleneck.benching.leaks import (
    FEATURE_ALONE,
    PIXEL_FLOOR,
    PIXEL_MATCH,
    STANDOUT,
    near_duplicates,
    nearest_rows,
    pixel_similarity,
    unit_rows,
)
from bottleneck.cache import Cache

pytest_plugins = ["tests.heads_fixtures"]


def by_the_rule(pair: dict) -> bool:
    """A listed pair's pixels reach ``PIXEL_MATCH``, or ``PIXEL_FLOOR`` and stand out."""
    pixels, runner_up = pair["pixels"], pair["runner_up"]
    return pixels >= PIXEL_MATCH or (pixels >= PIXEL_FLOOR and runner_up is not None
                                     and (1 - pixels) * STANDOUT <= 1 - runner_up)


def smooth_image(kind: str, rng: np.random.Generator) -> Image.Image:
    """A picture of its own (a smooth random colour field) with its class's shape on it."""
    field = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).resize(
        (56, 48), Image.Resampling.BICUBIC)
    pixels = np.asarray(field, np.float64)
    yy, xx = np.mgrid[:48, :56]
    mask = {"circle": (yy - 24) ** 2 + (xx - 28) ** 2 < 14 ** 2,
            "square": (abs(yy - 24) < 12) & (abs(xx - 28) < 14),
            "stripes": (xx // 6) % 2 == 0}[kind]
    pixels[mask] = pixels[mask] * 0.4 + 150
    pixels += rng.normal(0, 6, pixels.shape)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def leaky(vgg16_he_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """60 pictures in train/val/test with two train images copied into test and val,
    re-encoded as JPEG (quality 75; and 90 after shrinking to 90%)."""
    root = tmp_path_factory.mktemp("leaky") / "images"
    rng = np.random.default_rng(3)
    for split, count in (("train", 12), ("val", 4), ("test", 4)):
        for kind in ("circle", "square", "stripes"):
            (root / split / kind).mkdir(parents=True)
            for i in range(count):
                smooth_image(kind, rng).save(root / split / kind / f"{i:03d}.png")
    Image.open(root / "train" / "circle" / "001.png").save(
        root / "test" / "circle" / "copy-001.jpg", quality=75)
    image = Image.open(root / "train" / "square" / "004.png")
    image.resize((50, 43)).save(root / "val" / "square" / "copy-004.jpg", quality=90)
    return bottleneck.extract(str(root), backbone="vgg16", weights=str(vgg16_he_weights),
                              image_size=32, out=root.parent / "cache", progress=False)


def test_planted_copies_are_found_and_nothing_else(leaky: Cache) -> None:
    result = bottleneck.report(leaky.root, leaky.root.parent / "leaky.html")
    near = result.document["caches"][0]["leaks"]["near"]
    found = sorted((p["a"], p["b"]) for p in near["all_pairs"])
    assert found == [("test/circle/copy-001.jpg", "train/circle/001.png"),
                     ("val/square/copy-004.jpg", "train/square/004.png")]
    assert all(by_the_rule(p) for p in near["all_pairs"])
    assert result.document["caches"][0]["leaks"]["exact"] == []  # not the same pixels
    html = result.out.read_text()
    section = html[html.index('id="cache-0-leaks"'):html.index('id="cache-0-map"')]
    assert "2 pairs to review" in section and "leaks to remove" not in section
    assert 'class="note warn"' not in section  # a pair to look at, not an alarm
    for p in near["all_pairs"]:  # the evidence beside each pair
        assert f"pixels {p['pixels']:.4f}" in section
        assert f"features {p['cosine']:.4f}" in section


def test_a_clean_set_has_no_pair_above_the_thresholds(feature_cache: Cache,
                                                      split_images: Path) -> None:
    data = feature_cache.load(with_paths=True)
    splits = feature_cache.column("split").astype(str)
    paths = data["paths"]

    def pixels(i: int) -> np.ndarray:
        return np.asarray(Image.open(split_images / paths[i]).convert("RGB"))

    near = near_duplicates(unit_rows(data["features"].astype(np.float32)), splits, pixels)
    assert near["pairs"] == [] and near["pixels_compared"] == near["candidates"] > 0


def test_without_pixels_only_features_above_the_stricter_cosine_count() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 16))
    twin = base[0] + rng.normal(scale=0.01, size=16)  # cosine > 0.999
    cousin = base[1] + rng.normal(scale=0.35, size=16)  # cosine ~0.95
    rows = unit_rows(np.vstack([base, twin, cousin]).astype(np.float32))
    splits = np.array(["train"] * 6 + ["test", "val"])
    near = near_duplicates(rows, splits, pixels=None)
    assert [(p["a"], p["b"]) for p in near["pairs"]] == [(6, 0)]
    assert near["pairs"][0]["cosine"] >= FEATURE_ALONE and near["pairs"][0]["pixels"] is None
    assert near["by_features_alone"] == near["candidates"] >= 1


def test_the_reduced_search_finds_the_exact_best_match(monkeypatch: pytest.MonkeyPatch) -> None:
    from bottleneck.benching import matching
    from bottleneck.reporting.rows import project

    rng = np.random.default_rng(1)
    reference = unit_rows(rng.normal(size=(3000, 64)).astype(np.float32))
    queries = unit_rows((reference[:40] + rng.normal(scale=0.02, size=(40, 64))).astype(
        np.float32))
    index, cosine = nearest_rows(queries, reference, 3)
    assert index[:, 0].tolist() == list(range(40))
    assert np.all(cosine[:, 0] >= cosine[:, 1]) and np.all(cosine[:, 0] > 0.97)
    monkeypatch.setattr(matching, "EXACT_FLOPS", 0)  # shortlist in 16 dimensions, then exact
    both = np.vstack([reference, queries])
    splits = np.array(["train"] * 3000 + ["test"] * 40)
    for shortlist_pairs in (1e12, 0):  # the provable shortlist, then the inverted-file one
        monkeypatch.setattr(matching, "SHORTLIST_PAIRS", shortlist_pairs)
        near = near_duplicates(both, splits, None, reduced=project(both, 16))
        assert sorted(p["b"] for p in near["pairs"]) == list(range(40))
        assert [p["cosine"] for p in near["pairs"]] == pytest.approx(
            sorted(cosine[:, 0].tolist(), reverse=True), abs=1e-5)


def test_grey_grids_equal_pillows_one_image_at_a_time() -> None:
    """The pixel search's batched signatures are Pillow's grey and box resize, exactly."""
    from bottleneck.benching.pixels import grey_grids, grey_image, square_grid

    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in
              [(28, 28, 3)] * 3 + [(28, 28), (30, 20, 4), (7, 5, 3), (80, 60, 3)]] + [None]
    grids = grey_grids(images, 16)
    for image, grid in zip(images, grids, strict=True):
        expected = np.zeros((16, 16)) if image is None else square_grid(grey_image(image), 16)
        np.testing.assert_allclose(grid, expected, atol=1e-4)


def test_pixel_similarity_survives_jpeg_and_resizing() -> None:
    rng = np.random.default_rng(2)
    image = smooth_image("circle", rng).resize((224, 192))
    encoded = BytesIO()
    image.resize((180, 154)).save(encoded, format="JPEG", quality=70)
    copy = np.asarray(Image.open(encoded).convert("RGB"))
    assert pixel_similarity(np.asarray(image), copy) >= PIXEL_MATCH
    other = np.asarray(smooth_image("circle", rng).resize((224, 192)))
    assert pixel_similarity(np.asarray(image), other) < 0.9


FASHION = Path("/usr/share/datasets/fashion-mnist")
# (t10k, train) pairs the old rule (centred cosine ≥ 0.98 at 32² grey, no shift) called
# near-duplicates: different trousers, pullovers, T-shirts, dresses and coats.
LOOK_ALIKES = [(7463, 16531), (3288, 6783), (3104, 46598), (7400, 7038), (2422, 4849),
               (9563, 46634), (4146, 47716), (447, 22651), (1991, 6254), (6895, 21311),
               (1400, 58125)]


@pytest.fixture(scope="module")
def fashion() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not FASHION.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (make data installs it)")
    from bottleneck.data.arrays import load_fashion_mnist_arrays

    return load_fashion_mnist_arrays(FASHION)[0]


def rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(grey, np.uint8)[..., None], 3, axis=2)


def perturbed(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A light copy of a 28×28 grey image, as the benchmark plants them."""
    if kind.startswith("jpeg"):
        encoded = BytesIO()
        Image.fromarray(image).save(encoded, format="JPEG", quality=int(kind[4:]))
        return np.asarray(Image.open(encoded).convert("L"))
    if kind == "shift":
        return np.pad(image, ((0, 0), (1, 0)))[:, :-1]  # one pixel right, black edge
    if kind == "brighter":
        return np.clip(image * 1.1 + 12, 0, 255).astype(np.uint8)
    if kind == "noise":
        return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    raise ValueError(kind)


def test_fashion_mnist_look_alikes_are_not_copies(fashion) -> None:
    (train, _), (test, _) = fashion["train"], fashion["t10k"]
    for t, r in LOOK_ALIKES:
        assert pixel_similarity(rgb(test[t]), rgb(train[r])) < PIXEL_MATCH, (t, r)


def test_planted_fashion_mnist_copies_have_precision_and_recall(fashion) -> None:
    """3000 train and 500 test images with 120 test images copied into train (JPEG q75 and
    q90, shifted a pixel, brighter, noisy; exact copies are the content hash's), the
    magnitude of their Fourier transform (unchanged by a shift, as a CNN's pooled features
    nearly are) standing in for features: the rule finds ≥ 90% of the copies, and ≥ 90% of
    what it finds are copies."""
    rng = np.random.default_rng(0)
    (x_train, _), (x_test, _) = fashion["train"], fashion["t10k"]
    train = list(x_train[rng.choice(len(x_train), 3000, replace=False)])
    chosen = rng.choice(len(x_test), 500, replace=False)
    test = list(x_test[chosen])
    kinds = ["jpeg75", "jpeg90", "shift", "brighter", "noise"]
    planted = {3500 + n: (3000 + q, kinds[n % len(kinds)])
               for n, q in enumerate(rng.choice(500, 120, replace=False))}
    copies = [perturbed(test[q - 3000], kind, rng) for q, kind in planted.values()]
    images = train + test + copies
    splits = np.array(["train"] * 3000 + ["test"] * 500 + ["train"] * 120)
    stack = np.stack(images)
    features = np.abs(np.fft.rfft2(stack.astype(np.float32))).reshape(len(images), -1)
    hashes = np.array([hash(image.tobytes()) for image in stack])
    near = near_duplicates(unit_rows(features.astype(np.float32)), splits,
                           lambda i: rgb(images[i]), hashes=hashes)
    found = {(p["a"], p["b"]) for p in near["pairs"]}
    truth = {(q, c) for c, (q, _) in planted.items()}
    recall = len(found & truth) / len(truth)
    precision = len(found & truth) / len(found)
    print(f"recall {recall:.3f}, precision {precision:.3f}")
    assert recall >= 0.9 and precision >= 0.9, (recall, precision, sorted(found - truth))
    assert all(by_the_rule(p) for p in near["pairs"])


def test_a_copy_below_the_match_counts_when_it_stands_out() -> None:
    """A JPEG (q75) copy of a noisy picture agrees to ~0.99, under ``PIXEL_MATCH``, where
    the other pictures of its kind agree to ~0.83: it is listed, with that runner-up."""
    rng = np.random.default_rng(4)
    shape = Image.fromarray(rng.integers(0, 256, (7, 7), dtype=np.uint8)).resize(
        (28, 28), Image.Resampling.BICUBIC)
    base = np.asarray(shape).astype(np.int16)
    pictures = [(base + rng.normal(0, 30, base.shape)).clip(0, 255).astype(np.uint8)
                for _ in range(8)]
    encoded = BytesIO()
    Image.fromarray(pictures[0]).save(encoded, format="JPEG", quality=75)
    images = pictures + [np.asarray(Image.open(encoded).convert("L"))]
    features = unit_rows(rng.normal(1, 0.01, (9, 16)).astype(np.float32))  # all alike
    splits = np.array(["train"] * 8 + ["test"])
    near = near_duplicates(features, splits, lambda i: rgb(images[i]))
    assert [(p["a"], p["b"]) for p in near["pairs"]] == [(8, 0)]
    pair = near["pairs"][0]
    assert PIXEL_FLOOR <= pair["pixels"] < PIXEL_MATCH and pair["runner_up"] < 0.9
    assert by_the_rule(pair)


def test_copies_judged_by_their_runner_up_within_the_pixel_budget() -> None:
    """Copies whose pixels reach only ``PIXEL_FLOOR`` (JPEG of a noisy picture) need their
    runner-up compared to stand out; with a pixel budget of one pair per test row, each row's
    two best matches are compared first, rows with the most similar best match first."""
    rng = np.random.default_rng(5)
    templates = rng.integers(0, 256, (4, 7, 7)).astype(np.uint8)
    grey = [np.asarray(Image.fromarray(templates[i % 4]).resize((28, 28),
                                                                 Image.Resampling.BICUBIC))
            for i in range(240)]
    grey = [(g + rng.normal(0, 30, g.shape)).clip(0, 255).astype(np.uint8) for g in grey]
    features = rng.normal(size=(240, 64)).astype(np.float32)
    originals = [3, 50, 77, 120, 199]
    for n, original in enumerate(originals):  # test rows 200..204 copy train rows
        encoded = BytesIO()
        Image.fromarray(grey[original]).save(encoded, format="JPEG", quality=75)
        grey[200 + n] = np.asarray(Image.open(encoded).convert("L"))
        features[200 + n] = features[original] + rng.normal(0, 0.02, 64)
    similarity = [pixel_similarity(rgb(grey[200 + n]), rgb(grey[o]))
                  for n, o in enumerate(originals)]
    assert all(PIXEL_FLOOR <= s < PIXEL_MATCH for s in similarity), similarity
    splits = np.array(["train"] * 200 + ["test"] * 40)
    near = near_duplicates(unit_rows(features), splits, lambda i: rgb(grey[i]),
                           max_pixel_pairs=40)
    found = {(p["a"], p["b"]) for p in near["pairs"] if p["pixels"] is not None}
    assert found == {(200 + n, o) for n, o in enumerate(originals)}
    assert all(by_the_rule(p) for p in near["pairs"])
