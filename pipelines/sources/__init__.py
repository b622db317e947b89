"""Candidate sources: each maps (train, users) to per-user scored items, top `per_source`.

A source is `fn(ctx, inputs: SourceInputs) -> DataFrame[user_idx int, item_idx int, score double]`
holding at most `candidates.per_source` rows per user, seen items already excluded when
`candidates.exclude_seen` is on. Register new sources in SOURCES.
"""

from __future__ import annotations

from pipelines.sources.base import SourceInputs, top_per_user
from pipelines.sources.popular import popular_source

SOURCES = {"popular": popular_source}

__all__ = ["SOURCES", "SourceInputs", "top_per_user"]
