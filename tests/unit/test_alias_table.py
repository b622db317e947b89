"""Alias tables: exact implied distribution, vectorised vs reference, chi-square of samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.graph_fixtures import csr_from_edges, random_weighted_graph, row_normalise
from udfs.alias_table import (
    AliasTables,
    build_alias_tables,
    build_alias_tables_reference,
)


def implied_distribution(indptr, tables: AliasTables) -> np.ndarray:
    """Edge-aligned probabilities implied by the tables:
    ``p_j = (accept_j + sum_{i: alias_i = j} (1 - accept_i)) / deg``.  O(nnz), vectorised."""
    indptr = np.asarray(indptr, dtype=np.int64)
    deg = np.diff(indptr)
    nnz = tables.accept.shape[0]
    row_start = np.repeat(indptr[:-1], deg)
    mass = tables.accept.copy()
    mass += np.bincount(row_start + tables.alias, weights=1.0 - tables.accept, minlength=nnz)
    return mass / np.repeat(deg, deg)


def sample_next(tables: AliasTables, indptr, indices, nodes, u_col, u_accept) -> np.ndarray:
    """One alias-sampled next hop per entry of ``nodes``: O(1) per walker, O(len(nodes)) total.

    ``u_col`` and ``u_accept`` are uniforms in [0, 1) (float32 or float64), one per node.
    Returns int32 destination ids; -1 where the node is dangling (no out-edges).
    (The walk kernels in :mod:`udfs.walk_batch` fuse the same rule with a single uniform per
    hop: the column is ``floor(u * deg)`` and the accept uniform is its fractional part.)
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    nodes = np.asarray(nodes, dtype=np.int64)
    start = indptr[nodes]
    deg = indptr[nodes + 1] - start
    col = (np.asarray(u_col, dtype=np.float64) * deg).astype(np.int64)
    np.minimum(col, np.maximum(deg - 1, 0), out=col)  # guards u == 1 - eps rounding up
    dangling = deg == 0
    e = np.where(dangling, 0, start + col)
    if tables.accept.shape[0] == 0:
        return np.full(nodes.shape, -1, dtype=np.int32)
    keep = np.asarray(u_accept) < tables.accept[e]
    edge = np.where(dangling, 0, start + np.where(keep, col, tables.alias[e]))
    out = np.asarray(indices)[edge].astype(np.int32)
    out[dangling] = -1
    return out


def _implied_loop(indptr, tables: AliasTables) -> np.ndarray:
    """Independent (loop) reconstruction: p_j = (accept_j + sum_{alias_i = j} (1 - accept_i)) / d."""
    out = np.zeros(tables.accept.shape[0])
    for v in range(indptr.shape[0] - 1):
        s, e = int(indptr[v]), int(indptr[v + 1])
        d = e - s
        for i in range(d):
            out[s + i] += tables.accept[s + i] / d
            out[s + int(tables.alias[s + i])] += (1.0 - tables.accept[s + i]) / d
    return out


def _rows(weights_per_row):
    """CSR (indptr, indices, prob) of a graph whose row r has the given weights (dst = col)."""
    deg = np.array([len(w) for w in weights_per_row])
    indptr = np.concatenate(([0], np.cumsum(deg))).astype(np.int64)
    indices = np.concatenate([np.arange(d) for d in deg]).astype(np.int32)
    weights = np.concatenate([np.asarray(w, dtype=np.float64) for w in weights_per_row])
    return indptr, indices, row_normalise(indptr, weights)


def _special_rows(rng):
    return [
        [2.5],  # degree 1
        [],  # dangling
        [1.0, 1.0, 1.0, 1.0],  # uniform
        [1, 1, 3, 3],  # exact ties between prefix sums of excess and deficit
        [1, 2, 3, 1, 2, 3, 1, 2, 3, 9],  # integer weights
        [1e-9, 1.0, 1e-9, 5e-10],  # extreme skew
        [0.0, 2.0, 0.0, 1.0, 0.0],  # zero-probability edges
        rng.lognormal(0.0, 2.0, size=37),
        rng.pareto(1.1, size=500) + 1e-3,  # hub of degree 500, heavy tail
        rng.random(500),  # hub of degree 500, mild
    ]


def _check_tables(indptr, prob, tables):
    deg = np.diff(indptr)
    assert tables.accept.dtype == np.float64 and tables.alias.dtype == np.int32
    assert tables.accept.shape == prob.shape == tables.alias.shape
    assert (tables.accept >= 0.0).all() and (tables.accept <= 1.0).all()
    row_deg = np.repeat(deg, deg)
    assert (tables.alias >= 0).all() and (tables.alias < row_deg).all()  # local offsets


@pytest.mark.parametrize("builder", [build_alias_tables, build_alias_tables_reference])
def test_implied_distribution_is_exact_on_special_rows(builder):
    rng = np.random.default_rng(0)
    indptr, _, prob = _rows(_special_rows(rng))
    tables = builder(indptr, prob)
    _check_tables(indptr, prob, tables)
    np.testing.assert_allclose(_implied_loop(indptr, tables), prob, rtol=0, atol=1e-12)
    np.testing.assert_allclose(implied_distribution(indptr, tables), prob, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_and_reference_reconstruct_prob_on_random_graphs(seed):
    indptr, _, prob, _ = random_weighted_graph(300, seed)
    fast = build_alias_tables(indptr, prob)
    ref = build_alias_tables_reference(indptr, prob)
    for tables in (fast, ref):
        _check_tables(indptr, prob, tables)
        np.testing.assert_allclose(implied_distribution(indptr, tables), prob, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        implied_distribution(indptr, fast), implied_distribution(indptr, ref), rtol=0, atol=1e-12
    )


def test_many_random_rows_with_hubs_and_ties():
    rng = np.random.default_rng(1)
    n = 3000
    deg = rng.integers(0, 12, n)
    deg[rng.choice(n, 5, replace=False)] = rng.integers(300, 2000, 5)
    src = np.repeat(np.arange(n), deg)
    dst = np.concatenate([rng.choice(n, d, replace=False) for d in deg])
    w = np.where(
        rng.random(src.size) < 0.5, rng.integers(1, 4, src.size), rng.lognormal(0, 2, src.size)
    )
    indptr, _, prob, _ = csr_from_edges(n, src, dst, w)
    tables = build_alias_tables(indptr, prob)
    _check_tables(indptr, prob, tables)
    np.testing.assert_allclose(implied_distribution(indptr, tables), prob, rtol=0, atol=1e-12)


def test_near_uniform_rows_with_ulp_noise():
    """q = 1 +- a few ulp: many heavies with ~0 excess and lights with ~0 deficit (ties in the
    vectorised merge keys)."""
    rng = np.random.default_rng(2)
    for trial in range(40):
        deg = rng.integers(0, 40, size=int(rng.integers(1, 200)))
        indptr = np.concatenate(([0], np.cumsum(deg))).astype(np.int64)
        nnz = int(indptr[-1])
        if trial % 2:
            w = 1.0 + rng.integers(-3, 4, size=nnz) * 2.0**-52
        else:
            w = np.where(rng.random(nnz) < 0.1, 1.0 + 1e-13 * rng.random(nnz), 1.0)
        prob = row_normalise(indptr, w)
        tables = build_alias_tables(indptr, prob)
        _check_tables(indptr, prob, tables)
        np.testing.assert_allclose(implied_distribution(indptr, tables), prob, rtol=0, atol=1e-12)


def test_segmented_cumsum_error_is_relative_to_the_segment():
    from udfs.alias_table import _segmented_cumsum

    big = np.full(100_000, 1000.1)  # running total 1e8 before the small segment
    small = np.array([0.1, 0.2, 0.3, 1e-9])
    x = np.concatenate((big, small, big[:10]))
    starts = np.array([0, big.size, big.size + small.size])
    cs = _segmented_cumsum(x, starts)
    np.testing.assert_allclose(cs[big.size : big.size + small.size], np.cumsum(small), rtol=1e-14)
    np.testing.assert_allclose(cs[-10:], np.cumsum(big[:10]), rtol=1e-14)
    np.testing.assert_allclose(cs[: big.size], np.cumsum(big), rtol=1e-12)


def test_unnormalised_rows_are_renormalised():
    indptr, _, prob = _rows([[1.0, 3.0], [2.0, 2.0, 4.0]])
    tables = build_alias_tables(indptr, prob * 7.0)
    np.testing.assert_allclose(implied_distribution(indptr, tables), prob, rtol=0, atol=1e-12)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        build_alias_tables(np.array([0, 2]), np.array([0.5, -0.5]))
    with pytest.raises(ValueError):
        build_alias_tables(np.array([0, 3]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError):
        build_alias_tables(np.array([0, 2]), np.array([0.0, 0.0]))


# -- chi-square of sample_next -------------------------------------------------------------
#
# scipy is not available, so the critical value of chi^2 with k degrees of freedom at upper tail
# p = 1e-5 uses the Wilson-Hilferty cube approximation
#     chi2_{1-p}(k) ~= k * (1 - 2/(9k) + z * sqrt(2/(9k)))**3,   z = z_{1-1e-5} = 4.2649,
# accurate to ~1% for k >= 3 and conservative (too large) for small k; for k = 1 the exact value
# z_{1-p/2}**2 = 4.4172**2 = 19.51 is used.  A false alarm has probability ~1e-5 per row (and
# the draws are seeded, so the test is deterministic anyway).
_Z = 4.2649


def _chi2_critical(dof: int) -> float:
    if dof == 1:
        return 4.4172**2
    c = 2.0 / (9.0 * dof)
    return dof * (1.0 - c + _Z * math.sqrt(c)) ** 3


def _chi2(counts: np.ndarray, expected: np.ndarray) -> tuple[float, int]:
    """Pearson statistic after pooling the cells with expected count < 5 into one cell."""
    small = expected < 5.0
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    return float(((obs - exp) ** 2 / exp).sum()), int(obs.shape[0] - 1)


def _sample_row_counts(tables, indptr, indices, row, draws, rng, dtype=np.float64):
    nodes = np.full(draws, row, dtype=np.int64)
    nxt = sample_next(
        tables,
        indptr,
        indices,
        nodes,
        rng.random(draws, dtype=dtype),
        rng.random(draws, dtype=dtype),
    )
    s, e = int(indptr[row]), int(indptr[row + 1])
    assert ((nxt >= 0) & (nxt < e - s)).all()  # dst == local column in _rows graphs
    return np.bincount(nxt, minlength=e - s)


@pytest.mark.parametrize("builder", [build_alias_tables, build_alias_tables_reference])
def test_samples_follow_prob_chi_square(builder):
    rng = np.random.default_rng(42)
    indptr, indices, prob = _rows(_special_rows(np.random.default_rng(0)))
    tables = builder(indptr, prob)
    draws = 200_000
    for row in range(indptr.shape[0] - 1):
        s, e = int(indptr[row]), int(indptr[row + 1])
        if e == s:
            continue
        counts = _sample_row_counts(tables, indptr, indices, row, draws, rng)
        expected = prob[s:e] * draws
        if e - s == 1:
            assert counts[0] == draws
            continue
        assert (counts[expected == 0] == 0).all()  # zero-probability edges are never taken
        stat, dof = _chi2(counts, expected)
        if dof >= 1:
            assert stat < _chi2_critical(dof), (row, e - s, stat, dof)


def test_samples_with_float32_uniforms_chi_square():
    rng = np.random.default_rng(5)
    indptr, indices, prob = _rows([rng.lognormal(0, 1, 500), [1.0, 2.0, 3.0]])
    tables = build_alias_tables(indptr, prob)
    for row in (0, 1):
        s, e = int(indptr[row]), int(indptr[row + 1])
        counts = _sample_row_counts(tables, indptr, indices, row, 200_000, rng, np.float32)
        stat, dof = _chi2(counts, prob[s:e] * 200_000)
        assert stat < _chi2_critical(dof)


def test_chi_square_detects_a_corrupted_table():
    """Power check of the test above: plausible table bugs are detected at 200k draws."""
    rng = np.random.default_rng(3)
    indptr, indices, prob = _rows([rng.random(500)])
    tables = build_alias_tables(indptr, prob)
    off_by_one = AliasTables(tables.accept, ((tables.alias + 1) % 500).astype(np.int32))
    accept = tables.accept.copy()
    cols = np.flatnonzero(accept < 0.9)[:50]
    accept[cols] = np.minimum(accept[cols] + 0.1, 1.0)  # 50 columns keep 10% too often
    biased = AliasTables(accept, tables.alias)
    for bad in (off_by_one, biased):
        counts = _sample_row_counts(bad, indptr, indices, 0, 200_000, rng)
        stat, dof = _chi2(counts, prob * 200_000)
        assert stat > _chi2_critical(dof)


def test_sample_next_dangling_and_edge_uniforms():
    indptr, indices, prob = _rows([[1.0, 3.0], [], [2.0]])
    tables = build_alias_tables(indptr, prob)
    nodes = np.array([0, 1, 2, 0, 0])
    one_minus = np.nextafter(np.float32(1.0), np.float32(0.0))
    u_col = np.array([0.0, 0.5, 0.9, one_minus, one_minus], dtype=np.float32)
    u_acc = np.array([0.0, 0.5, 0.9, 0.0, one_minus], dtype=np.float32)
    out = sample_next(tables, indptr, indices, nodes, u_col, u_acc)
    assert out.dtype == np.int32
    assert out[1] == -1 and out[2] == 0
    assert out[0] in (0, 1) and out[3] in (0, 1) and out[4] in (0, 1)
    empty = _rows([[], []])
    out = sample_next(
        build_alias_tables(empty[0], empty[2]), empty[0], empty[1], [0, 1], [0.1, 0.2], [0.3, 0.4]
    )
    np.testing.assert_array_equal(out, [-1, -1])
