"""Where a run's tables go: `<out>/<run_id>`, and nowhere else; one writer at a time.

A run id is one path component of `[A-Za-z0-9._-]+` (not `.` or `..`). `--out` is a local
folder or a URI (`s3://bucket/runs`). A local run directory must resolve (symlinks followed)
inside `--out`: a run never writes, or replaces, anything outside the folder the user named.

One writer per run: locally an flock on `<run>/.lock`; on S3 a lease object created with a
conditional write (pipelines/lease.py); on a store with neither the run refuses to start
unless `run.lock = "orchestrator"` says the scheduler guarantees a single writer
(docs/deploy.md).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.errors import RunDirError, RunLockedError, StorageError
from pipelines.storage import Location, as_location

RUN_ID = re.compile(r"[A-Za-z0-9._-]+")


def check_run_id(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id) or run_id in {".", ".."}:
        raise RunDirError(
            f"run id {run_id!r} is not a plain name",
            hint="use letters, digits, '.', '_' and '-' only (e.g. 2026-11-30), not '.' or '..'",
        )
    return run_id


def resolve_run_dir(out: str | Path | Location, run_id: str) -> Location:
    """`out/run_id`, checked: a valid run id whose directory (locally) resolves inside `out`."""
    out_loc = as_location(out)
    check_run_id(run_id)
    if not out_loc.is_local:
        return out_loc / run_id
    root = out_loc.local_path.resolve()
    run_dir = (root / run_id).resolve()
    if run_dir.parent != root:
        raise RunDirError(
            f"run directory {out_loc.local_path / run_id} resolves to {run_dir}, outside "
            f"--out {root}",
            hint="remove the symlink, or pick another --run-id",
        )
    return Location(run_dir)


@contextmanager
def run_lock(
    run_dir: str | Path | Location, mode: str = "auto", lease_seconds: float = 300.0
) -> Iterator[object]:
    """One writer per run directory; a second one gets a clear error instead of mixed tables.
    Yields the lease on object storage (its `check()` raises once another writer took it)."""
    loc = as_location(run_dir)
    if mode == "orchestrator":
        yield None
    elif loc.is_local:
        with _flock(loc.local_path):
            yield None
    elif loc.scheme == "s3":
        from pipelines.lease import lease

        with lease(loc, lease_seconds) as held:
            yield held
    else:
        raise StorageError(
            f"no run lock for {loc.uri}: WalkRank takes one with an flock (local disk) or an S3 "
            "conditional write, and this store has neither here",
            hint="set run.lock=orchestrator if the scheduler runs one writer per run "
            "(docs/deploy.md)",
        )


@contextmanager
def _flock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    # Opened without truncating, and written only once locked: a refused second writer
    # leaves the holder's pid as it found it (and names it).
    fh = open(run_dir / ".lock", "a+")  # noqa: SIM115 - held for the whole run, closed below
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip()
        fh.close()
        raise RunLockedError(
            f"run {run_dir} is being written by another process"
            + (f" (pid {holder})" if holder.isdigit() else ""),
            hint="wait for it to finish, or use another --run-id",
        ) from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
