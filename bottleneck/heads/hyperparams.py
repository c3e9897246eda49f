"""Head hyperparameters from ``--param key=value`` pairs and a JSON or YAML ``--params`` file.

Values are typed the way a person means them: ``C=0.1`` → 0.1, ``epochs=30`` → 30,
``standardize=false`` → False, ``lr_decay=none`` → None, ``learning_rate=1e-4`` → 0.0001,
``hidden=512,128`` or ``hidden=(512,128)`` or ``hidden=[512, 128]`` → (512, 128),
``hidden=256,`` → (256,). Anything else stays a string.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bottleneck.errors import UserError

NONE_WORDS = {"none", "null", "~", ""}


def _tuples(value: Any) -> Any:
    """Lists → tuples, recursively (hyperparameters are hashable and compare by value)."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def parse_value(text: str) -> Any:
    """One ``--param`` value as int, float, bool, None, tuple or string."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        inner = text[1:-1].strip()
        return tuple(parse_value(p) for p in inner.split(",") if p.strip()) if inner else ()
    if "," in text and not text.startswith(("[", "{", "'", '"')):
        return tuple(parse_value(p) for p in text.split(",") if p.strip())
    if text.lower() in NONE_WORDS:
        return None
    import yaml  # here, not at import: a command given no --param pays nothing for it

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            return float(value)
        except ValueError:
            return value
    return _tuples(value)


def parse_param_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``["C=0.1", "hidden=512,128"]`` → ``{"C": 0.1, "hidden": (512, 128)}``."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param '{pair}' must look like key=value, e.g. --param C=0.1.")
        params[key.strip()] = parse_value(value)
    return params


def load_params_file(path: str | Path) -> dict[str, Any]:
    """A flat mapping of hyperparameters from a JSON or YAML file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"params file not found: {path}")
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML reads JSON too
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise UserError(f"{path} is not valid JSON or YAML: {reason}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise UserError(f"{path} must hold a mapping of parameter names to values, "
                        "e.g. {\"C\": 0.1} or `C: 0.1`.")
    return _tuples(data)


def collect_params(pairs: Iterable[str] = (), params_file: str | Path | None = None
                   ) -> dict[str, Any]:
    """The file's parameters, then the ``--param`` pairs on top (the command line wins)."""
    params = load_params_file(params_file) if params_file else {}
    params.update(parse_param_pairs(pairs))
    return params
