"""The S3 emulator fixtures for the storage tests."""

from tests.remote_fixtures import s3_fixture, s3_server_fixture  # noqa: F401 - fixtures
