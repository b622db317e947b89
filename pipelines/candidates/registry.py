"""The candidate sources: the one place that says what each reads and how it is configured.

Adding a source: a module in `pipelines/candidates/sources/` with a function
`fn(inputs: SourceInputs, tables: dict[str, DataFrame], settings) -> DataFrame[user_idx,
item_idx, score]` (at most `inputs.per_source` rows per user, seen items excluded when
`inputs.seen` is given), one line below, and its test; a source with settings also gets a
section in `CandidatesConfig` (pipelines/config.py), named by `section`. docs/architecture.md
walks through an example.

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

    def load(self) -> Callable[..., Any]:
        module, _, attr = self.fn.partition(":")
        return getattr(importlib.import_module(module), attr)

    def settings(self, candidates_cfg: Any) -> Any:
        return getattr(candidates_cfg, self.section) if self.section else None


_PKG = "pipelines.candidates.sources"
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("popular", f"{_PKG}.popular:popular_source", section="popular"),
        Source(
            "transition", f"{_PKG}.transition:transition_source", ("graph_edges",), "transition"
        ),
        Source("ppr", f"{_PKG}.ppr:ppr_source", ("item_ppr",), "ppr"),
        Source("item_cf", f"{_PKG}.item_cf:item_cf_source", ("item_neighbors",), "item_cf"),
        Source("user_cf", f"{_PKG}.user_cf:user_cf_source", ("user_neighbors",), "user_cf"),
    )
}
# Always added: the fallback of users with little or no history.
FALLBACK = "popular"


def enabled(names: list[str]) -> list[str]:
    """The sources a run uses: the configured ones plus the fallback, in that order."""
    return list(dict.fromkeys([*names, FALLBACK]))


def tables_read(names: list[str]) -> tuple[str, ...]:
    """The run tables the given sources read (each once, in source order)."""
    return tuple(dict.fromkeys(t for n in names for t in SOURCES[n].reads))
