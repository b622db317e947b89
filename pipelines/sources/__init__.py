"""Candidate sources: each maps (train, users) to per-user scored items, top `per_source`.

A source is `fn(ctx, inputs: SourceInputs) -> DataFrame[user_idx int, item_idx int, score double]`
holding at most `candidates.per_source` rows per user, seen items already excluded when
`candidates.exclude_seen` is on. Register new sources in SOURCES and the run tables they read
in SOURCE_TABLES (the candidates stage reads, and waits for, only those of enabled sources).
"""

from __future__ import annotations

from pipelines.sources.base import SourceInputs, top_per_user
from pipelines.sources.item_cf import item_cf_source
from pipelines.sources.popular import popular_source
from pipelines.sources.ppr import ppr_source
from pipelines.sources.transition import transition_source
from pipelines.sources.user_cf import user_cf_source

SOURCES = {
    "popular": popular_source,
    "transition": transition_source,
    "ppr": ppr_source,
    "item_cf": item_cf_source,
    "user_cf": user_cf_source,
}
SOURCE_TABLES: dict[str, tuple[str, ...]] = {
    "popular": (),
    "transition": ("graph_edges",),
    "ppr": ("item_ppr",),
    "item_cf": ("item_neighbors",),
    "user_cf": ("user_neighbors",),
}

__all__ = ["SOURCES", "SOURCE_TABLES", "SourceInputs", "top_per_user"]
