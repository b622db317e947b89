"""Monte-Carlo PPR walk kernel: convergence to networkx's exact PPR, determinism, counting
paths, truncation and dangling semantics, agreement with the plain-Python reference."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import udfs.walk_batch as wb
from tests.graph_fixtures import csr_from_edges, random_weighted_graph, to_networkx
from udfs.alias_table import build_alias_tables
from udfs.walk_batch import WalkResult, ppr_walk_batch, prepare_walk_graph
from udfs.walk_reference import ppr_walk_batch_reference

ALPHA = 0.3
N = 200


def exact_ppr(g: nx.DiGraph, source: int, alpha: float) -> np.ndarray:
    """networkx PPR with restart probability ``alpha`` (networkx's damping is 1 - alpha);
    dangling mass goes back to the personalization vector (networkx default)."""
    kwargs = dict(
        alpha=1.0 - alpha,
        personalization={int(source): 1.0},
        weight="weight",
        tol=1e-12,
        max_iter=1000,
    )
    try:
        pr = nx.pagerank(g, **kwargs)
    except ImportError:  # nx.pagerank needs scipy; same algorithm in pure Python
        from networkx.algorithms.link_analysis.pagerank_alg import _pagerank_python

        pr = _pagerank_python(g, **kwargs)
    out = np.zeros(g.number_of_nodes())
    out[list(pr)] = list(pr.values())
    return out


def dense_scores(res: WalkResult, sources, n: int) -> np.ndarray:
    """(len(sources), n) matrix of the COO estimates."""
    row = {int(s): i for i, s in enumerate(sources)}
    out = np.zeros((len(sources), n))
    out[[row[int(s)] for s in res.src], res.dst] = res.score
    return out


def test_fixture_graph_has_the_advertised_structure():
    indptr, indices, prob, weights = random_weighted_graph(N, 11)
    g = to_networkx(indptr, indices, weights)
    deg = np.diff(indptr)
    assert (deg == 0).sum() >= 10  # dangling nodes
    assert deg.max() >= 30 and np.bincount(indices).max() >= 20  # out- and in-hubs
    assert nx.number_weakly_connected_components(g) >= 3  # disconnected parts
    assert max(len(c) for c in nx.strongly_connected_components(g)) >= 50  # cycles
    assert nx.number_of_selfloops(g) == 0 and g.number_of_edges() == indices.shape[0]
    np.testing.assert_allclose(np.add.reduceat(prob, indptr[:-1][deg > 0]), 1.0, atol=1e-12)


@pytest.fixture(scope="module", params=[11, 12])
def graph(request):
    indptr, indices, prob, weights = random_weighted_graph(N, request.param)
    g = to_networkx(indptr, indices, weights)
    tables = build_alias_tables(indptr, prob)
    sources = np.arange(0, N, 5, dtype=np.int32)  # 40 sources: hubs, dangling, small parts
    exact = np.stack([exact_ppr(g, s, ALPHA) for s in sources])
    return {
        "indptr": indptr,
        "indices": indices,
        "tables": tables,
        "prepared": prepare_walk_graph(indptr, indices, tables),
        "sources": sources,
        "exact": exact,
    }


def _run(graph, walks, seed=1, **kw):
    return ppr_walk_batch(
        graph["sources"],
        walks,
        ALPHA,
        graph["indptr"],
        graph["indices"],
        graph["tables"],
        seed,
        **kw,
    )


def _l1_bound(exact: np.ndarray, walks: int, alpha: float) -> np.ndarray:
    """Per source: sum_v sqrt(p_v (1 - p_v) / N) with N = alpha * walks.

    For an empirical distribution of N iid draws, E|p_hat_v - p_v| <= sqrt(p_v (1 - p_v) / N)
    (Jensen), and summing gives E[L1] <= sum_v sqrt(p_v (1 - p_v) / N) <= sqrt(support / N).
    The end-point estimator keeps the coin-terminated walks, at least a fraction alpha of them
    (the very first coin ends a walk with probability alpha), so N >= alpha * walks up to
    fluctuations.  The complete-path (visits) estimator has lower variance than the end-point
    one (Avrachenkov et al. 2007, "Monte Carlo methods in PageRank computation"), so the same
    bound is used for it.
    """
    p = np.clip(exact, 0.0, 1.0)
    return np.sqrt(p * (1.0 - p) / (alpha * walks)).sum(axis=1)


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_converges_to_exact_ppr(graph, estimator):
    errs = {}
    for walks in (1000, 16000):
        res = _run(graph, walks, estimator=estimator, prepared=graph["prepared"])
        est = dense_scores(res, graph["sources"], N)
        errs[walks] = float(np.abs(est - graph["exact"]).sum(axis=1).mean())
    # Pure Monte-Carlo error shrinks like 1/sqrt(walks): x4 from 1k to 16k; a bias would not.
    assert errs[16000] < errs[1000] / 2.5, errs
    assert errs[16000] < _l1_bound(graph["exact"], 16000, ALPHA).mean(), errs


def test_top10_overlap_with_exact(graph):
    res = _run(graph, 10000, prepared=graph["prepared"])
    est = dense_scores(res, graph["sources"], N)
    overlaps = []
    for i, s in enumerate(graph["sources"]):
        exact = graph["exact"][i].copy()
        exact[s] = -1.0  # exclude the source itself on both sides
        if (exact > 1e-10).sum() < 10:  # power iteration leaves ~1e-18 on unreachable nodes
            continue
        mine = est[i].copy()
        mine[s] = -1.0
        top_exact = set(np.lexsort((np.arange(N), -exact))[:10].tolist())
        top_mine = set(np.lexsort((np.arange(N), -mine))[:10].tolist())
        overlaps.append(len(top_exact & top_mine) / 10)
    assert len(overlaps) >= 10
    assert np.mean(overlaps) >= 0.9, overlaps


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_result_contract(graph, estimator):
    res = _run(graph, 500, estimator=estimator)
    assert res.src.dtype == np.int32 and res.dst.dtype == np.int32
    assert res.score.dtype == np.float64
    assert res.walks == len(graph["sources"]) * 500
    key = res.src.astype(np.int64) * N + res.dst
    assert (np.diff(key) > 0).all()  # sorted by (src, dst), no duplicates
    assert (res.score > 0).all()
    totals = np.bincount(np.searchsorted(graph["sources"], res.src), weights=res.score)
    np.testing.assert_allclose(totals, 1.0, rtol=0, atol=1e-12)
    if estimator == "visits":  # every source lists itself
        assert set(graph["sources"].tolist()) <= set(res.src[res.src == res.dst].tolist())


def test_determinism(graph):
    a = _run(graph, 300, seed=7)
    b = _run(graph, 300, seed=7, prepared=graph["prepared"])
    shuffled = graph["sources"][::-1].copy()
    c = ppr_walk_batch(shuffled, 300, ALPHA, graph["indptr"], graph["indices"], graph["tables"], 7)
    for other in (b, c):
        for name in ("src", "dst", "score"):
            np.testing.assert_array_equal(getattr(a, name), getattr(other, name))
        assert (a.steps, a.walks) == (other.steps, other.walks)
    d = _run(graph, 300, seed=8)
    assert a.steps != d.steps or not np.array_equal(a.score, d.score)
    assert len(a.score) != len(d.score) or not np.array_equal(a.score, d.score)


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_dense_and_sparse_counting_agree_exactly(graph, monkeypatch, estimator):
    want = _run(graph, 2000, seed=3, estimator=estimator)
    monkeypatch.setattr(wb, "DENSE_MAX_BINS", 0)  # sort/unique path
    monkeypatch.setattr(wb, "KEY_BUFFER", 1000)  # many flushes and merges
    got = _run(graph, 2000, seed=3, estimator=estimator)
    for name in ("src", "dst", "score", "steps", "walks"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    monkeypatch.setattr(wb, "DENSE_MAX_BINS", 1 << 40)
    monkeypatch.setattr(wb, "KEY_BUFFER", 1 << 22)
    dense = ppr_walk_batch(  # force dense even where visits < bins
        graph["sources"][:3],
        50,
        ALPHA,
        graph["indptr"],
        graph["indices"],
        graph["tables"],
        3,
        estimator=estimator,
    )
    monkeypatch.setattr(wb, "DENSE_MAX_BINS", 0)
    sparse = ppr_walk_batch(
        graph["sources"][:3],
        50,
        ALPHA,
        graph["indptr"],
        graph["indices"],
        graph["tables"],
        3,
        estimator=estimator,
    )
    for name in ("src", "dst", "score"):
        np.testing.assert_array_equal(getattr(dense, name), getattr(sparse, name))


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_reference_kernel_agrees_statistically(graph, estimator):
    sources = graph["sources"][:12]
    walks = 3000
    fast = ppr_walk_batch(
        sources,
        walks,
        ALPHA,
        graph["indptr"],
        graph["indices"],
        graph["tables"],
        5,
        estimator=estimator,
    )
    ref = ppr_walk_batch_reference(
        sources,
        walks,
        ALPHA,
        graph["indptr"],
        graph["indices"],
        graph["tables"],
        5,
        estimator=estimator,
    )
    a = dense_scores(fast, sources, N)
    b = dense_scores(ref, sources, N)
    # Two independent estimates: E|a - b| <= sqrt(2) * the single-estimate bound.
    bound = np.sqrt(2.0) * _l1_bound(graph["exact"][:12], walks, ALPHA).mean()
    assert np.abs(a - b).sum(axis=1).mean() < bound
    assert abs(fast.steps - ref.steps) < 0.05 * ref.steps
    # ... and the reference itself is right.
    assert np.abs(b - graph["exact"][:12]).sum(axis=1).mean() < bound / np.sqrt(2.0)


def _cycle(n):
    src = np.arange(n)
    return csr_from_edges(n, src, (src + 1) % n, np.ones(n))


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_truncation_at_max_steps(estimator):
    """On a directed 3-cycle with max_steps = 2, walks visit 0, 1, 2 at most once each."""
    indptr, indices, prob, _ = _cycle(3)
    tables = build_alias_tables(indptr, prob)
    alpha, walks = 0.2, 200_000
    res = ppr_walk_batch([0], walks, alpha, indptr, indices, tables, 9, estimator, max_steps=2)
    q = 1.0 - alpha
    if estimator == "visits":  # E[visits] = 1, q, q^2 (walk truncated after two moves)
        want = np.array([1.0, q, q * q]) / (1.0 + q + q * q)
    else:  # ends at 0 w.p. alpha, at 1 w.p. q alpha, truncated at 2 w.p. q^2
        want = np.array([alpha, q * alpha, q * q])
    np.testing.assert_array_equal(res.dst, [0, 1, 2])
    np.testing.assert_allclose(res.score, want, atol=0.005)
    assert abs(res.steps - walks * (q + q * q)) < 0.01 * walks


@pytest.mark.parametrize("hist_cap", [1024, 4])
def test_long_walks_on_a_cycle(monkeypatch, hist_cap):
    """Closed form on a directed 3-cycle with max_steps = 10; hist_cap = 4 exercises the
    memoryless tail draw of the walk-length layout."""
    monkeypatch.setattr(wb, "_HIST_CAP", hist_cap)
    indptr, indices, prob, _ = _cycle(3)
    tables = build_alias_tables(indptr, prob)
    alpha, walks, max_steps = 0.1, 100_000, 10
    q = (1.0 - alpha) ** np.arange(max_steps + 1)  # P(the walk makes >= t moves)
    res = ppr_walk_batch([0], walks, alpha, indptr, indices, tables, 4, max_steps=max_steps)
    want = np.bincount(np.arange(max_steps + 1) % 3, weights=q) / q.sum()
    np.testing.assert_allclose(res.score, want, atol=0.005)
    assert abs(res.steps - walks * q[1:].sum()) < 0.01 * walks * q[1:].sum()


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_dangling_star_matches_networkx(estimator):
    """Hub -> 300 dangling leaves with small alpha: most walkers stop at a leaf (exercises the
    sink compaction); both estimators must reproduce networkx's restart-at-source convention,
    where score(hub) = 1 / (2 - alpha)."""
    leaves = 300
    rng = np.random.default_rng(0)
    indptr, indices, prob, w = csr_from_edges(
        leaves + 1, np.zeros(leaves, np.int64), np.arange(1, leaves + 1), rng.random(leaves) + 0.1
    )
    tables = build_alias_tables(indptr, prob)
    alpha = 0.05
    res = ppr_walk_batch([0, 5], 40_000, alpha, indptr, indices, tables, 1, estimator)
    est = dense_scores(res, [0, 5], leaves + 1)
    g = to_networkx(indptr, indices, w)
    exact = np.stack([exact_ppr(g, 0, alpha), exact_ppr(g, 5, alpha)])
    assert abs(exact[0, 0] - 1.0 / (2.0 - alpha)) < 1e-9
    assert np.abs(est[0] - exact[0]).sum() < _l1_bound(exact[:1], 40_000, alpha)[0]
    np.testing.assert_allclose(est[1], exact[1], atol=1e-12)  # dangling source: only itself


def test_steps_count_moves_without_dangling():
    indptr, indices, prob, _ = random_weighted_graph(150, 3, dangling=False)
    assert (np.diff(indptr) > 0).all()
    tables = build_alias_tables(indptr, prob)
    res = ppr_walk_batch(np.arange(150), 2000, ALPHA, indptr, indices, tables, 2)
    expected = res.walks * (1.0 - ALPHA) / ALPHA  # E[moves] of a geometric walk
    assert abs(res.steps - expected) < 0.01 * expected


def test_prepared_graph_cache_follows_the_arrays():
    graphs = []
    for seed in (21, 22):
        indptr, indices, prob, _ = random_weighted_graph(60, seed)
        graphs.append((indptr, indices, build_alias_tables(indptr, prob)))
    for indptr, indices, tables in graphs + graphs:  # alternate: every call rebuilds
        got = ppr_walk_batch([0, 9], 200, ALPHA, indptr, indices, tables, 1)
        want = ppr_walk_batch(
            [0, 9],
            200,
            ALPHA,
            indptr,
            indices,
            tables,
            1,
            prepared=prepare_walk_graph(indptr, indices, tables),
        )
        np.testing.assert_array_equal(got.dst, want.dst)
        np.testing.assert_array_equal(got.score, want.score)
    cached = wb._PREPARED_CACHE[3]
    ppr_walk_batch([1], 10, ALPHA, *graphs[1], 1)
    assert wb._PREPARED_CACHE[3] is cached  # same array objects: reused


def test_empty_batch():
    indptr, indices, prob, _ = random_weighted_graph(50, 4)
    tables = build_alias_tables(indptr, prob)
    empty = ppr_walk_batch(np.array([], np.int32), 10, 0.3, indptr, indices, tables, 0)
    assert empty.src.shape == (0,) and empty.walks == 0 and empty.steps == 0


def test_rejects_bad_arguments():
    indptr, indices, prob, _ = random_weighted_graph(50, 4)
    tables = build_alias_tables(indptr, prob)
    args = (indptr, indices, tables)
    with pytest.raises(ValueError):
        ppr_walk_batch([1, 1], 10, 0.3, *args, seed=0)
    for alpha in (0.0, 1.0):  # the config's open interval
        with pytest.raises(ValueError):
            ppr_walk_batch([1], 10, alpha, *args, seed=0)
    with pytest.raises(ValueError):
        ppr_walk_batch([1], 10, 0.3, *args, seed=0, max_steps=0)
    with pytest.raises(ValueError):
        ppr_walk_batch([1], 10, 0.3, *args, seed=0, estimator="median")
    with pytest.raises(ValueError):
        ppr_walk_batch([50], 10, 0.3, *args, seed=0)
    with pytest.raises(ValueError):
        ppr_walk_batch([1], 0, 0.3, *args, seed=0)
    with pytest.raises(ValueError):
        ppr_walk_batch([1], 10, 0.3, *args, seed=-1)
