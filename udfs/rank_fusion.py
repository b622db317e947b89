"""Fusing the candidate score with the LLM score, and fitting the LLM weight on held-out items.

Per user, over the candidates that have an LLM score (the top-m), both scores are
standardised (z = (x - mean) / std, 0 when std = 0) and fused:
    fused = z(candidate score) + w * z(llm score).
Those candidates are re-ordered by fused (ties: original rank); the rest keep their order
after them. `fit_llm_weight` picks w from a grid by mean NDCG@k of one held-out item per
user: NDCG = 1 / log2(1 + position) when the item is within the top k, else 0.

Cost: O(n log n) per user for n scored candidates, times the grid size for the fit.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["zscore", "rerank", "ndcg_at", "fit_llm_weight", "fit_llm_weight_reference"]


def zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    sd = x.std()
    return np.zeros_like(x) if sd == 0 or not np.isfinite(sd) else (x - x.mean()) / sd


def rerank(cand: np.ndarray, llm: np.ndarray, w: float) -> tuple[np.ndarray, np.ndarray]:
    """One user's scored candidates in their candidate order -> (new order as indices into
    the inputs, fused score of each input)."""
    fused = zscore(cand) + w * zscore(llm)
    # lexsort: last key first; the original position breaks ties, so w = 0 keeps the order
    # whenever the candidate scores are already sorted.
    order = np.lexsort((np.arange(len(fused)), -fused))
    return order, fused


def ndcg_at(position: int | None, k: int) -> float:
    """NDCG@k of a single relevant item at 1-based `position` (None: not in the list)."""
    return 1.0 / math.log2(1 + position) if position is not None and position <= k else 0.0


def fit_llm_weight(
    groups: list[tuple[np.ndarray, np.ndarray, int | None]], grid: list[float], k: int
) -> tuple[float, dict[float, float]]:
    """groups: per user (candidate scores, llm scores, index of the held-out item among them
    or None). -> (best w, {w: mean NDCG@k}); ties prefer the smaller |w|, then the smaller w,
    so no evidence keeps the LLM weight at the grid point nearest 0."""
    table = {}
    for w in grid:
        total = 0.0
        for cand, llm, target in groups:
            if target is None:
                continue
            order, _ = rerank(cand, llm, w)
            pos = int(np.nonzero(order == target)[0][0]) + 1
            total += ndcg_at(pos, k)
        table[float(w)] = total / max(1, len(groups))
    best = min(table, key=lambda w: (-round(table[w], 12), abs(w), w))
    return best, table


def fit_llm_weight_reference(
    groups: list[tuple[list[float], list[float], int | None]], grid: list[float], k: int
) -> tuple[float, dict[float, float]]:
    """Plain-Python version of fit_llm_weight (statistics module, sorted with a key)."""
    import statistics

    def z(xs: list[float]) -> list[float]:
        if not xs:
            return []
        m, sd = statistics.fmean(xs), statistics.pstdev(xs)
        return [0.0] * len(xs) if sd == 0 else [(x - m) / sd for x in xs]

    table = {}
    for w in grid:
        total = 0.0
        for cand, llm, target in groups:
            if target is None:
                continue
            zc, zl = z(list(cand)), z(list(llm))
            fused = [a + w * b for a, b in zip(zc, zl, strict=True)]
            order = sorted(range(len(fused)), key=lambda i: (-fused[i], i))
            pos = order.index(target) + 1
            total += 1.0 / math.log2(1 + pos) if pos <= k else 0.0
        table[float(w)] = total / max(1, len(groups))
    best = min(table, key=lambda w: (-round(table[w], 12), abs(w), w))
    return best, table
