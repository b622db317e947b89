"""The settings of the built-in candidate sources: one dataclass each, `[candidates.<source>]`.

Declarations only (no Spark, numpy or source code): the registry names these classes and the
config builds its candidates section from them, so the config loads without a source module.
Fields are validated by their annotations (pipelines/bounds.py) like every config field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pipelines.bounds import Count, Decay, NonNeg, Range


@dataclass
class PopularSettings:
    window_days: NonNeg = 0.0  # > 0: count only train events of the last N days


@dataclass
class TransitionSettings:
    last: Annotated[int, Range(ge=1, le=2)] = 2  # walk from the user's last 1 or 2 items
    last_decay: NonNeg = 0.5  # weight of the second-to-last item
    hops: Count = 3  # path lengths 1..hops
    hop_decay: Decay = 0.5  # weight of paths of length h: decay**(h-1)
    beam: Count = 300  # frontier items kept per seed item after each hop


@dataclass
class HistorySettings:
    """A source over the user's last `history` train events, weighted decay**p (p = 0 newest)."""

    history: Count = 10
    decay: Decay = 0.7


@dataclass
class UserCfSettings(HistorySettings):
    """user_cf reads each neighbour's last items, not the user's own: its own default decay."""

    decay: Decay = 0.8
