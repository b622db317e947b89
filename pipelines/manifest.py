"""A committed table's manifest: where it is, what it lists, whether the listed files are all
there, the identities (fingerprints) stage keys are made of, and the readers (pyarrow,
Polars, Spark) of exactly the files it lists.

`<table>/_manifest.json` lists every data file of the table (a path relative to the table's
folder, or through `link` to the folder of the table it links to, with its size, and its
ETag on S3). Writing it is the commit (pipelines/tableio.py); a table without one does not
exist, and one that does not parse (or lacks what every manifest has), or whose listed files
are missing or of another size, is damaged (`TableDamagedError`, naming the table and what is
wrong with it). The runner and the readers check that with one listing of the table's folder,
never by reading or hashing its data.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from pipelines.errors import TableDamagedError, TableNotCommittedError
from pipelines.storage import Location, as_location
from schemas import contract, sources_of

MANIFEST = "_manifest.json"
VERSION = "v-"  # prefix of a table's version folders


def table_dir(run_dir: str | Path | Location, name: str) -> Location:
    return as_location(run_dir) / name


def is_committed(run_dir: str | Path | Location, name: str) -> bool:
    return (table_dir(run_dir, name) / MANIFEST).is_file()


def read_manifest(run_dir: str | Path | Location, name: str) -> dict[str, Any]:
    """The table's manifest, once it parses and has what every manifest has (its files'
    sizes are checked by `verify_table`)."""
    path = table_dir(run_dir, name) / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        state = "exists without a manifest" if path.parent.exists() else "does not exist"
        raise TableNotCommittedError(
            f"table '{name}' in {run_dir} {state}: it was never committed",
            hint="run the stage that writes it (walkrank run ... --stages <stage>)",
        ) from None
    try:
        m = json.loads(raw)  # bytes that are not UTF-8 raise a ValueError too
    except ValueError as exc:
        raise _damaged(run_dir, name, f"its {MANIFEST} does not parse ({exc})") from None
    # A nested run's table is read as '<folder>/<table>' (fit/candidates).
    problem = manifest_problem(m, name.rpartition("/")[2])
    if problem:
        raise _damaged(run_dir, name, f"its {MANIFEST} is not a manifest of this table ({problem})")
    return m


# What every manifest has held since the first one (pipelines/tableio.py writes them), with
# its type: the runner and the readers index these directly.
_KEYS = {
    "table": str,
    "files": list,
    "stage": str,
    "stage_key": str,
    "rows": int,
    "schema_version": int,
    "inputs": dict,
    "partition_by": list,
    "fingerprint": str,
}


def manifest_problem(m: Any, table: str) -> str | None:
    """What makes a parsed `_manifest.json` unusable as the manifest of `table`, or None."""
    if not isinstance(m, dict):
        return f"a JSON {type(m).__name__}, not an object"
    for key, kind in _KEYS.items():
        if not isinstance(m.get(key), kind):
            return f"no {key!r}" if key not in m else f"{key!r} is not a {kind.__name__}"
    if m["table"] != table:
        return f"it is the manifest of table {m['table']!r}"
    if "link" in m and not isinstance(m["link"], str):
        return "'link' is not a path"
    for e in m["files"]:
        entry = e if isinstance(e, dict) else {"path": e}
        size = entry.get("size")
        if not isinstance(entry.get("path"), str) or not (size is None or isinstance(size, int)):
            return f"a file entry is not a path with a size: {e!r}"
    return None


def _damaged(run_dir: str | Path | Location, name: str, problem: str) -> TableDamagedError:
    return TableDamagedError(
        f"table '{name}' in {run_dir} is damaged: {problem}",
        hint="rebuild it: the same walkrank run command with --force (with --stages, "
        "including the stage that writes it)",
    )


def file_entries(m: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's data files as {path, size[, etag]} (a manifest of before the version
    folders lists bare paths)."""
    return [
        {"size": None, **e} if isinstance(e, dict) else {"path": e, "size": None}
        for e in m["files"]
    ]


def data_root(run_dir: str | Path | Location, name: str, m: dict[str, Any]) -> Location:
    """The folder the manifest's file paths are relative to: the table's own, or for a linked
    table (`link_table`) the table it links to."""
    d = table_dir(run_dir, name)
    return d / m["link"] if m.get("link") else d


def partition_base(run_dir: str | Path | Location, name: str, m: dict[str, Any]) -> Location:
    """The folder a partitioned table's hive paths (`k=v/part-…`) start from: its version
    folder (or the table's folder, for a manifest of before the version folders)."""
    root = data_root(run_dir, name, m)
    first = file_entries(m)[0]["path"]
    return root / first.split("/", 1)[0] if first.startswith(VERSION) else root


def data_files(run_dir: str | Path | Location, name: str, m: dict[str, Any]) -> list[Location]:
    root = data_root(run_dir, name, m)
    return [root / e["path"] for e in file_entries(m)]


def verify_table(run_dir: str | Path | Location, name: str) -> dict[str, Any]:
    """The manifest, once every file it lists is there with its listed size: one listing of
    the table's folder, no data read (a manifest of before sizes were recorded: the files are
    there). The readers below call it, so a damaged table fails in one line naming it, before
    an engine reads it."""
    m = read_manifest(run_dir, name)
    entries = file_entries(m)
    if not entries:
        return m
    root = data_root(run_dir, name, m)
    found = {e.rel: e.size for e in root.list(recursive=True) if not e.is_dir}
    for e in entries:
        size = found.get(posixpath.normpath(e["path"]))
        if size is None:
            problem = "is missing"
        elif e["size"] is not None and size != e["size"]:
            problem = f"has {size} bytes, the manifest lists {e['size']}"
        else:
            continue
        raise _damaged(run_dir, name, f"data file {root / e['path']} {problem}")
    return m


def fingerprint(manifest: dict[str, Any]) -> str:
    """Identity of a committed table's content: what made it and how many rows it has."""
    blob = json.dumps(
        [manifest["table"], manifest["stage_key"], manifest["rows"], manifest["schema_version"]]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_fingerprint(path: str | Path | Location) -> str:
    """Identity of a raw input file or folder: paths, sizes and modification times locally;
    keys, sizes and ETags on S3 (an object's ETag changes with its content, mtime need not)."""
    loc = as_location(path)
    if loc.scheme == "s3":
        from pipelines.s3_objects import objects

        tags = {rel: f"{size}:{etag}" for rel, (size, etag) in objects(loc).items()}
    elif loc.is_dir():
        tags = {e.rel: f"{e.size}:{e.mtime_ns}" for e in loc.list(recursive=True) if not e.is_dir}
    else:
        tags = {"": f"{loc.size()}:{loc.mtime_ns()}"}
    h = hashlib.sha256()
    for rel, tag in sorted(tags.items()):
        h.update(f"{loc / rel if rel else loc}:{tag}\n".encode())
    return h.hexdigest()[:16]


def dataset_of(base: Location, files: list[str], partitioned: bool):
    """A pyarrow dataset of exactly these files (relative to `base`)."""
    paths = [(base / f).path for f in files]
    if partitioned:
        return pads.dataset(
            paths, filesystem=base.fs, format="parquet", partitioning="hive",
            partition_base_dir=base.path,
        )  # fmt: skip
    return pads.dataset(paths, filesystem=base.fs, format="parquet")


def read_arrow(
    run_dir: str | Path | Location, name: str, columns: list[str] | None = None
) -> pa.Table:
    m = verify_table(run_dir, name)
    if not m["files"]:
        empty = contract(name).empty()
        return empty.select(columns) if columns else empty
    return _dataset(run_dir, name, m).to_table(columns=columns)


def _dataset(run_dir: str | Path | Location, name: str, m: dict[str, Any]):
    """A pyarrow dataset of exactly the files the manifest `m` lists."""
    partitioned = bool(m["partition_by"])
    base = partition_base(run_dir, name, m) if partitioned else data_root(run_dir, name, m)
    files = [f.relative_to(base) for f in data_files(run_dir, name, m)]
    return dataset_of(base, files, partitioned)


def candidate_sources(run_dir: str | Path | Location, name: str = "candidates") -> list[str]:
    """The candidate sources of a committed candidates or rankings table, in column order (its
    `score_column`s): as its writer recorded them (`extra.sources`), else from its files'
    schema (a table written without that record)."""
    m = read_manifest(run_dir, name)
    recorded = (m.get("extra") or {}).get("sources")
    if recorded is not None:
        return list(recorded)
    return sources_of(_dataset(run_dir, name, m).schema) if m["files"] else []


def read_polars(run_dir: str | Path | Location, name: str):  # -> pl.DataFrame
    import polars as pl

    return pl.from_arrow(read_arrow(run_dir, name))


def scan_polars(run_dir: str | Path | Location, name: str):  # -> pl.LazyFrame
    """A committed table as a lazy Polars scan of exactly its listed files: filters and column
    selections run inside the Parquet reader, so a caller can read a table larger than memory
    a slice at a time. On S3, Polars takes the same AWS environment as everything else."""
    import polars as pl

    m = verify_table(run_dir, name)
    if not m["files"]:
        return pl.from_arrow(contract(name).empty()).lazy()
    uris = [f.uri for f in data_files(run_dir, name, m)]
    return pl.scan_parquet(uris, hive_partitioning=bool(m["partition_by"]))


def read_spark(spark: Any, run_dir: str | Path | Location, name: str):  # -> pyspark DataFrame
    m = verify_table(run_dir, name)
    if not m["files"]:
        return spark.createDataFrame([], contract(name).spark_type())
    files = data_files(run_dir, name, m)
    reader = spark.read
    if m["partition_by"]:
        reader = reader.option("basePath", partition_base(run_dir, name, m).spark_uri)
    return reader.parquet(*[f.spark_uri for f in files])
