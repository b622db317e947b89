"""Cross-run reuse: the other run a Ray stage may take unchanged rows from (`reuse.run`).

`item_embeddings`, `summaries`, `summary_embeddings` and `llm_scores` key every row by a hash
of everything that decides it (the text and the encoder, the history and the generation
settings, the prompt and the scoring settings). A row whose key is unchanged is taken, not
computed: first from the run's own committed table (a re-run), then from one other run
(`reuse_source`), chosen by `reuse.run`:

- "previous" (the default): the newest other run under the same --out (the run folder's
  parent) that has the table committed. Newest by the commit time of that table: the
  modification time the store records for its `_manifest.json` (the manifest is written
  last, whole, and never touched again, so that time is the commit; local mtime, S3
  LastModified), ties broken by the larger run id. A daily schedule's runs (`<out>/<day>`)
  thus reuse yesterday's rows, and a backfill of an old day reuses the newest day's: any
  run's row with the same key is the same row. One listing of --out and one stat per run.
- a run id under --out (`2026-11-24`), or a run's path or URI (`s3://bucket/runs/x`, a
  folder with a '/' in it): that run only.
- "none": only the run's own table.

In a run nested in another (the fit pass, `<run>/fit`), the other run's table is the one at
the same place (`<other>/fit/<table>`).

The other run is a cache, never an input: its table is not an input fingerprint, so it
changes no stage key, and a run whose table is missing, uncommitted, damaged or unreadable is
logged and passed over (its rows are computed). Each stage's manifest says what it reused
from where (`Reuse.extra`): `reused` (rows in all), `reused_this_run` (from the run's own
table), `reused_from` (the other run's URI, or null) and `reused_from_rows`, and `computed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.config import Config
from pipelines.manifest import MANIFEST, is_committed, scan_polars
from pipelines.run_dir import RUN_ID
from pipelines.storage import Location, as_location

NONE = "none"
PREVIOUS = "previous"

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def split_nested(run_dir: Location, nested: str = "") -> tuple[Location, str]:
    """(the top-level run folder, the nested folder under it: "" or "fit") of a stage's run
    folder; `nested` is the stage's label ("fit/" inside the fit pass)."""
    parts = [p for p in nested.split("/") if p]
    root = run_dir
    for _ in parts:
        root = root.parent
    return root, "/".join(parts)


def _at(run: Location, sub: str) -> Location:
    return run / sub if sub else run


def newest_other_run(out: Location, own: Location, table: str, sub: str = "") -> Location | None:
    """The run folder (nested folder `sub` included) under `out`, other than `own`, whose
    `table` was committed last (module docstring); None when no other run has it."""
    best: tuple[int, str] | None = None
    for entry in out.list():
        if not entry.is_dir or entry.rel.startswith((".", "_")) or out / entry.rel == own:
            continue
        try:
            stamp = (_at(out / entry.rel, sub) / table / MANIFEST).mtime_ns()
        except OSError:
            continue  # an unreadable folder is no candidate
        if stamp is not None and (best is None or (stamp, entry.rel) > best):
            best = (stamp, entry.rel)
    return None if best is None else _at(out / best[1], sub)


def named_run(own: Location, setting: str) -> Location:
    """reuse.run naming a run: a plain run id is a run under the same --out as `own`, anything
    else (a path with '/', a URI) the run folder itself."""
    if RUN_ID.fullmatch(setting) and setting not in {".", ".."}:
        return own.parent / setting
    return as_location(setting)


def reuse_source(
    run_dir: str | Location, table: str, cfg: Config, *, nested: str = "", log: Log = _quiet
) -> Location | None:
    """The other run folder whose committed `table` the stage may take unchanged rows from
    (reuse.run, module docstring), or None: reuse off, no such run, or the run's own folder.
    Never raises for a missing or unreadable run: it logs why and returns None."""
    setting = cfg.reuse.run.strip()
    if setting.lower() in ("", NONE):
        return None
    root, sub = split_nested(as_location(run_dir), nested)
    own = _at(root, sub)
    try:
        if setting == PREVIOUS:
            found = newest_other_run(root.parent, root, table, sub)
            if found is None:
                log(f"no other run under {root.parent} has {table} committed: nothing to reuse")
            return found
        other = _at(named_run(root, setting), sub)
        if other == own:
            return None  # the run's own table is read first anyway
        if not is_committed(other, table):
            log(f"reuse.run = {setting}: {other} has no committed {table}; computing instead")
            return None
        return other
    except Exception as exc:  # a store that cannot be listed or read: reuse is only a cache
        log(f"reuse.run = {setting}: cannot look for {table} ({_why(exc)}); computing instead")
        return None


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass
class Reuse:
    """What a stage took from where, for its log and manifest."""

    source: Location | None = None  # the other run (reused_from)
    this_run: int = 0  # rows from the run's own committed table
    other: int = 0  # rows from `source`

    @property
    def total(self) -> int:
        return self.this_run + self.other

    def extra(self, computed: int) -> dict[str, Any]:
        return {
            "reused": self.total,
            "reused_this_run": self.this_run,
            "reused_from": None if self.source is None else self.source.uri,
            "reused_from_rows": self.other,
            "computed": computed,
        }

    def describe(self) -> str:
        where = [f"{self.this_run} from this run's table"] if self.this_run else []
        if self.source is not None:
            where.append(f"{self.other} from {self.source.uri}")
        return f"{self.total} reused ({', '.join(where)})" if where else "none reused"


def reuse_rows(
    run_dir: Location,
    table: str,
    cfg: Config,
    todo: Any,  # polars.DataFrame of the rows to make, with the `key` column
    take: Callable[[Any, Any], Any],  # (LazyFrame of a table, todo) -> its reusable rows
    key: str,
    schema: dict[str, Any],  # the stage's table columns (Polars types)
    *,
    nested: str = "",
    log: Log = _quiet,
) -> tuple[Any, Any, Reuse]:
    """-> (the reusable rows in `schema`, from the run's own committed `table` first, then from
    the other run's (`reuse_source`); the rows of `todo` still to compute (no reused `key`);
    what came from where).

    `take` filters a table to the rows that equal what computing them now would give (same
    hash key, no error), in `schema`'s columns. The other run is looked up and read only when
    rows are left to compute; a failure to read it is logged, not raised."""
    import polars as pl

    reuse = Reuse()
    parts = [pl.DataFrame(schema=schema)]

    def take_from(where: Location, left: Any) -> tuple[Any, Any]:
        kept = take(scan_polars(where, table), left).select(list(schema)).cast(schema)
        return kept, left.join(kept.select(key).unique(), on=key, how="anti")

    if todo.height and is_committed(run_dir, table):
        kept, todo = take_from(run_dir, todo)
        reuse.this_run = kept.height
        parts.append(kept)
    if todo.height:
        reuse.source = reuse_source(run_dir, table, cfg, nested=nested, log=log)
    if reuse.source is not None:
        try:
            kept, todo = take_from(reuse.source, todo)
        except Exception as exc:
            log(f"cannot read {table} of {reuse.source.uri} ({_why(exc)}); computing instead")
        else:
            reuse.other = kept.height
            parts.append(kept)
    return pl.concat(parts), todo, reuse
