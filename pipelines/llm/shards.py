"""Resumable stage output: shards of rows, each committed with a marker.

`<run>/_work/<stage>-<stage_key>/shard-00007.parquet` is written to a temporary name and
renamed; then `shard-00007.done` (a small JSON: rows, users) is renamed into place. Only a
shard with its marker counts as done, so a process killed at any point leaves either a
committed shard or nothing that a re-run will read. A re-run with the same stage key skips
committed shards; the stage then writes its table from all shards (no duplicates: each
shard id is written once, whole) and removes the work folder.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

WORK = "_work"


class ShardStore:
    def __init__(self, run_dir: str | Path, stage: str, key: str) -> None:
        self.root = Path(run_dir) / WORK
        self.dir = self.root / f"{stage}-{key}"
        self.stage = stage

    def _data(self, shard: int) -> Path:
        return self.dir / f"shard-{shard:05d}.parquet"

    def _marker(self, shard: int) -> Path:
        return self.dir / f"shard-{shard:05d}.done"

    def done(self) -> set[int]:
        """Shard ids committed (marker and data both present)."""
        if not self.dir.is_dir():
            return set()
        ids = {int(p.stem.split("-")[1]) for p in self.dir.glob("shard-*.done")}
        return {i for i in ids if self._data(i).is_file()}

    def commit(self, shard: int, table: pa.Table, users: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".tmp-{uuid.uuid4().hex[:8]}"
        pq.write_table(table, tmp)
        os.replace(tmp, self._data(shard))
        mtmp = self.dir / f".tmp-{uuid.uuid4().hex[:8]}.json"
        mtmp.write_text(json.dumps({"rows": table.num_rows, "users": users}))
        os.replace(mtmp, self._marker(shard))  # the commit point of the shard

    def read(self, shards: list[int], schema: pa.Schema) -> pa.Table:
        parts = [pq.read_table(self._data(s)) for s in sorted(shards)]
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts, promote_options="permissive")

    def clear_stale(self) -> list[str]:
        """Remove this stage's work folders of other stage keys (inputs or config changed)."""
        if not self.root.is_dir():
            return []
        stale = [
            p for p in self.root.glob(f"{self.stage}-*") if p.is_dir() and p.name != self.dir.name
        ]
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        return [p.name for p in stale]

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()
