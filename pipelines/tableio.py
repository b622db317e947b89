"""Table I/O for one run: `<out>/<run_id>/<table>/`, a manifest and the data files it lists.

The commit protocol needs no rename, so it holds on object storage as on local disk:
1. the data files go into a new version folder, `<table>/v-<id>/` (Parquet, hive partitions
   where a table is partitioned);
2. `_manifest.json` is written last, as one file: it lists every data file of the table with
   its size (and ETag on S3). Writing it is the commit.
Readers (Spark, Polars, pyarrow, `evaluate`, `walkrank show`, the next stage) read exactly
the files the manifest lists, never "whatever is under the prefix", so a replacement (a new
version folder, then a new manifest) is never seen half done, and leftovers of interrupted
writes (version folders no manifest names) are ignored, then removed by
`clean_uncommitted` at the next run's start. Locally every data file and folder is fsync'ed
before the manifest, and the manifest itself is fsync'ed and renamed into place.

A table without a manifest does not exist; a manifest that does not parse, or a listed file
that is missing or of another size, is a damaged table (pipelines/manifest.py:
`TableDamagedError`, naming the table and the file): `walkrank run --force` writes it again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import posixpath
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import __version__, faults
from pipelines.errors import DiskFullError, RunDirError

# The manifest's side of table I/O, part of this module's API (tableio.read_manifest, ...).
from pipelines.manifest import MANIFEST as MANIFEST
from pipelines.manifest import VERSION as VERSION
from pipelines.manifest import candidate_sources as candidate_sources
from pipelines.manifest import data_files as data_files
from pipelines.manifest import data_root as data_root
from pipelines.manifest import dataset_of, manifest_problem
from pipelines.manifest import file_entries as file_entries
from pipelines.manifest import file_fingerprint as file_fingerprint
from pipelines.manifest import fingerprint as fingerprint
from pipelines.manifest import is_committed as is_committed
from pipelines.manifest import read_arrow as read_arrow
from pipelines.manifest import read_manifest as read_manifest
from pipelines.manifest import read_polars as read_polars
from pipelines.manifest import read_spark as read_spark
from pipelines.manifest import scan_polars as scan_polars
from pipelines.manifest import table_dir as table_dir
from pipelines.manifest import verify_table as verify_table
from pipelines.redact import redact_mapping
from pipelines.storage import Location, as_location, fsync_dir, fsync_tree
from schemas import SCHEMA_VERSION, contract

CODE_VERSION = f"walkrank-{__version__}"  # the package; a table's stage adds its code hash


class FilesWriter:
    """Table data that `write(dir)` puts into `dir` (a Location) as Parquet files itself, e.g.
    the tasks of a Spark job writing with pyarrow (no round trip of the rows through the JVM).
    Files are ordered by name; names starting with '.' or '_' are ignored (an attempt's temp
    file)."""

    def __init__(self, write: Callable[[Location], None]) -> None:
        self.write = write


def _is_spark_df(data: Any) -> bool:
    return type(data).__module__.startswith("pyspark.")


def _to_arrow(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if type(data).__module__.startswith("polars"):
        return data.to_arrow()
    raise TypeError(f"cannot write {type(data).__name__} as a table")


def _rename_parts(data_dir: Path) -> list[str]:
    """Spark names parts with a random UUID; stable names make identical runs identical
    (local disk only: on object storage a rename is a copy, and the manifest names the files)."""
    for junk in list(data_dir.rglob("_SUCCESS")) + list(data_dir.rglob("*.crc")):
        junk.unlink()
    for junk in data_dir.rglob(".*"):
        if junk.is_file():
            junk.unlink()
    names = []
    by_dir: dict[Path, list[Path]] = {}
    for f in sorted(data_dir.rglob("*.parquet")):
        by_dir.setdefault(f.parent, []).append(f)
    for parent, files in by_dir.items():
        for i, f in enumerate(files):
            target = parent / f"part-{i:05d}.parquet"
            f.rename(target)
            names.append(str(target.relative_to(data_dir)))
    return sorted(names)


def _data_files(vdir: Location) -> list[str]:
    """The Parquet files under a version folder, hidden ones ('.', '_': Spark's _temporary,
    an attempt's temp file) left out."""
    if vdir.is_local:
        return _rename_parts(vdir.local_path)
    return [
        e.rel
        for e in vdir.list(recursive=True)
        if not e.is_dir
        and e.rel.endswith(".parquet")
        and not any(p.startswith((".", "_")) for p in e.rel.split("/"))
    ]


def write_table(
    run_dir: str | Path | Location,
    name: str,
    data: Any,
    *,
    stage: str,
    stage_key: str,
    inputs: dict[str, str] | None = None,
    seconds: float | None = None,
    stage_started: float | None = None,
    extra: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    partition_by: list[str] | None = None,
    code_version: str | None = None,
) -> dict[str, Any]:
    """Validate against the table's contract, write a new version, commit it, return the
    manifest.

    The manifest's `seconds`: `seconds` when given, else the time from `stage_started` (a
    time.perf_counter() value, the stage's start) to the end of this write, else this write's
    own time. Measured after the write, it includes a lazy Spark job or a FilesWriter's work,
    which run inside the write.
    """
    started = time.perf_counter()
    run_dir = as_location(run_dir)
    run_dir.mkdir()
    target = table_dir(run_dir, name)
    _check_replaceable(target)  # before the work, not only at the commit
    tc = contract(name)
    version = f"{VERSION}{uuid.uuid4().hex[:12]}"
    vdir = target / version
    try:
        files, rows, schema = _write_data(data, tc, vdir, partition_by)
        entries = _describe(vdir, files)
        faults.table_point(run_dir, name, stage, target, version, entries)
        manifest = {
            "table": name,
            "schema_version": SCHEMA_VERSION,
            "rows": int(rows),
            "columns": {f.name: str(f.type) for f in schema},
            "stage": stage,
            "stage_key": stage_key,
            "inputs": dict(sorted((inputs or {}).items())),
            # walkrank-<version>+<hash of the code the stage ran> (Stage.code_version)
            "code_version": f"walkrank-{code_version}" if code_version else CODE_VERSION,
            "seconds": round(
                seconds
                if seconds is not None
                else time.perf_counter() - (started if stage_started is None else stage_started),
                3,
            ),
            "version": version,
            "files": entries,
            "partition_by": partition_by or [],
            # A callable extra is evaluated after the data is written (figures of that write).
            # The stage's config in it keeps no secret (pipelines/redact.py).
            "extra": redact_mapping((extra() if callable(extra) else extra) or {}),
        }
        manifest["fingerprint"] = fingerprint(manifest)
        if vdir.is_local:
            # Data files and folders reach the disk before the manifest names them, so a power
            # loss after the commit cannot leave a manifest over data that was never written.
            vdir.mkdir()
            fsync_tree(vdir.local_path)
            fsync_dir(target.local_path)
        _check_replaceable(target)
        (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the write's own error is the one to raise
            vdir.delete()  # SIGKILL runs no handler: then clean_uncommitted removes it later
        if isinstance(exc, Exception) and is_disk_full(exc):
            raise DiskFullError(
                f"no space left on the device while writing table '{name}' in {run_dir}; "
                "the tables committed before are untouched",
                hint="free space there, or write the run elsewhere with --out, then re-run",
            ) from exc
        raise
    _drop_other_versions(target, manifest)
    return manifest


def _describe(vdir: Location, files: list[str]) -> list[dict[str, Any]]:
    """{path, size[, etag]} of each data file, relative to the table's folder (one listing:
    on S3 boto3's, which has the ETags too)."""
    if vdir.scheme == "s3":
        from pipelines.s3_objects import objects

        found = {rel: {"size": size, "etag": etag} for rel, (size, etag) in objects(vdir).items()}
    else:
        found = {e.rel: {"size": e.size} for e in vdir.list(recursive=True) if not e.is_dir}
    return [{"path": f"{vdir.name}/{f}", **found[f]} for f in files]


def _write_data(data: Any, tc, vdir: Location, partition_by: list[str] | None):
    """Data files of a Spark DataFrame, a FilesWriter or an Arrow/Polars table into `vdir`,
    validated against the contract `tc` -> (files relative to vdir, rows, schema)."""
    if _is_spark_df(data):
        tc.validate(_spark_arrow_schema(data))
        writer = data.write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(vdir.spark_uri)
        files = _data_files(vdir)
        rows = sum(_num_rows(vdir / f) for f in files)
        schema = dataset_of(vdir, files, bool(partition_by)).schema if files else tc.schema
    elif isinstance(data, FilesWriter):
        if partition_by:
            raise ValueError("a FilesWriter table cannot be partitioned by tableio")
        vdir.mkdir()
        data.write(vdir)
        files = _data_files(vdir)
        rows = sum(_num_rows(vdir / f) for f in files)
        schema = dataset_of(vdir, files[:1], False).schema if files else tc.schema
        tc.validate(schema)
    else:
        table = tc.conform(_to_arrow(data))
        vdir.mkdir()
        if partition_by:
            pq.write_to_dataset(
                table,
                vdir.path,
                filesystem=vdir.fs,
                partition_cols=partition_by,
                basename_template="part-{i}.parquet",
            )
            files = _data_files(vdir)
        else:
            pq.write_table(table, (vdir / "part-00000.parquet").path, filesystem=vdir.fs)
            files = ["part-00000.parquet"]
        rows, schema = table.num_rows, table.schema
    return files, rows, schema


def _num_rows(f: Location) -> int:
    with f.open_input_file() as fh:
        return pq.ParquetFile(fh).metadata.num_rows


def _spark_arrow_schema(df: Any) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema, timezone="UTC")


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC from Python, or a Spark/Java write error that says so."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


def _check_replaceable(target: Location) -> None:
    """Only a WalkRank table of this name is ever replaced (never a user's folder that happens
    to be named like a table): a folder with this table's manifest (or one that no longer
    parses), or holding only version folders (a first write that never committed)."""
    if target.is_local and target.local_path.is_symlink():
        raise RunDirError(
            f"{target} is a symbolic link, not a committed WalkRank table '{target.name}': "
            "refusing to write through it",
            hint="remove the link, or write the run to another --out / --run-id",
        )
    entries = target.list()
    if not entries:
        if target.is_local and target.local_path.is_file():
            entries = [None]  # a file named like the table
        else:
            return
    names = {e.rel for e in entries if e is not None}
    ok = bool(names) and all(n == MANIFEST or n.startswith(VERSION) for n in names)
    if ok and MANIFEST in names:
        try:
            m = json.loads((target / MANIFEST).read_text())
            # Only a manifest naming another table makes the folder another's: any other
            # content there is a damaged manifest of ours, which --force writes again.
            ok = not (isinstance(m, dict) and "table" in m and m["table"] != target.name)
        except ValueError:
            ok = True
    if not ok:
        raise RunDirError(
            f"{target} exists and is not a committed WalkRank table '{target.name}': "
            "refusing to replace it",
            hint="move it away, or write the run to another --out / --run-id",
        )


def _versions_in_use(target: Location) -> set[str] | None:
    """The version folders the table's manifest names: none without a manifest (a first
    write that never committed), None when it is damaged (which of them holds the table is
    unknown: all are kept, for --force to replace)."""
    try:
        m = json.loads((target / MANIFEST).read_bytes())
    except FileNotFoundError:
        return set()
    except ValueError:
        return None
    if manifest_problem(m, target.name):
        return None
    return {e["path"].split("/", 1)[0] for e in file_entries(m)} if not m.get("link") else set()


def _drop_other_versions(target: Location, manifest: dict[str, Any]) -> list[str]:
    """Remove a table's version folders its manifest does not name, and data files of a
    manifest of before the version folders."""
    keep = {e["path"].split("/", 1)[0] for e in file_entries(manifest)}
    gone = []
    for e in target.list():
        if e.rel == MANIFEST or e.rel in keep:
            continue
        if e.rel.startswith(VERSION) or e.rel.endswith(".parquet") or "=" in e.rel:
            (target / e.rel).delete()
            gone.append(e.rel)
    return gone


def link_table(src_run: str | Path | Location, name: str, dst_run: str | Path | Location) -> None:
    """Commit `name` in `dst_run` as the same data as in `src_run` (the fit pass's shared
    tables): a manifest whose files are the source's, reached through a relative `link`. Its
    fingerprint is the source's, so the stages reading it see the same input either way."""
    src, dst = as_location(src_run), as_location(dst_run)
    m = read_manifest(src, name)
    target = table_dir(dst, name)
    if target.is_local and target.local_path.is_symlink():  # a run of before links were files
        target.local_path.unlink()
    linked = {**m, "link": posixpath.relpath(data_root(src, name, m).path, target.path)}
    if (target / MANIFEST).is_file():
        try:
            if json.loads((target / MANIFEST).read_text()) == linked:
                return
        except ValueError:
            pass
    _check_replaceable(target)
    (target / MANIFEST).write_text(json.dumps(linked, indent=2, sort_keys=True) + "\n")


def clean_uncommitted(run_dir: str | Path | Location) -> list[str]:
    """Remove leftovers of interrupted writes: version folders no manifest names (and the
    hidden temporary siblings of before them); returns their names."""
    run_dir = as_location(run_dir)
    gone = []
    for child in run_dir.list():
        if child.rel.startswith((".tmp-", ".old-")) or (
            child.rel.startswith(".") and child.rel.endswith(".tmp")
        ):
            (run_dir / child.rel).delete()
            gone.append(child.rel)
            continue
        if not child.is_dir or child.rel.startswith((".", "_")):
            continue
        target = run_dir / child.rel
        if target.is_local and target.local_path.is_symlink():
            continue
        entries = target.list()
        if not any(e.rel.startswith(VERSION) for e in entries):
            continue
        keep = _versions_in_use(target)
        if keep is None:
            continue
        for e in entries:
            if e.rel.startswith(VERSION) and e.rel not in keep:
                (target / e.rel).delete()
                gone.append(f"{child.rel}/{e.rel}")
    return sorted(gone)
