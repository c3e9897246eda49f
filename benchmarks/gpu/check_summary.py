"""The figures against issue 18's targets for the lent H200, and peak GPU memory, from the
sections' results (a target whose figures are missing says which section to look at)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _results(sections: dict[str, Any], name: str) -> dict[str, Any]:
    return (sections.get(name) or {}).get("results") or {}


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _target(name: str, value: float | None, threshold: float, at_least: bool = True,
            detail: str = "") -> dict[str, Any]:
    met = None if value is None else (value >= threshold if at_least else value <= threshold)
    return {"target": name, "value": value, "threshold": threshold,
            "rule": ">=" if at_least else "<=", "met": met, "detail": detail}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a and b else None


def _min_cosine(parity: dict[str, Any], precision: str) -> tuple[float | None, str]:
    found = {k: v["cosine_min"] for k, v in parity.items()
             if k.endswith("/" + precision) and isinstance(v, dict) and "cosine_min" in v}
    if not found:
        return None, "no parity figures"
    worst = min(found, key=found.__getitem__)
    return found[worst], (f"worst: {worst} of {len(found)} (its median row: "
                          f"{parity[worst].get('cosine_median')})")


def targets(sections: dict[str, Any], backends: list[str]) -> list[dict[str, Any]]:
    """One entry per target (per backend where the issue names no backend)."""
    out = []
    for backend in backends:
        parity = _results(sections, f"parity_{backend}")
        value, detail = _min_cosine(parity, "fp32")
        out.append(_target(f"fp32 features vs the CPU reference, {backend}: min per-row cosine",
                           value, 0.99999, detail=detail))
        value, detail = _min_cosine(parity, "bf16")
        out.append(_target(f"bf16 features vs the CPU reference, {backend}: min per-row cosine",
                           value, 0.999, detail=detail))
    fmnist = _results(sections, "finetune")
    fp32, bf16 = (_get(fmnist, p, "dense_test_accuracy") for p in ("fp32", "bf16"))
    gap = round(abs(fp32 - bf16) * 100, 3) if fp32 is not None and bf16 is not None else None
    out.append(_target("Fashion-MNIST dense head: |bf16 − fp32| test accuracy, points", gap, 0.5,
                       at_least=False, detail=f"fp32 {fp32}, bf16 {bf16}"))
    decode = _get(_results(sections, "decode"), "decode_resize_hash", "img_s")
    timm = _get(_results(sections, "reference"), "timm tf_efficientnet_lite0/bf16", "img_s")
    for backend in backends:
        steady = _get(_results(sections, f"extract_{backend}"), "bf16", "steady_img_s")
        out.append(_target(f"Lite0 end to end from JPEGs, {backend} bf16 / decode-only rate",
                           _ratio(steady, decode), 0.8 if backend == "jax" else 0.0,
                           detail=f"extract {steady} img/s, decode+resize+hash {decode} img/s"))
        model = _get(_results(sections, f"model_{backend}"), "bf16", "device_resident", "img_s")
        out.append(_target(f"Lite0 model-only bf16, {backend} / timm tf_efficientnet_lite0",
                           _ratio(model, timm), 0.7 if backend == "jax" else 0.0,
                           detail=f"{backend} {model} img/s, timm {timm} img/s"))
    tuned = _get(fmnist, "finetune", "test_accuracy")
    out.append(_target("Fashion-MNIST fine-tuned Lite0: test accuracy", tuned, 0.93,
                       detail=f"{_get(fmnist, 'image_size')} px, "
                              f"{_get(fmnist, 'finetune', 'epochs')} epochs"))
    for entry in out:  # the issue sets no bar for these: report only
        if entry["threshold"] == 0.0:
            entry.update(threshold=None, met=None, rule="report")
    return out


def _peaks(data: Any) -> Iterator[int]:
    if isinstance(data, dict):
        if isinstance(data.get("peak_gpu_bytes"), int):
            yield data["peak_gpu_bytes"]
        for value in data.values():
            yield from _peaks(value)


def memory(sections: dict[str, Any]) -> dict[str, Any]:
    """Peak GPU memory per section (bytes) and over all, from what the sections recorded."""
    per = {name: max(found) for name, state in sections.items()
           if (found := list(_peaks((state or {}).get("results"))))}
    if not per:
        return {"status": "skipped", "reason": "no section recorded GPU memory (no GPU seen)"}
    return {"status": "ok", "results": {"peak_gpu_bytes": per,
                                        "max_gib": round(max(per.values()) / 2**30, 3)}}


def summary(sections: dict[str, Any], backends: list[str]) -> dict[str, Any]:
    found = targets(sections, backends)
    met = [t["met"] for t in found if t["met"] is not None]
    return {"status": "ok", "results": {
        "targets": found, "met": sum(met), "missed": len(met) - sum(met),
        "unknown": sum(t["met"] is None and t["rule"] != "report" for t in found)}}


def lines(summary_results: dict[str, Any]) -> list[str]:
    """The targets as printable lines."""
    marks = {True: "MET   ", False: "MISSED", None: "  -   "}
    return [f"{marks[t['met']]} {t['target']}: {t['value']} ({t['rule']} {t['threshold']}) "
            f"{t['detail']}" for t in summary_results.get("targets", [])]
