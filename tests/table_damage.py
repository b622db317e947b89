"""Damage done to a committed table in the damaged-table tests (unit and CLI), each returning
the words the one-line error must say about it; and a table's rows in a comparable order."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines import tableio


def sorted_content(run: Path, name: str) -> pa.Table:
    t = tableio.read_arrow(run, name)
    return t.sort_by([(c, "ascending") for c in t.column_names])


def a_data_file(run: Path, name: str) -> tuple[Path, int]:
    """The last data file the manifest lists, and its recorded size."""
    entry = tableio.read_manifest(run, name)["files"][-1]
    return run / name / entry["path"], entry["size"]


def delete_a_data_file(run: Path, name: str) -> str:
    data, _ = a_data_file(run, name)
    data.unlink()
    return f"data file {data} is missing"


def truncate_a_data_file(run: Path, name: str) -> str:
    data, size = a_data_file(run, name)
    data.write_bytes(data.read_bytes()[: size // 2])
    return f"data file {data} has {size // 2} bytes, the manifest lists {size}"
