"""Group sums of frames that arrive bucket by bucket, in time linear in their rows.

Summing after every bucket re-reads the whole running sum each time: O(buckets × groups),
quadratic when both grow with the data (item counts over buckets of users). A `PendingSum`
keeps frames pending until their rows outnumber the summed ones, then sums all in one
group-by, so each row takes part in O(1) sums, and at most about twice the summed rows are
held.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


class PendingSum:
    """Σ of `values` per `keys` over the frames added (of disjoint sets of users)."""

    def __init__(self, keys: Sequence[str], values: Sequence[str]) -> None:
        self.keys, self.values = list(keys), list(values)
        self._sum: pl.DataFrame | None = None
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        self._pending.append(frame)
        self._pending_rows += frame.height
        if self._sum is None or self._pending_rows >= self._sum.height:
            self._fold()

    def _fold(self) -> None:
        frames = [f for f in (self._sum, *self._pending) if f is not None]
        self._sum = pl.concat(frames).group_by(self.keys).agg(pl.col(*self.values).sum())
        self._pending, self._pending_rows = [], 0

    @property
    def rows(self) -> int:
        """Rows held: summed and pending."""
        return (self._sum.height if self._sum is not None else 0) + self._pending_rows

    def total(self) -> pl.DataFrame | None:
        """The summed frame (None when nothing was added)."""
        if self._pending:
            self._fold()
        return self._sum
