#!/usr/bin/env bash
# The demo: a Fashion-MNIST subset → EfficientNet-Lite0 (real ImageNet weights, converted
# offline) → classification heads and two price heads → leaderboards, plots, a prediction.
set -euo pipefail
cd "$(dirname "$0")/.."
BN=${BN:-.venv/bin/bottleneck}
OUT=${OUT:-demo-out}
LIMIT=${LIMIT:-1000}
mkdir -p "$OUT"

echo "== 1. extract: Fashion-MNIST ($LIMIT images per split) through EfficientNet-Lite0 @ 96px"
"$BN" extract fashion-mnist --backbone efficientnet_lite0 --weights imagenet --image-size 96 \
    --limit "$LIMIT" --out "$OUT/cache"
"$BN" info "$OUT/cache" | head -n 6

echo "== 2. synthetic prices per image (the price-regression task)"
"$BN" targets "$OUT/cache" --synthetic-prices --sigma 5 --seed 0

echo "== 3. bench: classification heads, ranked on val"
"$BN" bench "$OUT/cache" --task classify --heads logreg,linear-svm,svm,ridge,dense \
    --grid C=0.01,0.1,1 --out "$OUT/bench-classify"

echo "== 4. bench: price heads (R² in price units, beside the ceiling)"
"$BN" bench "$OUT/cache" --task regress --heads ridge,dense --out "$OUT/bench-price"

echo "== 5. fit one head, then predict raw images with the same backbone and preprocessing"
"$BN" fit "$OUT/cache" --head logreg --task classify --out "$OUT/model-logreg" --overwrite
"$(dirname "$BN")/python" - "$OUT/photos" <<'PY'
import sys
from pathlib import Path
from PIL import Image
from bottleneck._tf import import_tensorflow_quietly
import_tensorflow_quietly()
from bottleneck.data.arrays import fashion_mnist_source
source = fashion_mnist_source(limit=5)
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
for item in [it for it in source.items() if it.split == "test"][:5]:
    name = f"{source.classes[item.label].replace('/', '-')}-{item.key.replace('/', '-')}.png"
    Image.fromarray(source.load_image(item)).save(out / name)
PY
"$BN" predict "$OUT/model-logreg" "$OUT/photos"

echo "== done: leaderboards in $OUT/bench-*/leaderboard.md, plots in $OUT/*/*.png"
