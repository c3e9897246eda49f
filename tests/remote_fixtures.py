"""An S3 emulator on loopback (moto's server mode) and helpers for tests of URLs."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator

import pytest

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class S3Emulator:
    """moto's S3 server on 127.0.0.1, stoppable and restartable on the same port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def options(self) -> dict:
        """Storage options that reach this emulator and give up fast when it is down."""
        return {"endpoint_url": self.endpoint, "skip_instance_cache": True,
                "config_kwargs": {"connect_timeout": 1, "read_timeout": 5,
                                  "retries": {"max_attempts": 1}}}

    def stop(self) -> None:
        self._server.stop()

    def restart(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port,
                                          verbose=False)
        self._server.start()

    def new_bucket(self) -> str:
        """A fresh bucket's name (created)."""
        import s3fs

        name = f"b-{uuid.uuid4().hex[:12]}"
        s3fs.S3FileSystem(**self.options()).mkdir(name)
        return name


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture() -> Iterator[S3Emulator]:
    saved = {key: os.environ.get(key) for key in FAKE_CREDENTIALS}
    os.environ.update(FAKE_CREDENTIALS)
    server = S3Emulator()
    try:
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(name="s3")
def s3_fixture(s3_server: S3Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path) -> S3Emulator:
    """The emulator, with this process's storage options pointing at it and a private local
    read-through cache."""
    monkeypatch.setenv("BOTTLENECK_STORAGE_OPTIONS", json.dumps(s3_server.options()))
    monkeypatch.setenv("BOTTLENECK_LOCAL_CACHE", str(tmp_path / "local-cache"))
    return s3_server
