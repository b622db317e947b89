"""Locations: one bucket under two spellings, local paths absolute, joins normalized; the S3A
settings Spark gets from the AWS environment hold no credential."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.spark_session import s3a_settings
from pipelines.storage import Location


def test_s3_and_s3a_are_one_bucket_and_spark_gets_s3a():
    a, b = Location("s3a://walkrank/runs/t/"), Location("s3://walkrank/runs/t")
    assert a == b and a.uri == "s3://walkrank/runs/t"
    assert a.spark_uri == "s3a://walkrank/runs/t"
    assert (a / "fit" / ".." / "events").uri == "s3://walkrank/runs/t/events"
    assert (a.bucket, a.key, a.name, a.parent.uri) == (
        "walkrank",
        "runs/t",
        "t",
        "s3://walkrank/runs",
    )
    assert not a.is_local
    with pytest.raises(ValueError, match="not on the local filesystem"):
        a.local_path  # noqa: B018


def test_local_paths_and_file_uris(tmp_path):
    assert Location(f"file://{tmp_path}/x") == Location(tmp_path / "x")
    rel = Location("runs/t")
    assert rel.is_local and rel.local_path == Path.cwd() / "runs" / "t"
    assert rel.spark_uri == str(Path.cwd() / "runs" / "t")
    (Location(tmp_path) / "a" / "b.txt").write_text("one")
    (Location(tmp_path) / "a" / "b.txt").write_text("two")  # replaced whole
    assert (tmp_path / "a" / "b.txt").read_text() == "two"
    assert [e.rel for e in Location(tmp_path / "a").list()] == ["b.txt"]  # no temp file left
    Location(tmp_path / "a").delete()
    Location(tmp_path / "a").delete()  # absent is fine
    assert not (tmp_path / "a").exists()


def test_s3a_settings_come_from_the_aws_environment_without_credentials():
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret-example",
    }
    got = s3a_settings(env)
    assert got == {
        "fs.s3a.endpoint": "http://127.0.0.1:9000",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.endpoint.region": "eu-west-1",
    }
    assert s3a_settings({}) == {}
    profile = s3a_settings({"AWS_PROFILE": "prod", "AWS_DEFAULT_REGION": "us-east-2"})
    assert profile["fs.s3a.endpoint.region"] == "us-east-2"
    assert profile["fs.s3a.aws.credentials.provider"].endswith("DefaultCredentialsProvider")
