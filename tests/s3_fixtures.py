"""The S3 server as pytest fixtures: one per test module, its AWS environment set for the
module's in-process clients (pyarrow.fs, boto3 and Polars read it; their cached clients are
dropped on both sides). Subprocesses get `server.env` added to theirs."""

from __future__ import annotations

import pytest

from tests.s3_server import S3Server, start_s3_server


def _drop_cached_clients() -> None:
    from pipelines import s3_objects, storage

    storage.filesystem.cache_clear()
    s3_objects.client.cache_clear()


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> S3Server:
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    env = pytest.MonkeyPatch()
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3"):
        env.delenv(var, raising=False)
    for var, value in server.env.items():
        env.setenv(var, value)
    _drop_cached_clients()
    try:
        yield server
    finally:
        env.undo()
        _drop_cached_clients()
        server.stop()
