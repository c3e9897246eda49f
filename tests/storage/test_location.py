"""Locations: a local path stays a plain Path, a URL becomes an fsspec file system with the
options of the env and the CLI, and no secret is ever shown. (That a local extract + fit never
imports fsspec or s3fs is checked in a fresh process by tests/test_without_tensorflow.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bottleneck.errors import UserError
from bottleneck.storage.location import (
    Remote,
    is_url,
    parse_option,
    redact_options,
    redact_url,
    remote_errors,
    resolve,
    set_storage_options,
    storage_options,
)


@pytest.fixture(autouse=True)
def no_cli_options():
    yield
    set_storage_options(())


def test_local_paths_and_file_urls_stay_paths(tmp_path: Path) -> None:
    assert not is_url(tmp_path) and not is_url(str(tmp_path)) and not is_url("file:///x")
    assert is_url("s3://bucket/cache") and is_url("memory://a") and is_url("gs://b/c")
    assert resolve(str(tmp_path)) == tmp_path
    assert resolve(f"file://{tmp_path}/a%20b") == tmp_path / "a b"
    assert resolve("~/x") == Path.home() / "x"


def test_options_come_from_the_env_then_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTTLENECK_STORAGE_OPTIONS",
                       '{"endpoint_url": "http://env:9000", "client_kwargs": {"a": 1}}')
    assert storage_options()["endpoint_url"] == "http://env:9000"
    set_storage_options(["endpoint_url=http://cli:9000", "client_kwargs.region_name=eu",
                         "anon=true", "max_concurrency=4"])
    assert storage_options() == {"endpoint_url": "http://cli:9000", "anon": True,
                                 "max_concurrency": 4,
                                 "client_kwargs": {"a": 1, "region_name": "eu"}}
    assert parse_option("key=a=b") == ("key", "a=b")
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_option("endpoint_url")
    monkeypatch.setenv("BOTTLENECK_STORAGE_OPTIONS", "[1]")
    with pytest.raises(UserError, match="JSON object"):
        storage_options()


def test_secrets_are_never_shown() -> None:
    assert redact_url("s3://AKIA:hunter2@bucket/x?X-Amz-Signature=abc") == "s3://bucket/x"
    shown = redact_options({"key": "AKIA", "secret": "s", "token": "t", "endpoint_url": "u",
                            "client_kwargs": {"aws_secret_access_key": "s", "region_name": "r"},
                            "password": "p", "account_key": "k", "sas_token": "t"})
    assert "AKIA" not in json.dumps(shown) and "\"s\"" not in json.dumps(shown)
    assert shown["endpoint_url"] == "u" and shown["client_kwargs"]["region_name"] == "r"
    assert {shown[k] for k in ("key", "secret", "token", "password", "account_key",
                               "sas_token")} == {"***"}


def test_source_messages_carry_no_credentials() -> None:
    from bottleneck.data import WebDatasetSource

    with pytest.raises(UserError) as caught:
        WebDatasetSource("memory://user:hunter2@nowhere/a.tar")
    assert "hunter2" not in caught.value.format_message()
    assert "memory://nowhere/a.tar" in caught.value.format_message()


def test_a_url_resolves_to_its_file_system() -> None:
    found = resolve("memory://bottleneck-test/loc/")
    assert isinstance(found, Remote) and found.url == "memory://bottleneck-test/loc"
    found.fs.pipe_file(found.child("a.txt"), b"hi")
    assert found.read_bytes("a.txt") == b"hi" and found.read_bytes("b.txt") is None
    assert found.names() == ["a.txt"] and found.sub("x").url == "memory://bottleneck-test/loc/x"


def test_unknown_or_missing_protocols_are_one_line() -> None:
    with pytest.raises(UserError, match="not a storage protocol"):
        resolve("nosuch://bucket/x")
    if "gcsfs" not in sys.modules:
        try:
            import gcsfs  # noqa: F401
        except ImportError:
            with pytest.raises(UserError, match=r"bottleneck\[gcs\]"):
                resolve("gs://bucket/x")


def test_store_errors_name_the_url_without_credentials() -> None:
    with pytest.raises(UserError) as caught, remote_errors("s3://k:secret@b/c"):
        raise PermissionError("ExpiredToken: the token has expired")
    line = caught.value.format_message()
    assert line.startswith("s3://b/c: access refused") and "secret@" not in line
    assert "credentials" in line
    with pytest.raises(ZeroDivisionError), remote_errors("s3://b/c"):  # a bug keeps its trace
        raise ZeroDivisionError
