"""What S3 offers beyond a filesystem, through boto3: ETags and conditional writes.

pyarrow.fs reads and writes the data; these are the two things it does not expose. The
client takes the same environment as every other one (AWS_* variables and profiles;
`AWS_ENDPOINT_URL` for an S3-compatible server, then with path-style addressing), so a
run needs no setting of WalkRank's own.
"""

from __future__ import annotations

import functools
import os

from pipelines.storage import Location


@functools.lru_cache(maxsize=1)
def client():  # -> botocore S3 client
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    # An S3-compatible server on an address or a host without bucket subdomains: path style.
    style = {"addressing_style": "path"} if endpoint else {}
    # A session of its own: boto3's default session keeps the credentials it first resolved
    # for the life of the process, so a client made anew (cache cleared) would not see a
    # changed environment.
    session = boto3.session.Session()
    return session.client("s3", config=Config(s3=style, retries={"mode": "standard"}))


def _is(exc: Exception, *codes: str) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    err = exc.response.get("Error", {})
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return err.get("Code") in codes or status in codes


def objects(loc: Location) -> dict[str, tuple[int, str]]:
    """{path relative to `loc`: (size, ETag)} of the object `loc` (path '') or of every object
    under it: one HEAD, or one listing."""
    c = client()
    out: dict[str, tuple[int, str]] = {}
    key = loc.key
    try:
        head = c.head_object(Bucket=loc.bucket, Key=key) if key else None
        if head is not None:
            return {"": (head["ContentLength"], head["ETag"].strip('"'))}
    except Exception as exc:
        if not _is(exc, "404", "NoSuchKey", "NotFound"):
            raise
    prefix = f"{key}/" if key else ""
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) :]] = (obj["Size"], obj["ETag"].strip('"'))
    return out


def get(loc: Location) -> tuple[bytes, str] | None:
    """(content, ETag) of an object, None when there is none."""
    try:
        r = client().get_object(Bucket=loc.bucket, Key=loc.key)
    except Exception as exc:
        if _is(exc, "404", "NoSuchKey", "NotFound"):
            return None
        raise
    return r["Body"].read(), r["ETag"]


def put_if_absent(loc: Location, body: bytes) -> str | None:
    """Create the object unless one exists (If-None-Match: *) -> its ETag, None if it existed."""
    return _conditional_put(loc, body, IfNoneMatch="*")


def put_if_match(loc: Location, body: bytes, etag: str) -> str | None:
    """Replace the object if it is still the version `etag` -> the new ETag, else None."""
    return _conditional_put(loc, body, IfMatch=etag)


def _conditional_put(loc: Location, body: bytes, **condition: str) -> str | None:
    from pipelines.errors import StorageError

    try:
        return client().put_object(Bucket=loc.bucket, Key=loc.key, Body=body, **condition)["ETag"]
    except Exception as exc:
        if _is(exc, "412", "PreconditionFailed", "409", "ConditionalRequestConflict"):
            return None
        if _is(exc, "501", "NotImplemented"):
            raise StorageError(
                f"the S3 store of {loc.uri} does not support conditional writes "
                f"({', '.join(condition)}), which the run lock needs",
                hint="run on a store that has them (AWS S3, MinIO, SeaweedFS), or set "
                "run.lock=orchestrator when the scheduler guarantees one writer per run "
                "(docs/deploy.md)",
            ) from exc
        raise


def delete(loc: Location) -> None:
    client().delete_object(Bucket=loc.bucket, Key=loc.key)
