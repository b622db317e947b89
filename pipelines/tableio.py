"""Table I/O for one run: `<out>/<run_id>/<table>/` Parquet files plus `_manifest.json`.

A table is written into a hidden temporary sibling (data first, manifest last) and renamed
into place, so a crash or kill never leaves a half table that looks whole. A directory
without a manifest does not exist as far as every reader is concerned.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipelines import __version__, faults
from pipelines.errors import DiskFullError, RunDirError, TableNotCommittedError
from schemas import SCHEMA_VERSION, contract

MANIFEST = "_manifest.json"
CODE_VERSION = f"walkrank-{__version__}"  # the package; a table's stage adds its code hash


def table_dir(run_dir: str | Path, name: str) -> Path:
    return Path(run_dir) / name


def is_committed(run_dir: str | Path, name: str) -> bool:
    return (table_dir(run_dir, name) / MANIFEST).is_file()


def read_manifest(run_dir: str | Path, name: str) -> dict[str, Any]:
    path = table_dir(run_dir, name) / MANIFEST
    if not path.is_file():
        state = "exists without a manifest" if path.parent.exists() else "does not exist"
        raise TableNotCommittedError(
            f"table '{name}' in {run_dir} {state}: it was never committed",
            hint="run the stage that writes it (walkrank run ... --stages <stage>)",
        )
    return json.loads(path.read_text())


def fingerprint(manifest: dict[str, Any]) -> str:
    """Identity of a committed table's content: what made it and how many rows it has."""
    blob = json.dumps(
        [manifest["table"], manifest["stage_key"], manifest["rows"], manifest["schema_version"]]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    """Identity of a raw input file or directory: paths, sizes and modification times."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class FilesWriter:
    """Table data that `write(dir)` puts into `dir` as Parquet files itself, e.g. the tasks
    of a Spark job writing with pyarrow (no round trip of the rows through the JVM). Files
    are ordered by name; names starting with '.' are ignored (an attempt's temp file)."""

    def __init__(self, write: Callable[[Path], None]) -> None:
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
    """Spark names parts with a random UUID; stable names make identical runs identical."""
    for junk in list(data_dir.rglob("_SUCCESS")) + list(data_dir.rglob("*.crc")):
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


def write_table(
    run_dir: str | Path,
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
    """Validate against the table's contract, write atomically, return the manifest.

    The manifest's `seconds`: `seconds` when given, else the time from `stage_started` (a
    time.perf_counter() value, the stage's start) to the end of this write, else this write's
    own time. Measured after the write, it includes a lazy Spark job or a FilesWriter's work,
    which run inside the write.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_replaceable(table_dir(run_dir, name))  # before the work, not only at the swap
    tc = contract(name)
    tmp = run_dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    try:
        files, rows, schema = _write_data(data, tc, tmp, partition_by)
        faults.table_point(run_dir, name, stage, tmp, files)
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
            "files": files,
            "partition_by": partition_by or [],
            # A callable extra is evaluated after the data is written (figures of that write).
            "extra": (extra() if callable(extra) else extra) or {},
        }
        manifest["fingerprint"] = fingerprint(manifest)
        # The manifest is the last file written; the rename below is the commit. Data files,
        # manifest and directories reach the disk first, so a power loss after the rename
        # cannot leave a manifest over data that was never written.
        _write_json_atomic(tmp / MANIFEST, manifest)
        fsync_tree(tmp)
        _swap_into_place(tmp, table_dir(run_dir, name))
        fsync_dir(run_dir)
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFullError(
                f"no space left on the device while writing table '{name}' in {run_dir}; "
                "the tables committed before are untouched",
                hint="free space there, or write the run elsewhere with --out, then re-run",
            ) from exc
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _write_data(data: Any, tc, tmp: Path, partition_by: list[str] | None):
    """Data files of a Spark DataFrame, a FilesWriter or an Arrow/Polars table into `tmp`,
    validated against the contract `tc` -> (files, rows, schema)."""
    if _is_spark_df(data):
        tc.validate(_spark_arrow_schema(data))
        writer = data.write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(str(tmp))
        files = _rename_parts(tmp)
        rows = sum(pq.ParquetFile(tmp / f).metadata.num_rows for f in files)
        schema = pads.dataset(tmp, format="parquet", partitioning="hive").schema
    elif isinstance(data, FilesWriter):
        if partition_by:
            raise ValueError("a FilesWriter table cannot be partitioned by tableio")
        tmp.mkdir()
        data.write(tmp)
        for leftover in tmp.glob(".*"):  # temp files of failed or duplicate attempts
            leftover.unlink()
        files = _rename_parts(tmp)
        rows = sum(pq.ParquetFile(tmp / f).metadata.num_rows for f in files)
        schema = pq.read_schema(tmp / files[0]) if files else tc.schema
        tc.validate(schema)
    else:
        table = tc.conform(_to_arrow(data))
        tmp.mkdir()
        if partition_by:
            pq.write_to_dataset(
                table,
                tmp,
                partition_cols=partition_by,
                basename_template="part-{i:05d}.parquet",
            )
            files = sorted(str(f.relative_to(tmp)) for f in tmp.rglob("*.parquet"))
        else:
            pq.write_table(table, tmp / "part-00000.parquet")
            files = ["part-00000.parquet"]
        rows, schema = table.num_rows, table.schema
    return files, rows, schema


def _spark_arrow_schema(df: Any) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema, timezone="UTC")


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC from Python, or a Spark/Java write error that says so."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file under `root`, then every directory, deepest first."""
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


def write_text_atomic(path: Path, text: str) -> None:
    """Replace a small file whole: readers see the old or the new content, never a part."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _check_replaceable(target: Path) -> None:
    """Only a committed WalkRank table of this name is ever replaced (never a user's folder
    that happens to be named like a table)."""
    if not target.exists() and not target.is_symlink():
        return
    manifest = target / MANIFEST
    ok = target.is_dir() and not target.is_symlink() and manifest.is_file()
    if ok:
        try:
            ok = json.loads(manifest.read_text()).get("table") == target.name
        except (OSError, ValueError):
            ok = False
    if not ok:
        raise RunDirError(
            f"{target} exists and is not a committed WalkRank table '{target.name}': "
            "refusing to replace it",
            hint="move it away, or write the run to another --out / --run-id",
        )


def _swap_into_place(tmp: Path, target: Path) -> None:
    _check_replaceable(target)
    replace_dir(tmp, target)


def replace_dir(tmp: Path, target: Path) -> None:
    """Put the finished folder `tmp` at `target`: the old one (if any) is moved aside first and
    removed after, so a reader finds the old folder or the new one (or, for an instant, none),
    never a mix."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_arrow(run_dir: str | Path, name: str, columns: list[str] | None = None) -> pa.Table:
    m = read_manifest(run_dir, name)
    d = table_dir(run_dir, name)
    if not m["files"]:
        return contract(name).empty()
    ds = pads.dataset([str(d / f) for f in m["files"]], format="parquet", partitioning="hive")
    if m["partition_by"]:
        ds = pads.dataset(str(d), format="parquet", partitioning="hive", exclude_invalid_files=True)
    return ds.to_table(columns=columns)


def read_polars(run_dir: str | Path, name: str):  # -> pl.DataFrame
    import polars as pl

    return pl.from_arrow(read_arrow(run_dir, name))


def scan_polars(run_dir: str | Path, name: str):  # -> pl.LazyFrame
    """A committed table as a lazy Polars scan: filters and column selections run inside the
    Parquet reader, so a caller can read a table larger than memory a slice at a time."""
    import polars as pl

    m = read_manifest(run_dir, name)
    d = table_dir(run_dir, name)
    if not m["files"]:
        return pl.from_arrow(contract(name).empty()).lazy()
    if m["partition_by"]:
        return pl.scan_parquet(str(d / "**" / "*.parquet"), hive_partitioning=True)
    return pl.scan_parquet([str(d / f) for f in m["files"]])


def read_spark(spark: Any, run_dir: str | Path, name: str):  # -> pyspark DataFrame
    m = read_manifest(run_dir, name)
    d = table_dir(run_dir, name)
    if not m["files"]:
        return spark.createDataFrame([], contract(name).spark_type())
    return spark.read.parquet(str(d))


def clean_uncommitted(run_dir: str | Path) -> list[str]:
    """Remove leftovers of interrupted writes (hidden temp and old siblings); returns their names."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return []
    stale = [
        p
        for p in run_dir.iterdir()
        if p.name.startswith((".tmp-", ".old-"))
        or (p.name.startswith(".") and p.name.endswith(".tmp"))
    ]
    for p in stale:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return sorted(p.name for p in stale)
