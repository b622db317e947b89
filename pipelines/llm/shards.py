"""Resumable stage output: shards of rows, each committed with a marker.

`<run>/_work/<stage>-<key>/shard-00007.parquet` is written whole (locally a temporary name
fsync'ed and renamed; on object storage one object), then `shard-00007.done` (a small JSON:
rows, users and their ids) the same way. Only a shard with its marker counts as done, so a
process killed at any point leaves either a committed shard or nothing that a re-run will
read.

The key (`shard_key`) is the stage key plus every execution setting that changes which user
lands in which shard or what a row contains (llm.shard_users, batching, batch sizes, device,
dtype, threads): a re-run with other settings starts a new folder instead of mixing shards
made two ways. A re-run with the same key reuses a committed shard only when its marker
names exactly the users the shard holds now (`verified_done`); the stage then writes its
table from all shards (no duplicates: each shard id is written once, whole) and removes the
work folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import faults
from pipelines.storage import Location, as_location

WORK = "_work"


def shard_key(stage_key: str, settings: dict[str, Any]) -> str:
    """The store's key: the stage key and the settings that shape shards and their rows."""
    blob = json.dumps([stage_key, sorted(settings.items())], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ShardStore:
    def __init__(self, run_dir: str | Path | Location, stage: str, key: str) -> None:
        self.root = as_location(run_dir) / WORK
        self.dir = self.root / f"{stage}-{key}"
        self.stage = stage

    def _data(self, shard: int) -> Location:
        return self.dir / f"shard-{shard:05d}.parquet"

    def _marker(self, shard: int) -> Location:
        return self.dir / f"shard-{shard:05d}.done"

    def done(self) -> set[int]:
        """Shard ids committed (marker and data both present)."""
        names = {e.rel for e in self.dir.list() if not e.is_dir}
        ids = {
            int(n[len("shard-") : -len(".done")])
            for n in names
            if n.startswith("shard-") and n.endswith(".done")
        }
        return {i for i in ids if self._data(i).name in names}

    def user_ids(self, shard: int) -> list[str] | None:
        """The user ids a committed shard's marker names (None: a marker without them)."""
        ids = json.loads(self._marker(shard).read_text()).get("user_ids")
        return None if ids is None else sorted(ids)

    def verified_done(self, expected: dict[int, list[str]]) -> tuple[set[int], set[int]]:
        """-> (shards committed for exactly the users `expected` gives them, committed shards
        whose marker names other users: to be computed again)."""
        ok, wrong = set(), set()
        for s in self.done() & set(expected):
            (ok if self.user_ids(s) == sorted(expected[s]) else wrong).add(s)
        return ok, wrong

    def commit(self, shard: int, table: pa.Table, users: list[str]) -> None:
        try:
            self._commit(shard, table, sorted(users))
        except OSError as exc:
            from pipelines.errors import DiskFullError
            from pipelines.tableio import is_disk_full

            if not is_disk_full(exc):
                raise
            raise DiskFullError(
                f"no space left on the device while writing shard {shard} of stage "
                f"'{self.stage}' in {self.root.parent}; the shards and tables committed "
                "before are untouched",
                hint="free space there, or write the run elsewhere with --out, then re-run",
            ) from exc

    def _commit(self, shard: int, table: pa.Table, users: list[str]) -> None:
        self.dir.mkdir()
        # A shard computed again (its marker named other users): the old marker goes first,
        # so a kill mid-commit cannot pair it with the new data.
        self._marker(shard).delete()
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf)
        self._data(shard).write_bytes(buf.getvalue().to_pybytes())
        faults.shard_point(self.stage, shard, self._data(shard), self._marker(shard))
        marker = {"rows": table.num_rows, "users": len(users), "user_ids": users}
        self._marker(shard).write_text(json.dumps(marker))  # the commit point of the shard

    def read(self, shards: list[int], schema: pa.Schema) -> pa.Table:
        """The rows of the given shards; each shard's rows must belong to exactly the users
        its marker names (a shard file that does not is an error, not silently used)."""
        parts = []
        for s in sorted(shards):
            with self._data(s).open_input_file() as fh:
                part = pq.read_table(fh)
            ids = self.user_ids(s)
            got = sorted(set(part.column("user_id").to_pylist()))
            if ids is not None and got != ids:
                raise RuntimeError(
                    f"shard {s} of {self.dir} holds users other than its marker names "
                    f"({len(got)} vs {len(ids)}); remove {self.dir} and re-run"
                )
            parts.append(part)
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts, promote_options="permissive")

    def clear_stale(self) -> list[str]:
        """Remove this stage's work folders of other stage keys (inputs or config changed)."""
        stale = [
            e.rel
            for e in self.root.list()
            if e.is_dir and e.rel.startswith(f"{self.stage}-") and e.rel != self.dir.name
        ]
        for name in stale:
            (self.root / name).delete()
        return stale

    def clear(self) -> None:
        self.dir.delete()
        if self.root.is_dir() and not self.root.list():
            self.root.delete()
