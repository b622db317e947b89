"""The candidate sources: the one place that says what each reads and how it is configured.

Adding a source: a module in `pipelines/candidates/sources/` with a function
`fn(inputs: SourceInputs, tables: dict[str, DataFrame], settings) -> DataFrame[user_idx,
item_idx, score]` (at most `inputs.per_source` rows per user, seen items excluded when
`inputs.seen` is given), one line below, and its test; a source with settings also gets a
section in `CandidatesConfig` (pipelines/config/sections.py), named by `section`. docs/architecture.md
walks through an example.

A source that is a weighted sum of rows of a table (pipelines/candidates/broadcast_topk.py
`RowSum`) also names its `kernel`, a function of the same arguments returning that form,
whose `source_topk` gives the rows `fn` gives (the built-in `fn`s are exactly that). When
every enabled source has one, the candidates are built in one pass over users with no
shuffle of per-source rows (pipelines/candidates/one_pass.py); otherwise each `fn` runs and
their rows are fused by a shuffle (fusion.py). A source without `kernel` needs nothing more.

The registry imports no Spark code (functions are named, imported when a source runs), so
the config can validate `candidates.sources` against it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Source:
    name: str
    fn: str  # "module:function"
    reads: tuple[str, ...] = ()  # run tables it reads besides events, train and items
    section: str | None = None  # its settings: the field of CandidatesConfig of that name
    kernel: str | None = None  # "module:function" -> RowSum, for the one-pass build

    def load(self) -> Callable[..., Any]:
        return _attr(self.fn)

    def load_kernel(self) -> Callable[..., Any] | None:
        return _attr(self.kernel) if self.kernel else None

    def settings(self, candidates_cfg: Any) -> Any:
        return getattr(candidates_cfg, self.section) if self.section else None


def _attr(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


_PKG = "pipelines.candidates.sources"


def _source(name: str, reads: tuple[str, ...] = ()) -> Source:
    """A built-in source: `fn` and `kernel` are <name>_source and <name>_kernel of its module."""
    module = f"{_PKG}.{name}"
    return Source(name, f"{module}:{name}_source", reads, name, f"{module}:{name}_kernel")


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        _source("popular"),
        _source("transition", ("graph_edges",)),
        _source("ppr", ("item_ppr",)),
        _source("item_cf", ("item_neighbors",)),
        _source("user_cf", ("user_neighbors",)),
    )
}
# Always added: the fallback of users with little or no history.
FALLBACK = "popular"


def enabled(names: list[str]) -> list[str]:
    """The sources a run uses: the configured ones plus the fallback, in that order."""
    return list(dict.fromkeys([*names, FALLBACK]))


def without_kernel(names: list[str]) -> list[str]:
    """The given sources that have no kernel form (each needs the shuffle fusion)."""
    return [n for n in names if SOURCES[n].kernel is None]


def tables_read(names: list[str]) -> tuple[str, ...]:
    """The run tables the given sources read (each once, in source order)."""
    return tuple(dict.fromkeys(t for n in names for t in SOURCES[n].reads))
