"""Deterministic fault injection at commit points, off unless `WALKRANK_FAULT` is set.

`WALKRANK_FAULT=<point>:<kind>` fires once the data of that point is on disk and before the
step that commits it:

- a table: `<table>` (its first write in the process) or `<stage>/<table>` (that stage's
  write, e.g. `rank/rankings`, which `candidates` also writes) — after the table's data files
  are in its new version folder (`<table>/v-<id>/`), before the manifest that names them; in
  a nested run (the fit pass) the same with its folder first: `fit/train`,
  `fit/candidates/rankings`;
- the ranker's model folder: `models/ranker`, after the model file, before meta.json;
- a shard of an LLM stage: `<stage>/shard<N>` — after shard N's data file is written, before
  its marker.

kind: `kill` (SIGKILL to this process: no handler, no cleanup runs), `raise`
(`InjectedFaultError`), `enospc` (`OSError(ENOSPC)`, what a full disk raises). Before acting it
prints one line to stderr with what is on disk at that moment, so a test can check where the
fault landed without timing anything.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import ConfigError, InjectedFaultError

FAULT_ENV = "WALKRANK_FAULT"
KINDS = ("kill", "raise", "enospc")
# The nested run being written ("fit/"), so a point can name the fit pass's copy of a table.
_SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("walkrank_fault_scope", default="")


@contextlib.contextmanager
def scoped(label: str) -> Iterator[None]:
    """Table points inside this block are named with `label` first (runner.run_nested)."""
    token = _SCOPE.set(label)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _spec() -> tuple[str, str] | None:
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    point, _, kind = spec.rpartition(":")
    if not point or kind not in KINDS:
        raise ConfigError(
            f"{FAULT_ENV}={spec!r} is not <point>:<kind>",
            hint=f"kind is one of {', '.join(KINDS)}; point a table, <stage>/<table> or "
            "<stage>/shard<N>; unset it for a normal run",
        )
    return point, kind


def maybe_fail(points: tuple[str, ...], where, state: str) -> None:
    """Fire the configured fault when its point is one of `points`; `where` is the directory
    (or file, a Path or storage Location) holding the uncommitted data, `state` says what is
    (not) there yet."""
    spec = _spec()
    if spec is None or spec[0] not in points:
        return
    point, kind = spec
    print(f"[fault] {kind} at {point}: {where.name} {state}", file=sys.stderr, flush=True)
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))
    raise InjectedFaultError(
        f"injected fault at {point} ({FAULT_ENV}={point}:{kind})",
        hint=f"unset {FAULT_ENV} and re-run: committed tables are reused",
    )


def table_point(run_dir, name: str, stage: str, table, version: str, files: list) -> None:
    """The point between a table's data files (in its new version folder) and the manifest
    that commits them (tableio.write_table)."""
    state = f"{version} holds {len(files)} data file(s), its manifest absent"
    scope = _SCOPE.get()
    maybe_fail((f"{scope}{name}", f"{scope}{stage}/{name}"), table, state)


def shard_point(stage: str, shard: int, data: Path, marker: Path) -> None:
    """The point between an LLM shard's data file and its marker (ShardStore.commit)."""
    state = f"written, marker {'present' if marker.exists() else 'absent'}"
    maybe_fail((f"{stage}/shard{shard}",), data, state)
