"""Compiled walk + top-k kernel: identical to its plain-Python reference, converges to
networkx's exact PPR, agrees statistically with the numpy reference kernel, and gives a
source the same rows whatever batch it is in."""

from __future__ import annotations

import numpy as np
import pytest

from tests.graph_fixtures import csr_from_edges, random_weighted_graph, to_networkx
from tests.unit.test_walk_batch import _l1_bound, dense_scores, exact_ppr
from udfs.alias_table import build_alias_tables
from udfs.topk import top_k_per_source
from udfs.walk_batch import ppr_walk_batch
from udfs.walk_numba import ppr_topk, ppr_topk_reference

ALPHA = 0.3
N = 200
DEFAULT_WALKS = 2000  # PprConfig.walks_per_node


@pytest.fixture(scope="module", params=[11, 12])
def graph(request):
    indptr, indices, prob, weights = random_weighted_graph(N, request.param)
    g = to_networkx(indptr, indices, weights)
    sources = np.arange(0, N, 5, dtype=np.int32)  # hubs, dangling nodes, small components
    return {
        "indptr": indptr,
        "indices": indices,
        "tables": build_alias_tables(indptr, prob),
        "sources": sources,
        "exact": np.stack([exact_ppr(g, s, ALPHA) for s in sources]),
    }


def _full(graph, walks, seed=1, sources=None, **kw):
    """Every visited node of every source, the source included (k = n)."""
    src = graph["sources"] if sources is None else sources
    args = (graph["indptr"], graph["indices"], graph["tables"])
    return ppr_topk(src, walks, ALPHA, *args, seed, k=N, exclude_self=False, **kw)


def _rows(res) -> list[tuple]:
    return list(
        zip(res.src.tolist(), res.dst.tolist(), res.score.tolist(), res.rank.tolist(), strict=True)
    )


@pytest.mark.parametrize(
    ("estimator", "k", "exclude_self", "max_steps"),
    [("visits", 10, True, 200), ("visits", N, False, 3), ("endpoint", 7, True, 200)],
)
def test_identical_to_the_plain_python_reference(graph, estimator, k, exclude_self, max_steps):
    args = (graph["sources"], 300, ALPHA, graph["indptr"], graph["indices"], graph["tables"], 5)
    kw = dict(k=k, estimator=estimator, max_steps=max_steps, exclude_self=exclude_self)
    fast, ref = ppr_topk(*args, **kw), ppr_topk_reference(*args, **kw)
    assert _rows(fast) == _rows(ref)
    assert (fast.steps, fast.walks) == (ref.steps, ref.walks)
    assert fast.steps > 0 and len(fast.src) > len(graph["sources"])


def test_topk_contract(graph):
    res = ppr_topk(
        graph["sources"], 500, ALPHA, graph["indptr"], graph["indices"], graph["tables"], 2, k=5
    )
    assert (res.src != res.dst).all()  # the source is excluded from its own ranking
    key = res.src.astype(np.int64) * 100 + res.rank
    assert (np.diff(key) > 0).all()  # sorted by (src, rank)
    for s in np.unique(res.src):
        mine = res.src == s
        np.testing.assert_array_equal(res.rank[mine], np.arange(1, mine.sum() + 1))
        assert mine.sum() <= 5 and (np.diff(res.score[mine]) <= 0).all()
    # The same rows as the full distribution cut by udfs.topk (score desc, dst asc).
    full = _full(graph, 500, seed=2)
    want = top_k_per_source(full.src, full.dst, full.score, 5)
    for got, exp in zip((res.src, res.dst, res.score, res.rank), want, strict=True):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_converges_to_exact_ppr(graph, estimator):
    errs = {}
    for walks in (1000, 16000):
        est = dense_scores(_full(graph, walks, estimator=estimator), graph["sources"], N)
        errs[walks] = float(np.abs(est - graph["exact"]).sum(axis=1).mean())
    assert errs[16000] < errs[1000] / 2.5, errs  # Monte-Carlo error ~ 1 / sqrt(walks)
    assert errs[16000] < _l1_bound(graph["exact"], 16000, ALPHA).mean(), errs


def test_top10_overlap_with_exact_at_the_default_walk_count(graph):
    res = ppr_topk(
        graph["sources"],
        DEFAULT_WALKS,
        ALPHA,
        graph["indptr"],
        graph["indices"],
        graph["tables"],
        3,
        k=10,
    )
    overlaps = []
    for i, s in enumerate(graph["sources"]):
        exact = graph["exact"][i].copy()
        exact[s] = -1.0
        if (exact > 1e-10).sum() < 10:  # fewer than 10 reachable nodes besides the source
            continue
        top_exact = set(np.lexsort((np.arange(N), -exact))[:10].tolist())
        overlaps.append(len(top_exact & set(res.dst[res.src == s].tolist())) / 10)
    assert len(overlaps) >= 10
    assert np.mean(overlaps) >= 0.9, overlaps


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_agrees_statistically_with_the_numpy_kernel(graph, estimator):
    walks = 4000
    a = dense_scores(_full(graph, walks, seed=4, estimator=estimator), graph["sources"], N)
    ref = ppr_walk_batch(
        graph["sources"],
        walks,
        ALPHA,
        graph["indptr"],
        graph["indices"],
        graph["tables"],
        4,
        estimator=estimator,
    )
    b = dense_scores(ref, graph["sources"], N)
    bound = np.sqrt(2.0) * _l1_bound(graph["exact"], walks, ALPHA).mean()
    assert np.abs(a - b).sum(axis=1).mean() < bound
    fast = _full(graph, walks, seed=4, estimator=estimator)
    assert abs(fast.steps - ref.steps) < 0.03 * ref.steps


def test_a_source_gets_the_same_rows_in_any_batch(graph):
    whole = _full(graph, 400, seed=9)
    for part in (graph["sources"][:7], graph["sources"][7:][::-1], graph["sources"][20:21]):
        got = _full(graph, 400, seed=9, sources=part)
        mine = np.isin(whole.src, part)
        for name in ("src", "dst", "score", "rank"):
            np.testing.assert_array_equal(getattr(got, name), getattr(whole, name)[mine])
    other = _full(graph, 400, seed=10)
    assert len(other.score) != len(whole.score) or not np.array_equal(other.score, whole.score)


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_dangling_star_matches_networkx(estimator):
    """Hub -> 300 dangling leaves, small alpha: most walks end at a leaf; networkx sends the
    dangling mass back to the source, so score(hub) = 1 / (2 - alpha)."""
    leaves, alpha, walks = 300, 0.05, 40_000
    rng = np.random.default_rng(0)
    indptr, indices, prob, w = csr_from_edges(
        leaves + 1, np.zeros(leaves, np.int64), np.arange(1, leaves + 1), rng.random(leaves) + 0.1
    )
    tables = build_alias_tables(indptr, prob)
    res = ppr_topk(
        [0, 5], walks, alpha, indptr, indices, tables, 1, leaves + 1, estimator, exclude_self=False
    )
    est = dense_scores(res, [0, 5], leaves + 1)
    exact = exact_ppr(to_networkx(indptr, indices, w), 0, alpha)
    assert abs(est[0, 0] - 1.0 / (2.0 - alpha)) < 0.01
    assert np.abs(est[0] - exact).sum() < _l1_bound(exact[None, :], walks, alpha)[0]
    np.testing.assert_array_equal(est[1, 5], 1.0)  # a dangling source: only itself


def test_truncation_and_bad_arguments():
    n = 3
    src = np.arange(n)
    indptr, indices, prob, _ = csr_from_edges(n, src, (src + 1) % n, np.ones(n))
    tables = build_alias_tables(indptr, prob)
    args = (indptr, indices, tables)
    cut = ppr_topk([0], 100_000, 0.2, *args, 9, k=3, max_steps=2, exclude_self=False)
    q = 0.8  # visits 0, 1, 2 with weights 1, q, q^2 when walks stop after two moves
    np.testing.assert_allclose(cut.score, np.array([1.0, q, q * q]) / (1 + q + q * q), atol=0.005)
    for bad in (
        dict(sources=[1, 1]),
        dict(alpha=0.0),
        dict(alpha=1.0),  # the config's open interval
        dict(max_steps=0),
        dict(k=0),
        dict(estimator="median"),
        dict(sources=[3]),
        dict(walks_per_source=0),
        dict(seed=-1),
        dict(k=-1),
    ):
        kw = {**dict(sources=[1], walks_per_source=10, alpha=0.3, seed=0, k=3), **bad}
        with pytest.raises(ValueError):
            ppr_topk(indptr=indptr, indices=indices, tables=tables, **kw)
