"""Alias tables (Walker / Vose) for O(1) weighted next-hop sampling on a CSR graph.

Executor-side kernel: numpy only (no pyspark / ray imports).

Layout
------
The graph is CSR: ``indptr`` int64 [n+1], ``indices`` int32 [nnz] (destination of each edge),
``prob`` float64 [nnz] (transition probability, each non-empty row sums to 1).  The alias
table is stored edge-aligned, one entry per edge, so row ``v`` owns entries
``indptr[v]:indptr[v+1]``:

* ``accept[e]`` (float64 in [0, 1]): probability of keeping column ``e - indptr[v]``;
* ``alias[e]`` (int32): the *local column offset within the row* taken otherwise.

Sampling a neighbour of ``v`` with degree ``d``: draw a column ``c = floor(u1 * d)``; keep it if
``u2 < accept[indptr[v] + c]``, else take column ``alias[indptr[v] + c]``.  The implied
distribution of column ``j`` is ``(accept_j + sum_{i: alias_i = j} (1 - accept_i)) / d``.

Construction
------------
:func:`build_alias_tables` is a vectorised (across all rows at once) form of the *sweeping*
variant of Vose's method (Huebschle-Schneider & Sanders, "Parallel Weighted Random Sampling",
2019).  With scaled weights ``q = prob * d``, items with ``q <= 1`` are light, the others heavy.
Light items are filled in row order; heavy item ``j`` donates its excess to the next light items
until it drops to ``q <= 1`` itself, at which point its own column is topped up by heavy ``j+1``.
With prefix sums per row ``E_j = sum_{k<=j} (q_hk - 1)`` (excess of heavies) and
``D_i = sum_{m<=i} (1 - q_lm)`` (deficit of lights), light ``i`` is aliased to the first heavy
with ``E_j > D_{i-1}``, and heavy ``j`` keeps ``accept_j = 1 + E_j - D_{c_j}`` where ``c_j`` is
the number of lights given to heavies ``<= j``; its alias is heavy ``j+1`` (itself for the last).
The mass identity telescopes for any monotone assignment, so the result is exact up to rounding.

The "first heavy with E_j > D" look-up is one ``np.searchsorted`` over all rows at once on
int64 keys ``row * (2**F + 1) + floor(value / T_row * 2**F)`` (``T_row`` = total excess of the
row, ``F = min(52, 62 - bits(n))``).  Quantisation can only merge a light into a later heavy when
the two prefix sums are within ``T_row * 2**-F`` of each other; the resulting ``accept`` overshoot
is clipped, so the worst-case probability error is ``2**-F`` (``2**-46`` for n = 50k), and zero
for the usual exact ties of integer weights.  Prefix sums are taken per row with a reset (see
``_segmented_cumsum``) so their rounding error is relative to the row, not to the whole graph.

Complexity: O(nnz) memory and O(nnz) work for the prefix sums and scatters plus
O(n_light * log n_heavy) for the vectorised binary search, i.e. O(nnz log nnz) worst case in
numpy calls, with no Python loop over nodes or edges.  The plain-Python reference
(:func:`build_alias_tables_reference`) is the textbook O(degree)-per-row Vose with work lists;
both produce valid, generally different, tables of the same distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "AliasTables",
    "build_alias_tables",
    "build_alias_tables_reference",
]


@dataclass(frozen=True)
class AliasTables:
    """Edge-aligned alias tables of a CSR graph.

    accept: float64[nnz], probability in [0, 1] of keeping the drawn column.
    alias:  int32[nnz], local column offset (within the row) taken otherwise.
    """

    accept: np.ndarray
    alias: np.ndarray

    @property
    def nnz(self) -> int:
        return int(self.accept.shape[0])


def _check_csr(indptr, prob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    prob = np.ascontiguousarray(prob, dtype=np.float64)
    if indptr.ndim != 1 or indptr.shape[0] < 1 or prob.ndim != 1:
        raise ValueError("indptr must be 1-d with n+1 entries and prob 1-d")
    if indptr[0] != 0 or indptr[-1] != prob.shape[0]:
        raise ValueError("indptr must start at 0 and end at nnz = len(prob)")
    deg = np.diff(indptr)
    if deg.size and deg.min() < 0:
        raise ValueError("indptr must be non-decreasing")
    if prob.size and not (np.isfinite(prob).all() and prob.min() >= 0.0):
        raise ValueError("prob must be finite and non-negative")
    return indptr, prob, deg


def _segmented_cumsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Inclusive cumsum of ``x`` restarting at each index in ``starts`` (sorted, starts[0] == 0).

    A plain cumsum minus a per-segment base has an absolute error proportional to the running
    total of *all previous* segments; here each segment's (reduceat) total is subtracted at the
    next segment start, so the running value stays near zero and the error is relative to the
    segment's own magnitude.  O(len(x)).
    """
    if x.size == 0:
        return x.copy()
    totals = np.add.reduceat(x, starts)
    y = x.copy()
    y[starts[1:]] -= totals[:-1]
    cs = np.cumsum(y)
    drift = cs[starts] - x[starts]  # running value just before each segment (~ rounding noise)
    seg_len = np.diff(np.append(starts, x.size))
    cs -= np.repeat(drift, seg_len)
    return cs


def _give_lights_to_heavies(alias, col, h, lights, lr, h_row, d_excl, e_cum, total, nh, h_first):
    """Each light column (of a row with heavies) gets as alias the first heavy of its row
    whose cumulative excess passes the light's exclusive cumulative deficit (both scaled by
    the row's total excess and quantised, so one global searchsorted serves every row).
    Writes `alias[lights]`; returns c_j, the number of lights given to heavies <= j within
    each row. O((heavies + lights) log heavies)."""
    n = nh.shape[0]
    h_rows_present = np.flatnonzero(nh)
    frac_bits = int(min(52, 62 - int(n).bit_length()))
    scale = float(2**frac_bits)
    stride = np.int64(2**frac_bits + 1)
    inv_t = np.zeros(n, dtype=np.float64)
    inv_t[h_rows_present] = 1.0 / total[h_rows_present]
    top = np.int64(2**frac_bits)  # clamp so rounding (value/T > 1) cannot leave the row

    def quantise(values, rows):
        q_int = np.floor(values * inv_t[rows] * scale).astype(np.int64)
        return rows * stride + np.minimum(q_int, top)

    h_key = quantise(e_cum, h_row)
    l_key = quantise(d_excl, lr)
    # Global index of the first heavy whose key is > the light's key (same row).
    g = np.searchsorted(h_key, l_key, side="right")
    k = np.minimum(g - h_first[lr], nh[lr] - 1)  # local heavy index (clamp: q ~ 1 ties)
    g = h_first[lr] + k
    alias[lights] = col[h[g]]
    cnt = np.bincount(g, minlength=h.size)
    cs = np.cumsum(cnt)
    return cs - np.repeat(
        cs[h_first[h_rows_present]] - cnt[h_first[h_rows_present]], nh[h_rows_present]
    )


def _fill_lights(accept, alias, col, q, lt, l_row, h, h_row, e_cum, total, nh, h_first):
    """The light columns' part of the tables: each light of a row with heavies gets its alias
    (`_give_lights_to_heavies`), the lights of rows without heavies keep themselves (accept
    1). Writes `accept` and `alias` of the lights; returns D at each heavy j, the cumulative
    deficit of the lights given to heavies <= j of its row (0 where none). O(lights log
    heavies)."""
    if lt.size == 0:
        return np.zeros(h.size, dtype=np.float64)
    nl = np.bincount(l_row, minlength=nh.shape[0])
    l_first = np.concatenate(([0], np.cumsum(nl)[:-1]))
    l_rows_present = np.flatnonzero(nl)
    deficit = 1.0 - q[lt]
    d_cum = _segmented_cumsum(deficit, l_first[l_rows_present])  # D_i, inclusive
    d_excl = np.empty_like(d_cum)
    d_excl[0] = 0.0
    d_excl[1:] = d_cum[:-1]
    d_excl[l_first[l_rows_present]] = 0.0

    # Rows with lights but no heavy are uniform up to rounding: keep accept = 1, alias self.
    has_h = nh[l_row] > 0
    accept[lt[~has_h]] = 1.0
    li = np.flatnonzero(has_h)
    if li.size:
        c = _give_lights_to_heavies(
            alias, col, h, lt[li], l_row[li], h_row, d_excl[li], e_cum, total, nh, h_first
        )
    else:
        c = np.zeros(h.size, dtype=np.int64)
    d_at = np.zeros(h.size, dtype=np.float64)
    pos = c > 0
    d_at[pos] = d_cum[l_first[h_row[pos]] + c[pos] - 1]
    return d_at


def build_alias_tables(indptr, prob) -> AliasTables:
    """Vectorised alias tables for every row of a CSR graph (sweeping Vose, see module doc).

    Rows are renormalised by their sum (so ``prob`` may carry tiny rounding drift); a row with a
    zero sum is rejected.  Dangling rows (degree 0) own no entries.
    O(nnz log nnz) worst case in vectorised numpy work (O(nnz) apart from one searchsorted),
    O(nnz) memory.
    """
    indptr, prob, deg = _check_csr(indptr, prob)
    n = deg.shape[0]
    nnz = prob.shape[0]
    accept = np.ones(nnz, dtype=np.float64)
    alias = np.zeros(nnz, dtype=np.int32)
    if nnz == 0:
        return AliasTables(accept, alias)

    nonempty = np.flatnonzero(deg)
    row_sum = np.zeros(n, dtype=np.float64)
    row_sum[nonempty] = np.add.reduceat(prob, indptr[nonempty])
    if (row_sum[nonempty] <= 0.0).any():
        raise ValueError("every non-empty row needs a positive probability sum")

    row = np.repeat(np.arange(n, dtype=np.int64), deg)
    col = np.arange(nnz, dtype=np.int64) - indptr[row]
    q = prob * (deg / np.where(row_sum > 0.0, row_sum, 1.0))[row]

    heavy_mask = q > 1.0
    h = np.flatnonzero(heavy_mask)
    lt = np.flatnonzero(~heavy_mask)
    # Light columns keep themselves with probability q (alias filled in below when needed).
    accept[lt] = q[lt]
    alias[:] = col  # default alias = self (irrelevant where accept == 1)
    if h.size == 0:  # every row uniform up to rounding
        accept[:] = 1.0
        return AliasTables(accept, alias)

    h_row = row[h]
    nh = np.bincount(h_row, minlength=n)
    h_first = np.concatenate(([0], np.cumsum(nh)[:-1]))  # index into h of each row's first heavy

    h_rows_present = np.flatnonzero(nh)
    excess = q[h] - 1.0
    e_cum = _segmented_cumsum(excess, h_first[h_rows_present])  # E_j, inclusive
    total = np.zeros(n, dtype=np.float64)
    total[h_rows_present] = e_cum[h_first[h_rows_present] + nh[h_rows_present] - 1]

    d_at = _fill_lights(accept, alias, col, q, lt, row[lt], h, h_row, e_cum, total, nh, h_first)
    w = 1.0 + e_cum - d_at
    np.clip(w, 0.0, 1.0, out=w)
    accept[h] = w
    # Heavy j's column is topped up by the next heavy of the same row; the last keeps itself.
    nxt = np.arange(1, h.size + 1)
    last = np.zeros(h.size, dtype=bool)
    last[h_first[h_rows_present] + nh[h_rows_present] - 1] = True
    nxt[last] = np.flatnonzero(last)
    alias[h] = col[h[nxt]]
    return AliasTables(accept, alias)


def build_alias_tables_reference(indptr, prob) -> AliasTables:
    """Plain-Python Vose (two work lists) per row.  O(degree) per row, slow: tests only."""
    indptr, prob, _ = _check_csr(indptr, prob)
    nnz = prob.shape[0]
    accept = [1.0] * nnz
    alias = list(range(nnz))
    for v in range(indptr.shape[0] - 1):
        s, e = int(indptr[v]), int(indptr[v + 1])
        d = e - s
        if d == 0:
            continue
        p = [float(x) for x in prob[s:e]]
        tot = sum(p)
        if tot <= 0.0:
            raise ValueError("every non-empty row needs a positive probability sum")
        q = [x * d / tot for x in p]
        small = [i for i in range(d) if q[i] < 1.0]
        large = [i for i in range(d) if q[i] >= 1.0]
        for i in range(d):
            alias[s + i] = i
        while small and large:
            sm = small.pop()
            lg = large.pop()
            accept[s + sm] = q[sm]
            alias[s + sm] = lg
            q[lg] = (q[lg] + q[sm]) - 1.0
            (small if q[lg] < 1.0 else large).append(lg)
        for i in large + small:  # leftovers are 1 up to rounding
            accept[s + i] = 1.0
    return AliasTables(np.array(accept, dtype=np.float64), np.array(alias, dtype=np.int32))
