"""Fuse per-source candidate lists into one ranked list per user, in numpy.

The executor-side twin of pipelines/candidates/fusion.py `fuse_sources`, with its semantics
exactly, so a task that already holds a user's per-source lists can fuse them without a
shuffle. Per user u and source s (in source order), each list ranked by (score desc,
item asc) gives rank_s(j), and

    weighted:  c_s(j) = w_s · (score_s(j) / max_u(score_s))  when max_u(score_s) > 0, else 0
    rrf:       c_s(j) = w_s / (rrf_k + rank_s(j))
    fused(j)  = c_1(j) + c_2(j) + ... (source order; an absent source adds 0.0)

the list kept is the top_n by (fused desc, item asc). A pair repeated within one source
keeps its largest score and largest contribution (the Spark path's max aggregation).
Every operation is the same IEEE double operation in the same order as the Spark columns,
so the two agree bit for bit, and `fuse_lists_reference` (dicts and loops) does too.

Cost: N = Σ_s len(list_s) rows; per source an O(len) check that it is already in (user,
score desc, item) order (a lexsort only if not), one np.unique of the N pair keys and
one lexsort of the distinct pairs: O(N log N) time, O(N · S) memory (the per-source score
columns of the distinct pairs, S sources).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from udfs.topk import rank_runs

__all__ = ["fuse_lists", "fuse_lists_reference", "non_finite_message"]

Lists = Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]


def non_finite_message(source: str) -> str:
    """The error of a NaN or infinite score (the same words as the Spark path's check)."""
    return (
        f"candidate source '{source}' produced a non-finite score (NaN or inf): "
        "fix the source or the table it reads"
    )


def _check(lists: Lists, names: Sequence[str], weights: Sequence[float]):
    if not len(lists) == len(names) == len(weights):
        raise ValueError("lists, names and weights need one entry per source")
    out = []
    for (user, item, score), name in zip(lists, names, strict=True):
        user = np.asarray(user, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        score = np.asarray(score, dtype=np.float64)
        if not user.shape == item.shape == score.shape or user.ndim != 1:
            raise ValueError(f"source '{name}': user, item and score must be equal 1-d arrays")
        if user.size and (min(user.min(), item.min()) < 0 or max(user.max(), item.max()) >= 2**31):
            raise ValueError(f"source '{name}': ids must be in [0, 2**31)")
        if not np.isfinite(score).all():
            raise ValueError(non_finite_message(name))
        out.append((user, item, score))
    return out


def _contributions(user, item, score, weight: float, method: str, rrf_k: float):
    """Each row's contribution under `method`, from its rank within its user's list."""
    n = user.shape[0]
    contrib = np.empty(n)
    if n == 0:
        return contrib
    # The kernels' lists already come in (user, score desc, item) order: check in O(n)
    # before paying for the sort.
    same_user = user[1:] == user[:-1]
    in_order = (user[1:] >= user[:-1]).all() and not (
        same_user
        & ((score[1:] > score[:-1]) | ((score[1:] == score[:-1]) & (item[1:] <= item[:-1])))
    ).any()
    order = np.arange(n) if in_order else np.lexsort((item, -score, user))
    rank = rank_runs(user[order])
    if method == "rrf":
        contrib[order] = weight / (rrf_k + rank.astype(np.float64))
        return contrib
    # Sorted by score desc within the user, the first of each run is the user's best score.
    ordered = score[order]
    starts = np.flatnonzero(rank == 1)
    best = np.repeat(ordered[starts], np.diff(np.append(starts, n)))
    positive = best > 0
    contrib[order] = weight * np.where(positive, ordered / np.where(positive, best, 1.0), 0.0)
    return contrib


def fuse_lists(
    lists: Lists,
    names: Sequence[str],
    weights: Sequence[float],
    method: str,
    rrf_k: float,
    top_n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """lists: per source, in source order, (user, item, score) arrays (any row order).

    -> (user int64, item int32, rank int32 (1 = best), fused score float64, per-source
    scores float64[rows, sources] with NaN where the source did not propose the item), the
    top_n per user by (fused desc, item asc), sorted by (user, rank). A NaN or infinite
    input score is a ValueError naming its source.
    """
    if method not in ("weighted", "rrf"):
        raise ValueError(f"fusion method must be 'weighted' or 'rrf', not {method!r}")
    checked = _check(lists, names, weights)
    n_src = len(checked)
    keys = [(u << 32) | j for u, j, _ in checked]
    all_keys = np.concatenate(keys) if keys else np.empty(0, np.int64)
    if all_keys.size == 0 or top_n <= 0:
        e = np.empty(0)
        return e.astype(np.int64), e.astype(np.int32), e.astype(np.int32), e, e.reshape(0, n_src)
    cells, inv = np.unique(all_keys, return_inverse=True)
    inv = inv.ravel()
    scores = np.full((cells.shape[0], n_src), np.nan)
    fused = np.zeros(cells.shape[0])
    start = 0
    for s, (user, item, score) in enumerate(checked):
        at = inv[start : start + user.shape[0]]
        start += user.shape[0]
        contrib = np.full(cells.shape[0], np.nan)
        # fmax ignores the NaN of "not yet seen": a repeated pair keeps its max, as Spark's max.
        np.fmax.at(scores[:, s], at, score)
        np.fmax.at(contrib, at, _contributions(user, item, score, weights[s], method, rrf_k))
        present = np.where(np.isnan(contrib), 0.0, contrib)
        # c_1 + c_2 + ... from c_1 itself (not 0.0 + c_1), as the Spark column expression.
        fused = present if s == 0 else fused + present
    user, item = cells >> 32, cells & 0xFFFFFFFF
    order = np.lexsort((item, -fused, user))
    rank = rank_runs(user[order])
    keep = order[rank <= top_n]
    return (
        user[keep],
        item[keep].astype(np.int32),
        rank[rank <= top_n].astype(np.int32),
        fused[keep],
        scores[keep],
    )


def fuse_lists_reference(
    lists, names, weights, method: str, rrf_k: float, top_n: int
) -> list[tuple[int, int, int, float, list[float | None]]]:
    """The definition with dicts and sorted(): [(user, item, rank, fused, [score_s or None])]
    in (user, rank) order; the same arithmetic in the same order as `fuse_lists`."""
    n_src = len(names)
    cells: dict[tuple[int, int], tuple[list, list]] = {}
    for s, (user, item, score) in enumerate(lists):
        per_user: dict[int, list[tuple[float, int]]] = {}
        for u, j, x in zip(map(int, user), map(int, item), map(float, score), strict=True):
            if not math.isfinite(x):
                raise ValueError(non_finite_message(names[s]))
            per_user.setdefault(u, []).append((x, j))
        for u, rows in per_user.items():
            rows.sort(key=lambda p: (-p[0], p[1]))
            best = rows[0][0]
            for r, (x, j) in enumerate(rows, start=1):
                if method == "rrf":
                    c = weights[s] / (rrf_k + r)
                else:
                    c = weights[s] * (x / best if best > 0 else 0.0)
                sc, cc = cells.setdefault((u, j), ([None] * n_src, [None] * n_src))
                sc[s] = x if sc[s] is None else max(sc[s], x)
                cc[s] = c if cc[s] is None else max(cc[s], c)
    by_user: dict[int, list[tuple[float, int, list]]] = {}
    for (u, j), (sc, cc) in cells.items():
        total = 0.0 if cc[0] is None else cc[0]
        for c in cc[1:]:
            total = total + (0.0 if c is None else c)
        by_user.setdefault(u, []).append((total, j, sc))
    out = []
    for u in sorted(by_user):
        ranked = sorted(by_user[u], key=lambda t: (-t[0], t[1]))[: max(top_n, 0)]
        out.extend((u, j, r, f, sc) for r, (f, j, sc) in enumerate(ranked, start=1))
    return out
