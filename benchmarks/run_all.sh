#!/usr/bin/env bash
# Run every benchmark script in turn; figures go to bench-out/*.json and the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p bench-out
for script in bench_extract bench_fast_decode bench_layers bench_bf16 bench_heads \
    bench_fashion_mnist bench_finetune bench_grow bench_augment bench_report \
    bench_near_duplicates bench_remote; do
    echo "== benchmarks/$script.py"
    "$PY" "benchmarks/$script.py" --json "bench-out/$script.json"
done
