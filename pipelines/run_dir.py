"""Where a run's tables go: `<out>/<run_id>`, and nowhere else; one writer at a time.

A run id is one path component of `[A-Za-z0-9._-]+` (not `.` or `..`), and the run directory
must resolve (symlinks followed) inside `--out`: a run never writes, or replaces, anything
outside the folder the user named.
"""

from __future__ import annotations

import fcntl
import os
import re
from contextlib import contextmanager
from pathlib import Path

from pipelines.errors import RunDirError, RunLockedError

RUN_ID = re.compile(r"[A-Za-z0-9._-]+")


def check_run_id(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id) or run_id in {".", ".."}:
        raise RunDirError(
            f"run id {run_id!r} is not a plain name",
            hint="use letters, digits, '.', '_' and '-' only (e.g. 2026-11-30), not '.' or '..'",
        )
    return run_id


def resolve_run_dir(out: str | Path, run_id: str) -> Path:
    """`out/run_id`, checked: a valid run id whose directory resolves inside `out`."""
    root = Path(out).resolve()
    run_dir = (root / check_run_id(run_id)).resolve()
    if run_dir.parent != root:
        raise RunDirError(
            f"run directory {Path(out) / run_id} resolves to {run_dir}, outside --out {root}",
            hint="remove the symlink, or pick another --run-id",
        )
    return run_dir


@contextmanager
def run_lock(run_dir: Path):
    """One writer per run directory; a second one gets a clear error instead of mixed tables."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = open(run_dir / ".lock", "w")  # noqa: SIM115 - held for the whole run, closed below
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RunLockedError(
            f"run {run_dir} is being written by another process",
            hint="wait for it to finish, or use another --run-id",
        ) from None
    try:
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
