"""The S3 emulator fixtures for the storage tests."""

from tests.remote_fixtures import s3, s3_server  # noqa: F401 - fixtures
