"""Where a cache, model, report, export or dataset lives: a local path, or any fsspec URL.

A location is resolved once by :func:`resolve`: a local path (also ``file://``) stays a plain
:class:`~pathlib.Path` and never imports fsspec, so the local fast path is unchanged; a URL
(``s3://``, ``gs://``, ``az://``, ``memory://``...) becomes a :class:`Remote`, an fsspec file
system with its options. Options come from ``BOTTLENECK_STORAGE_OPTIONS`` (a JSON object) and
``--storage-option KEY=VALUE`` (repeatable, later wins) on top of the store's own credential
chain. Nothing here ever prints or records a secret: :func:`redact_url` drops credentials from
a URL and :func:`redact_options` hides secret-looking option values.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from bottleneck.errors import UserError

OPTIONS_ENV = "BOTTLENECK_STORAGE_OPTIONS"
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
_SECRET = re.compile(r"secret|password|passwd|token|credential|key|sas|signature", re.I)
_NOT_SECRET = {"endpoint_url", "region_name", "anon", "use_ssl", "requester_pays"}
# the optional package each protocol needs (`pip install 'bottleneck[EXTRA]'`)
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
          "abfss": "azure"}

_cli_options: dict[str, Any] = {}


def is_url(location: str | os.PathLike[str] | None) -> bool:
    """True for ``scheme://...`` other than ``file://`` (a local path in URL dress)."""
    if location is None or isinstance(location, os.PathLike):
        return False
    found = _URL.match(str(location))
    return bool(found) and found.group(1).lower() != "file"


def local_path(location: str | os.PathLike[str]) -> Path:
    """A local location as a Path (``file:///x`` → ``/x``; ``~`` expanded)."""
    text = str(location)
    if text.lower().startswith("file://"):
        text = unquote(urlsplit(text).path)
    return Path(text).expanduser()


def parse_option(pair: str) -> tuple[str, Any]:
    """``KEY=VALUE`` → (key, value), the value read as JSON when it parses (``true``, ``3``,
    ``{"a": 1}``), else kept as text. Dotted keys nest: ``client_kwargs.region_name=x``."""
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--storage-option {pair!r} is not KEY=VALUE, e.g. "
                        "--storage-option endpoint_url=http://localhost:9000")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


def _nest(options: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        options = options.setdefault(part, {})
        if not isinstance(options, dict):
            raise UserError(f"--storage-option {key}: {part} is already set to a value.")
    options[last] = value


def set_storage_options(pairs: list[str] | tuple[str, ...]) -> None:
    """The ``--storage-option KEY=VALUE`` pairs of this command (they override the env)."""
    _cli_options.clear()
    add_storage_options(pairs)


def add_storage_options(pairs: list[str] | tuple[str, ...]) -> None:
    """More ``KEY=VALUE`` pairs, on top of those already given."""
    for pair in pairs:
        _nest(_cli_options, *parse_option(pair))


def storage_options() -> dict[str, Any]:
    """The options every URL of this process opens with: the env's JSON, then the CLI's."""
    options: dict[str, Any] = {}
    raw = os.environ.get(OPTIONS_ENV, "").strip()
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict):
            raise UserError(f"{OPTIONS_ENV} must hold a JSON object, e.g. "
                            '\'{"endpoint_url": "http://localhost:9000"}\'.')
        options.update(loaded)
    for key, value in _cli_options.items():
        if isinstance(value, dict) and isinstance(options.get(key), dict):
            options[key] = options[key] | value
        else:
            options[key] = value
    return options


def redact_url(url: str) -> str:
    """The URL without ``user:password@`` and without a query string (signed URLs carry
    their secret there)."""
    if not is_url(url):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_options(options: dict[str, Any]) -> dict[str, Any]:
    """A copy with every secret-looking value (key, token, password...) replaced by ``***``."""
    shown: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            shown[key] = redact_options(value)
        elif key not in _NOT_SECRET and _SECRET.search(key):
            shown[key] = "***"
        else:
            shown[key] = value
    return shown


@dataclass
class Remote:
    """A folder (prefix) in an object store or other fsspec file system."""

    url: str  # as given, without credentials
    fs: Any = field(repr=False)
    path: str  # the file system's own path of the folder (no protocol)

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0].lower()

    def child(self, name: str) -> str:
        """The fs path of ``name`` inside this folder."""
        return f"{self.path.rstrip('/')}/{name}"

    def url_of(self, name: str) -> str:
        """The URL of ``name`` inside this folder (for messages and records)."""
        return f"{self.url.rstrip('/')}/{name}"

    def sub(self, name: str) -> Remote:
        """The folder ``name`` inside this one."""
        return Remote(self.url_of(name), self.fs, self.child(name))

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self.child(name)))

    def read_bytes(self, name: str) -> bytes | None:
        """The bytes of ``name``, or None when there is no such object."""
        try:
            return bytes(self.fs.cat_file(self.child(name)))
        except FileNotFoundError:
            return None

    def names(self) -> list[str]:
        """Names of the objects right inside this folder (none when it does not exist)."""
        try:
            listed = self.fs.ls(self.path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in listed)

    def refresh(self) -> None:
        """Forget listings the file system cached (another writer may have changed them)."""
        self.fs.invalidate_cache(self.path)


def resolve(location: str | os.PathLike[str],
            options: dict[str, Any] | None = None) -> Path | Remote:
    """A local Path, or a :class:`Remote` with its file system (``options``, else those of
    :func:`storage_options`, applied)."""
    if not is_url(location):
        return local_path(location)
    text = str(location)
    protocol = text.split("://", 1)[0].lower()
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec comes with every remote extra
        raise UserError(f"{redact_url(text)}: URLs need fsspec; pip install "
                        f"'bottleneck[{EXTRAS.get(protocol, 's3')}]'.") from None
    try:
        fs, path = fsspec.core.url_to_fs(
            text, **(storage_options() if options is None else options))
    except ImportError:
        extra = EXTRAS.get(protocol)
        hint = f"pip install 'bottleneck[{extra}]'" if extra else "install its fsspec package"
        raise UserError(f"{redact_url(text)}: no file system for {protocol}:// here; "
                        f"{hint}.") from None
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise UserError(f"{redact_url(text)}: {protocol}:// is not a storage protocol "
                            "fsspec knows; give a local path or s3://, gs://, az://, "
                            "memory://...") from None
        raise
    except TypeError as exc:  # an option the file system does not take
        raise UserError(f"{redact_url(text)}: a storage option is not accepted by "
                        f"{protocol}:// ({exc}); check --storage-option / {OPTIONS_ENV}.") \
            from None
    return Remote(redact_url(text).rstrip("/"), fs, str(path).rstrip("/"))


def remote_error_types() -> tuple[type[BaseException], ...]:
    """Errors a store or the network raises (their modules are imported only if loaded)."""
    import sys

    found: list[type[BaseException]] = [OSError, TimeoutError, ConnectionError]
    if "botocore" in sys.modules:
        from botocore.exceptions import BotoCoreError, ClientError

        found += [BotoCoreError, ClientError]
    if "aiohttp" in sys.modules:
        from aiohttp import ClientError as HttpError

        found.append(HttpError)
    return tuple(found)


def remote_message(exc: BaseException) -> str:
    """What went wrong, in a few words a user can act on."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    if any(word in lowered for word in ("expired", "invalidaccesskeyid", "credentials",
                                        "signaturedoesnotmatch", "accessdenied", "forbidden",
                                        "permission")) or isinstance(exc, PermissionError):
        return f"access refused ({text[:160]}): check the credentials (they may have expired) " \
               "and the store's permissions"
    if any(word in lowered for word in ("quota", "entitytoolarge", "no space", "storage limit")):
        return f"the store is full or over quota ({text[:160]}): free space or raise the quota"
    if any(word in lowered for word in ("connect", "timeout", "timed out", "unavailable",
                                        "503", "slowdown", "reset by peer", "broken pipe")):
        return f"the store did not answer ({text[:160]}): check that it is up and reachable"
    if isinstance(exc, FileNotFoundError) or "nosuchbucket" in lowered:
        return f"not found ({text[:160]}): check the URL (does the bucket exist?)"
    return text[:200]


def _local(exc: BaseException) -> bool:
    name = getattr(exc, "filename", None)
    return isinstance(exc, OSError) and isinstance(name, str | os.PathLike) \
        and not is_url(name) and os.path.isabs(name)


@contextmanager
def remote_errors(url: str, todo: str = "re-run the same command") -> Iterator[None]:
    """Turn a store's or the network's error inside the block into one line naming ``url``
    and what to do; other exceptions (bugs) keep their traceback."""
    try:
        yield
    except UserError:
        raise
    except remote_error_types() as exc:
        if _local(exc):  # the local disk's error (staging): machine_errors words it
            raise
        raise UserError(f"{redact_url(url)}: {remote_message(exc)}; then {todo}.") from None
