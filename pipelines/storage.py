"""Where a run's files live: a local path or a URI, reached through one filesystem layer.

Every reader and writer of a run (tables and manifests, config.toml, plans and reports, the
ranker model, LLM shards, raw inputs) takes a `Location`. A local path (or `file://` URI) is a
path on this machine; `s3://bucket/key` and `s3a://bucket/key` name the same object (Python
clients get `s3://`, Spark's Hadoop FileSystem `s3a://`); any other scheme that pyarrow.fs or
fsspec resolves (`gs://`, `abfs://`, `hdfs://`) goes through them too, untested.

Driver-side I/O uses pyarrow.fs, which reads the ecosystem's own configuration: the AWS
environment variables and profiles (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_REGION`, `AWS_PROFILE`) and `AWS_ENDPOINT_URL` for an S3-compatible server (path-style
addressing). Nothing here stores a credential: a Location is a path and nothing else.

A write of one file is atomic on every store: locally a temporary sibling is fsync'ed and
renamed into place; an object store makes an object visible whole or not at all.
"""

from __future__ import annotations

import functools
import os
import posixpath
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# One bucket, two spellings: Python clients know `s3`, Hadoop's connector `s3a`.
_PY_SCHEME = {"s3a": "s3", "s3n": "s3"}
_SPARK_SCHEME = {"s3": "s3a"}


@dataclass(frozen=True)
class Entry:
    """One file or folder found by `Location.list`: its path relative to the listed folder."""

    rel: str
    is_dir: bool
    size: int | None
    mtime_ns: int | None


def _split(uri: str | os.PathLike) -> tuple[str, str]:
    """-> (scheme, path): scheme '' and an absolute path for local, else the store's path."""
    text = os.fspath(uri)
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:  # a Windows drive letter reads as a scheme
        local = parsed.path if scheme == "file" else text
        return "", str(Path(local).expanduser().absolute())
    scheme = _PY_SCHEME.get(scheme, scheme)
    path = posixpath.normpath(f"{parsed.netloc}/{parsed.path.lstrip('/')}").rstrip("/")
    return scheme, path if path != "." else parsed.netloc


class Location:
    """A file or folder: `scheme` ('' for local) and its path on that store."""

    __slots__ = ("scheme", "path")

    def __init__(self, where: str | os.PathLike | Location) -> None:
        if isinstance(where, Location):
            self.scheme, self.path = where.scheme, where.path
        else:
            self.scheme, self.path = _split(where)

    @classmethod
    def _of(cls, scheme: str, path: str) -> Location:
        loc = cls.__new__(cls)
        loc.scheme, loc.path = scheme, path
        return loc

    # -- names -------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.scheme == ""

    @property
    def uri(self) -> str:
        """What Python clients (pyarrow, Polars, fsspec) take: a local path or scheme://path."""
        return self.path if self.is_local else f"{self.scheme}://{self.path}"

    @property
    def spark_uri(self) -> str:
        """What Spark's Hadoop FileSystem takes: `s3a://` for S3, the path itself locally."""
        if self.is_local:
            return self.path
        return f"{_SPARK_SCHEME.get(self.scheme, self.scheme)}://{self.path}"

    @property
    def local_path(self) -> Path:
        if not self.is_local:
            raise ValueError(f"{self.uri} is not on the local filesystem")
        return Path(self.path)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def parent(self) -> Location:
        return Location._of(self.scheme, posixpath.dirname(self.path) or self.path)

    @property
    def bucket(self) -> str:
        """The first component of a remote path (an S3 bucket)."""
        return self.path.split("/", 1)[0]

    @property
    def key(self) -> str:
        """The path inside the bucket (S3's object key)."""
        return self.path.split("/", 1)[1] if "/" in self.path else ""

    def __truediv__(self, part: str) -> Location:
        joined = posixpath.normpath(posixpath.join(self.path, str(part)))
        return Location._of(self.scheme, joined)

    def relative_to(self, other: Location) -> str:
        return posixpath.relpath(self.path, other.path)

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __fspath__(self) -> str:
        return self.local_path.__fspath__()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and (self.scheme, self.path) == (
            other.scheme,
            other.path,
        )

    def __hash__(self) -> int:
        return hash((self.scheme, self.path))

    # -- the filesystem ----------------------------------------------------------------
    @property
    def fs(self):  # -> pyarrow.fs.FileSystem
        return filesystem(self.scheme, "" if self.is_local else self.bucket)

    def _info(self):
        return self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        from pyarrow.fs import FileType

        return self._info().type != FileType.NotFound

    def is_file(self) -> bool:
        from pyarrow.fs import FileType

        return self._info().type == FileType.File

    def is_dir(self) -> bool:
        from pyarrow.fs import FileType

        return self._info().type == FileType.Directory

    def size(self) -> int | None:
        return self._info().size

    def mtime_ns(self) -> int | None:
        """Modification time of a file (None when absent)."""
        from pyarrow.fs import FileType

        info = self._info()
        return info.mtime_ns if info.type == FileType.File else None

    def mkdir(self) -> None:
        """A folder and its parents; object stores have no folders (a no-op there)."""
        if self.is_local:
            os.makedirs(self.path, exist_ok=True)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as fh:
            return fh.read()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        """Replace the file whole: a reader sees the old content or the new, never a part."""
        if self.is_local:
            _write_local_atomic(Path(self.path), data)
            return
        with self.fs.open_output_stream(self.path) as fh:
            fh.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def list(self, recursive: bool = False) -> list[Entry]:
        """The folder's entries (all below it with `recursive`), sorted; [] when it is absent."""
        from pyarrow.fs import FileSelector, FileType

        infos = self.fs.get_file_info(
            FileSelector(self.path, allow_not_found=True, recursive=recursive)
        )
        out = []
        for info in infos:
            rel = posixpath.relpath(info.path, self.path)
            is_dir = info.type == FileType.Directory
            out.append(Entry(rel, is_dir, None if is_dir else info.size, info.mtime_ns))
        return sorted(out, key=lambda e: e.rel)

    def delete(self) -> None:
        """Remove the file, or the folder with everything in it; absent is fine."""
        from pyarrow.fs import FileType

        info = self._info()
        try:
            if info.type == FileType.File:
                self.fs.delete_file(self.path)
            elif info.type == FileType.Directory:
                self.fs.delete_dir(self.path)
        except FileNotFoundError:
            pass  # gone meanwhile, or a store's empty 'folder' that lists but holds nothing

    def open_input_file(self):  # -> pyarrow.NativeFile (random access: Parquet footers)
        return self.fs.open_input_file(self.path)


@functools.lru_cache(maxsize=64)
def filesystem(scheme: str, bucket: str = ""):  # -> pyarrow.fs.FileSystem
    """One filesystem object per store (and S3 bucket: its region), made on first use from the
    environment's own settings."""
    import pyarrow.fs as pafs

    if scheme == "":
        return pafs.LocalFileSystem()
    try:
        fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{bucket}")
        return fs
    except (ValueError, NotImplementedError):  # pyarrow does not know the scheme: fsspec may
        import fsspec

        return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(scheme)))


def _write_local_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)  # the rename itself durable: a commit point survives power loss
    finally:
        tmp.unlink(missing_ok=True)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a local directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """fsync every file under a local `root`, then every directory, deepest first."""
    root = Path(root)
    dirs = [root]
    for p in sorted(root.rglob("*")):
        if p.is_dir():
            dirs.append(p)
        else:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        fsync_dir(d)


def as_location(where: Any) -> Location:
    return where if isinstance(where, Location) else Location(where)
