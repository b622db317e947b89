"""Top-k destinations per source from COO scores.

Executor-side kernel: numpy only (no pyspark / ray imports).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PACKED_KEY_MAX",
    "pair_keys",
    "rank_runs",
    "top_k_by_share",
    "top_k_per_source",
    "top_k_per_source_reference",
]


def _as_coo(src, dst, score):
    src = np.asarray(src)
    dst = np.asarray(dst)
    score = np.asarray(score, dtype=np.float64)
    if not (src.ndim == dst.ndim == score.ndim == 1) or not (
        src.shape[0] == dst.shape[0] == score.shape[0]
    ):
        raise ValueError("src, dst and score must be 1-d arrays of equal length")
    if np.isnan(score).any():
        raise ValueError("score must not contain NaN")
    return src, dst, score


def _empty():
    return (
        np.empty(0, np.int32),
        np.empty(0, np.int32),
        np.empty(0, np.float64),
        np.empty(0, np.int32),
    )


#: Largest packed key (src_code, score_code, dst_code) the fast path uses; beyond it, lexsort.
PACKED_KEY_MAX = 2**63 - 1


def _int_codes(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | int, int]:
    """Order-preserving codes of an int array: ``a - min`` when the value range is small,
    else dense ranks from ``np.unique``.  Returns (codes int64, decoder, number of codes)."""
    lo = int(a.min())
    span = int(a.max()) - lo + 1
    if span <= max(4 * a.shape[0], 1 << 16):
        return a.astype(np.int64) - lo, lo, span
    uniq, inv = np.unique(a, return_inverse=True)
    return inv.astype(np.int64), uniq, int(uniq.shape[0])


def _decode(codes: np.ndarray, decoder) -> np.ndarray:
    if isinstance(decoder, int):
        return codes + decoder
    return decoder[codes]


def rank_runs(group: np.ndarray) -> np.ndarray:
    """1-based position of each element within its run of equal values (group is sorted)."""
    n = group.shape[0]
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    np.not_equal(group[1:], group[:-1], out=new_run[1:])
    run_start = np.flatnonzero(new_run)
    run_len = np.diff(np.append(run_start, n))
    return np.arange(1, n + 1, dtype=np.int64) - np.repeat(run_start, run_len)


def top_k_per_source(src, dst, score, k: int, exclude_self: bool = True):
    """The ``k`` best destinations of every source.

    Order within a source: score descending, then dst ascending (deterministic tie break).
    Returns ``(src int32, dst int32, score float64, rank int32)`` sorted by (src, rank), rank
    starting at 1; ``exclude_self`` drops rows with ``dst == src`` first.  Scores must not be
    NaN.

    Vectorised over all sources, no Python loop per source.  Fast path: scores are replaced by
    their dense rank (one ``argsort``), ``(src, -score, dst)`` is packed into one int64 key
    per row (order-preserving codes), the keys are sorted by value (SIMD ``np.sort``) and
    decoded; the rank is the position within the source's run.  When the packed key space
    exceeds int64 (huge id ranges *and* many distinct scores) it falls back to ``np.lexsort``
    on (src, -score, dst): three indirect key passes instead of one sort of int64 values, so
    slower (benchmarks/RESULTS.md).  O(N log N) time, O(N) memory either way.
    """
    src, dst, score = _as_coo(src, dst, score)
    k = int(k)
    if k < 0:
        raise ValueError("k must be >= 0")
    if exclude_self:
        keep = src != dst
        src, dst, score = src[keep], dst[keep], score[keep]
    n = src.shape[0]
    if k == 0 or n == 0:
        return _empty()

    # Dense rank of each score (ties share a rank), ascending.
    perm = np.argsort(score)
    ss = score[perm]
    new_val = np.empty(n, dtype=bool)
    new_val[0] = True
    np.not_equal(ss[1:], ss[:-1], out=new_val[1:])
    uniq_scores = ss[new_val]
    n_scores = uniq_scores.shape[0]
    score_rank = np.empty(n, dtype=np.int64)
    score_rank[perm] = np.cumsum(new_val) - 1

    s_code, s_dec, n_s = _int_codes(src)
    d_code, d_dec, n_d = _int_codes(dst)
    if n_s * n_scores * n_d - 1 > PACKED_KEY_MAX:
        order = np.lexsort((dst, -score, src))
        rank = rank_runs(src[order])
        top = rank <= k
        sel = order[top]
        return (
            src[sel].astype(np.int32),
            dst[sel].astype(np.int32),
            score[sel],
            rank[top].astype(np.int32),
        )

    key = s_code * (n_scores * n_d)
    key += (n_scores - 1 - score_rank) * n_d
    key += d_code
    key.sort()
    s_sorted = key // (n_scores * n_d)
    rank = rank_runs(s_sorted)
    top = rank <= k
    key = key[top]
    rem = key % (n_scores * n_d)
    return (
        _decode(s_sorted[top], s_dec).astype(np.int32),
        _decode(rem % n_d, d_dec).astype(np.int32),
        uniq_scores[n_scores - 1 - rem // n_d],
        rank[top].astype(np.int32),
    )


def pair_keys(src, dst) -> np.ndarray:
    """int64 keys ``src << 32 | dst`` of non-negative int32 pairs: sorting the keys sorts the
    pairs by (src, dst).  O(N)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if src.shape != dst.shape:
        raise ValueError("src and dst must have the same shape")
    if src.size and (src.min() < 0 or dst.min() < 0 or max(src.max(), dst.max()) >= 2**31):
        raise ValueError("pair_keys needs ids in [0, 2**31)")
    return (src << 32) | dst


def top_k_by_share(keys, counts, k: int):
    """Top ``k`` destinations per source by share of the source's count.

    keys: sorted distinct :func:`pair_keys`; counts: their multiplicities (visits or end
    points of the source's walks).  score = count / the source's total count (its own key
    included in the total, excluded from the ranking), computed as one float64 division so it
    equals Spark's ``n / sum(n) over (partition by src)``.  Same output and order as
    :func:`top_k_per_source`.  O(N log N).
    """
    keys = np.asarray(keys, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if keys.shape != counts.shape:
        raise ValueError("keys and counts must have the same shape")
    if keys.size == 0:
        return _empty()
    src = keys >> 32
    dst = keys & 0xFFFFFFFF
    starts = np.flatnonzero(np.concatenate(([True], src[1:] != src[:-1])))
    totals = np.add.reduceat(counts, starts)
    total = np.repeat(totals, np.diff(np.append(starts, src.shape[0])))
    return top_k_per_source(src, dst, counts / total, k, exclude_self=True)


def top_k_per_source_reference(src, dst, score, k: int, exclude_self: bool = True):
    """Plain-Python ``sorted()`` per source; same contract as :func:`top_k_per_source`."""
    src, dst, score = _as_coo(src, dst, score)
    groups: dict[int, list[tuple[float, int]]] = {}
    for s, d, x in zip(src.tolist(), dst.tolist(), score.tolist(), strict=True):
        if exclude_self and s == d:
            continue
        groups.setdefault(s, []).append((x, d))
    out_s, out_d, out_x, out_r = [], [], [], []
    for s in sorted(groups):
        best = sorted(groups[s], key=lambda t: (-t[0], t[1]))[: max(int(k), 0)]
        for r, (x, d) in enumerate(best, start=1):
            out_s.append(s)
            out_d.append(d)
            out_x.append(x)
            out_r.append(r)
    return (
        np.array(out_s, dtype=np.int32),
        np.array(out_d, dtype=np.int32),
        np.array(out_x, dtype=np.float64),
        np.array(out_r, dtype=np.int32),
    )
