"""The device check: run on the lent H200 in one call (≤ 5 minutes), or here with --quick.

    python3 benchmarks/gpu/check.py [--kit bench-out/gpu-kit] [--out $OUT/gpu-check.json]

Installs nothing (benchmarks/gpu/README.md gives the device command that installs the kit's
wheels first). Sections, in order, each with a time cap inside one overall ``--budget-s``:
environment, jpegs (throughput JPEGs made here), decode (decode-only img/s on all cores), then
per backend parity (``bottleneck.extract`` over the kit's JPEGs, fp32 and bf16, against the
CPU reference), model (Lite0 alone on a device-resident batch) and extract (end-to-end img/s);
reference (timm / torchvision on the same GPU); finetune (Fashion-MNIST); and, derived, memory
(peak GPU bytes) and summary (the issue's targets). Keras sections run in one worker process
per backend (a process runs one backend) that is killed at its cap; every section's state is
merged into the output JSON, rewritten atomically after every change, so whatever stops the
run leaves the sections done so far. A failing section records its error and the run goes on.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_summary  # noqa: E402
import kitlib  # noqa: E402
from check_ctx import Context, read_json, run_section, write_json  # noqa: E402

HOST = ("environment", "jpegs", "decode")
CAPS = {"environment": (20, 20), "jpegs": (30, 15), "decode": (30, 10), "parity": (60, 40),
        "model": (25, 15), "extract": (45, 20), "reference": (35, 15), "finetune": (130, 40),
        "gpudecode": (45, 10)}
DEVICE = {"budget_s": 285, "devices": "gpu", "precisions": "bf16,fp32", "batch_size": 256,
          "e2e_images": 2048,
          "jpeg_size": None, "min_seconds": 1.5, "fmnist_size": 96, "fmnist_epochs": 3,
          "fmnist_limit": None, "dense_epochs": 15}
QUICK = {"budget_s": 170, "devices": "cpu", "precisions": "fp32", "batch_size": 4,
         "e2e_images": 4, "jpeg_size": [96, 128], "min_seconds": 0.0, "fmnist_size": 32,
         "fmnist_epochs": 1, "fmnist_limit": 8, "dense_epochs": 1}


def plan(backends: list[str], quick: bool = False) -> list[tuple[str, list[str]]]:
    """(worker, sections) in run order: the host first, then the first backend, timm and
    torchvision, the fine-tune (first backend; in the same worker with --quick, where
    starting processes is what costs), then the other backends."""
    first = backends[0]
    keras = [(b, [f"{s}_{b}" for s in ("parity", "model", "extract")]
              + (["gpudecode_torch"] if b == "torch" else [])) for b in backends]
    if quick:
        keras[0][1].append("finetune")
    tune = [] if quick else [(f"finetune:{first}", ["finetune"])]
    return [("host", list(HOST)), keras[0], ("reference", ["reference"]), *tune, *keras[1:]]


def cap(section: str, args: argparse.Namespace) -> float:
    """The section's time cap in seconds (``--cap-scale`` times the table's)."""
    return CAPS[section.split("_")[0]][int(args.quick)] * args.cap_scale


class Run:
    """The orchestrator: runs the plan and keeps the output JSON up to date."""

    def __init__(self, args: argparse.Namespace, kit_info: dict[str, Any]) -> None:
        self.args, self.kit_info = args, kit_info
        self.started = time.time()
        self.notes: dict[str, dict[str, Any]] = {}  # statuses set here (not run, timeout)
        self.order = [s for _, names in plan(args.backends, args.quick) for s in names]

    def document(self) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        for name in self.order:
            state = read_json(self.args.work / "state" / f"{name}.json")
            sections[name] = (state or {}) | self.notes.get(name, {}) or {"status": "pending"}
        sections["memory"] = check_summary.memory(sections)
        sections["summary"] = check_summary.summary(sections, self.args.backends)
        return {"check": {"format": 1, "quick": self.args.quick, "argv": self.args.argv,
                          "started": _iso(self.started), "elapsed_s":
                          round(time.time() - self.started, 1), "budget_s": self.args.budget_s,
                          "finished": None},
                "kit": {k: self.kit_info.get(k) for k in ("created", "quick", "size_mib",
                                                          "references")},
                "sections": sections}

    def save(self, finished: bool = False) -> dict[str, Any]:
        doc = self.document()
        if finished:
            doc["check"]["finished"] = _iso(time.time())
        self.args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.args.out, doc)
        return doc

    def run(self) -> dict[str, Any]:
        selected = set(self.args.sections or self.order)
        for worker, names in plan(self.args.backends, self.args.quick):
            wanted = [n for n in names if n in selected]
            for name in set(names) - set(wanted):
                self.notes[name] = {"status": "not run", "reason": "not in --sections"}
            if not wanted:
                continue
            if worker == "host":
                ctx = Context(self.args, self.args.kit, self.kit_info, self.args.work, None)
                for name in wanted:
                    state = run_section(ctx, name, _host_function(name),
                                        cap(name, self.args))
                    self._report(name, state)
                    self.save()
            else:
                self._worker(worker, wanted)
        return self.save(finished=True)

    def _report(self, name: str, state: dict[str, Any]) -> None:
        reason = state.get("reason") or state.get("error") or ""
        print(f"{name}: {state.get('status')} ({state.get('seconds', '?')} s) {reason}"[:300],
              flush=True)

    def _worker(self, worker: str, names: list[str]) -> None:
        left = self.args.deadline - time.time() - 3
        limit = min(sum(cap(n, self.args) for n in names), left)
        if limit < 10:
            for name in names:
                self.notes[name] = {"status": "not run", "reason": "the budget was spent"}
            self.save()
            return
        command = [sys.executable, str(Path(__file__).resolve()), *self.args.argv,
                   "--worker", worker, "--sections", ",".join(names),
                   "--work", str(self.args.work), "--deadline", str(self.args.deadline)]
        env = os.environ | {"BOTTLENECK_CACHE_DIR": str(self.args.work / "cache"),
                            "PYTHONUNBUFFERED": "1"}
        backend = worker.split(":")[-1]
        if backend in ("jax", "torch", "tensorflow"):
            env["KERAS_BACKEND"] = backend
        if self.args.devices == "cpu":
            env |= {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
        with open(self.args.log, "a") as log:
            log.write(f"\n===== worker {worker}: {', '.join(names)} =====\n")
            log.flush()
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            start = time.time()
            while process.poll() is None and time.time() - start < limit:
                time.sleep(1)
                self.save()
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                why = f"stopped at its cap ({limit:.0f} s)"
            else:
                why = f"exited with code {process.returncode}"
        for name in names:
            state = read_json(self.args.work / "state" / f"{name}.json") or {}
            if state.get("status") == "running":
                self.notes[name] = {"status": "timeout" if "cap" in why else "error",
                                    "seconds": round(time.time() - state["started"], 1),
                                    "error": f"the {worker} worker {why} during this section",
                                    "log_tail": _tail(self.args.log)}
            elif not state:
                self.notes[name] = {"status": "not run",
                                    "reason": f"the {worker} worker {why} before it"}
            self._report(name, state | self.notes.get(name, {}))
        self.save()


def _host_function(name: str) -> Any:
    import check_host

    return check_host.SECTIONS[name]


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(
        timespec="seconds")


def _tail(path: Path, chars: int = 2500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def worker_main(args: argparse.Namespace, kit_info: dict[str, Any]) -> int:
    """One worker process: its sections, one after another, on its backend."""
    import check_host
    import check_sections

    backend = args.worker.split(":")[-1]
    ctx = Context(args, args.kit, kit_info, args.work, backend)
    for name in args.sections:
        kind = name.split("_")[0]
        function = check_host.SECTIONS.get(kind) or check_sections.SECTIONS[kind]
        run_section(ctx, name, function, cap(name, args))
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", type=Path, default=HERE.parents[1] / "bench-out" / "gpu-kit")
    parser.add_argument("--out", type=Path, default=None,
                        help="the JSON (default $OUT/gpu-check.json, else bench-out/)")
    parser.add_argument("--work", type=Path, default=None, help="scratch (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, CPU, for the tests")
    parser.add_argument("--backends", default="jax,torch")
    parser.add_argument("--sections", default=None, help="comma-separated subset to run")
    parser.add_argument("--keep-work", action="store_true")
    parser.add_argument("--cap-scale", type=float, default=1.0,
                        help="multiply every section's time cap (e.g. to rerun one section)")
    for name, value in DEVICE.items():
        kind = int if isinstance(value, int) else float if isinstance(value, float) else str
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                            nargs=2 if name == "jpeg_size" else None,
                            help=f"device default {value}, --quick {QUICK[name]}")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    for name, value in (QUICK if args.quick else DEVICE).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.fmnist_limit is not None:
        args.fmnist_limit = int(args.fmnist_limit)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    args.sections = [s.strip() for s in args.sections.split(",")] if args.sections else None
    if args.out is None:
        base = Path(os.environ["OUT"]) if os.environ.get("OUT") else HERE.parents[1] / "bench-out"
        args.out = base / "gpu-check.json"
    args.log = args.out.with_suffix(".log")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    kit_info = read_json(args.kit / kitlib.KIT_JSON)
    if not kit_info:
        print(f"error: no kit at {args.kit} (build it with benchmarks/gpu/make_kit.py)",
              file=sys.stderr)
        return 2
    if args.worker:
        return worker_main(args, kit_info)
    temp = args.work is None
    args.work = Path(tempfile.mkdtemp(prefix="gpu-check-")) if temp else args.work.resolve()
    args.deadline = time.time() + args.budget_s
    (args.work / "cache").mkdir(parents=True, exist_ok=True)
    weights = args.work / "cache" / kitlib.WEIGHTS
    if not weights.exists():  # the kit's Lite0 file is what "imagenet" resolves to
        weights.symlink_to((args.kit / kitlib.WEIGHTS).resolve(), target_is_directory=True)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text("")
    try:
        doc = Run(args, kit_info).run()
    finally:
        if temp and not args.keep_work:
            shutil.rmtree(args.work, ignore_errors=True)
    print("\n".join(check_summary.lines(doc["sections"]["summary"]["results"])))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
