"""The tests' S3 server (tests/s3_server.py) is a real one: signed requests, conditional
writes (If-None-Match, which writers use to never overwrite) and pyarrow's S3 filesystem
configured from the environment alone; stopped, its port is closed."""

from __future__ import annotations

import socket

import pyarrow.fs
import pytest
from botocore.exceptions import ClientError

from tests.s3_server import s3_server


def test_s3_server_conditional_put_and_pyarrow(tmp_path, monkeypatch):
    with s3_server(tmp_path) as server:
        client = server.client()
        key = "runs/r1/_SUCCESS.json"
        client.put_object(Bucket=server.bucket, Key=key, Body=b'{"ok": 1}', IfNoneMatch="*")
        with pytest.raises(ClientError) as lost:
            client.put_object(Bucket=server.bucket, Key=key, Body=b"other", IfNoneMatch="*")
        error = lost.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 412
        assert error["Error"]["Code"] == "PreconditionFailed"

        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(var, raising=False)
        for var, value in server.env.items():
            monkeypatch.setenv(var, value)
        fs, path = pyarrow.fs.FileSystem.from_uri(f"s3://{server.bucket}/{key}")
        with fs.open_input_stream(path) as f:
            assert f.read() == b'{"ok": 1}'  # the first write, not the refused one
        port = server.port

    assert server.process.poll() is not None
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass
