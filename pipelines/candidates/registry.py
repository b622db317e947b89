"""The candidate sources: the one place that says what each reads, how it is configured and
how much it weighs in the fusion.

Adding a source: a module in `pipelines/candidates/sources/` with a function
`fn(inputs: SourceInputs, tables: dict[str, DataFrame], settings) -> DataFrame[user_idx,
item_idx, score]` (at most `inputs.per_source` rows per user, seen items excluded when
`inputs.seen` is given), one line below, and its test. Everything else follows from the line:
its `settings` dataclass (if any) becomes the config section `[candidates.<name>]` and its
`weight` the default of `candidates.weights.<name>` (pipelines/config/sections.py builds
`CandidatesConfig` from this registry); its column `score_<name>` (schemas.score_column) in
the candidates and rankings tables, its features in the learned ranker and its metrics in
evaluate follow from the table. docs/architecture.md walks through an example.

A source that is a weighted sum of rows of a table (pipelines/candidates/broadcast_topk.py
`RowSum`) also names its `kernel`, a function of the same arguments returning that form,
whose `source_topk` gives the rows `fn` gives (the built-in `fn`s are exactly that). When
every enabled source has one, the candidates are built in one pass over users with no
shuffle of per-source rows (pipelines/candidates/one_pass.py); otherwise each `fn` runs and
their rows are fused by a shuffle (fusion.py). A source without `kernel` needs nothing more.

The registry imports no Spark code (functions are named, imported when a source runs; the
settings classes are declarations, pipelines/candidates/settings.py), so the config can
build and validate its candidates section from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.candidates.settings import (
    HistorySettings,
    PopularSettings,
    TransitionSettings,
    UserCfSettings,
)


@dataclass(frozen=True)
class Source:
    name: str
    fn: str  # "module:function"
    reads: tuple[str, ...] = ()  # run tables it reads besides events, train and items
    kernel: str | None = None  # "module:function" -> RowSum, for the one-pass build
    settings: type | None = None  # its settings dataclass: the section [candidates.<name>]
    weight: float = 1.0  # the default of candidates.weights.<name>

    def load(self) -> Callable[..., Any]:
        return _attr(self.fn)

    def load_kernel(self) -> Callable[..., Any] | None:
        return _attr(self.kernel) if self.kernel else None

    def settings_of(self, candidates_cfg: Any) -> Any:
        """Its section of a CandidatesConfig (None for a source without settings)."""
        return getattr(candidates_cfg, self.name) if self.settings else None


def _attr(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


_PKG = "pipelines.candidates.sources"


def _source(name: str, reads: tuple[str, ...], settings: type, weight: float) -> Source:
    """A built-in source: `fn` and `kernel` are <name>_source and <name>_kernel of its module."""
    module = f"{_PKG}.{name}"
    fn, kernel = f"{module}:{name}_source", f"{module}:{name}_kernel"
    return Source(name, fn, reads, kernel, settings, weight)


# The weights are the tuned profile of the config's defaults (pipelines/config/__init__.py).
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        _source("popular", (), PopularSettings, 0.25),
        _source("transition", ("graph_edges",), TransitionSettings, 2.0),
        _source("ppr", ("item_ppr",), HistorySettings, 1.0),
        _source("item_cf", ("item_neighbors",), HistorySettings, 2.0),
        _source("user_cf", ("user_neighbors",), UserCfSettings, 1.0),
    )
}
# Always added: the fallback of users with little or no history.
FALLBACK = "popular"


def enabled(names: list[str]) -> list[str]:
    """The sources a run uses: the configured ones plus the fallback, in that order."""
    return list(dict.fromkeys([*names, FALLBACK]))


def default_weights() -> dict[str, float]:
    """Each registered source's default weight, the fallback last (as `enabled` adds it)."""
    names = [n for n in SOURCES if n != FALLBACK] + [FALLBACK]
    return {n: SOURCES[n].weight for n in names}


def without_kernel(names: list[str]) -> list[str]:
    """The given sources that have no kernel form (each needs the shuffle fusion)."""
    return [n for n in names if SOURCES[n].kernel is None]


def tables_read(names: list[str]) -> tuple[str, ...]:
    """The run tables the given sources read (each once, in source order)."""
    return tuple(dict.fromkeys(t for n in names for t in SOURCES[n].reads))
