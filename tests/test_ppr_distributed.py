"""Distributed (join-based) PPR: convergence to networkx's exact PPR for both estimators,
determinism, hub salting, and exact agreement of the per-step and doubling methods."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from pipelines.config import PprConfig
from pipelines.errors import ConfigError
from pipelines.ppr.distributed import index_bits, ppr_distributed
from tests.graph_fixtures import csr_from_edges, random_weighted_graph, to_networkx

pytestmark = pytest.mark.spark

ALPHA = 0.3
N = 150
GRAPH_SEED = 3
SEED = 7
N_SOURCES = 20
WALKS = (1000, 4000, 8000)


# --------------------------------------------------------------------------- helpers


def exact_ppr(g: nx.DiGraph, source: int, alpha: float = ALPHA) -> np.ndarray:
    """networkx PPR with restart probability ``alpha`` (networkx's damping is 1 - alpha);
    dangling mass goes back to the personalization vector (networkx's default)."""
    kwargs = dict(
        alpha=1.0 - alpha,
        personalization={int(source): 1.0},
        weight="weight",
        tol=1e-12,
        max_iter=1000,
    )
    try:
        pr = nx.pagerank(g, **kwargs)
    except ImportError:  # nx.pagerank needs scipy; the same algorithm in pure Python
        from networkx.algorithms.link_analysis.pagerank_alg import _pagerank_python

        pr = _pagerank_python(g, **kwargs)
    out = np.zeros(g.number_of_nodes())
    out[list(pr)] = list(pr.values())
    return out


def edges_df(spark, indptr, indices, prob, weights):
    """A graph_edges DataFrame (src, dst, weight, count, prob) of a CSR graph."""
    n = indptr.shape[0] - 1
    src = np.repeat(np.arange(n), np.diff(indptr))
    rows = [
        (int(s), int(d), float(w), 1, float(p))
        for s, d, w, p in zip(src, indices, weights, prob, strict=True)
    ]
    return spark.createDataFrame(
        rows, "src int, dst int, weight double, count long, prob double"
    ).localCheckpoint()


def sources_df(spark, sources):
    return spark.createDataFrame([(int(s),) for s in sources], "src int").localCheckpoint()


def collect(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def dense(rows: list[tuple], sources, n: int) -> np.ndarray:
    """(len(sources), n) estimates; the source's own score is 1 - the rest (scores of a
    source sum to 1 over all visited nodes, the source included, and top_k >= n here)."""
    at = {s: i for i, s in enumerate(sources)}
    out = np.zeros((len(sources), n))
    for s, d, score, _ in rows:
        out[at[s], d] = score
    for s, i in at.items():
        out[i, s] = 1.0 - out[i].sum()
    return out


def cfg_for(walks: int, estimator: str, **kw) -> PprConfig:
    kw.setdefault("top_k", N)
    kw.setdefault("max_steps", 200)
    return PprConfig(alpha=ALPHA, walks_per_node=walks, estimator=estimator, **kw)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def graph(spark):
    indptr, indices, prob, weights = random_weighted_graph(N, GRAPH_SEED)
    g = to_networkx(indptr, indices, weights)
    deg = np.diff(indptr)
    # ~20 sources spread over the components, every one with out-edges.
    sources = [int(v) for v in np.flatnonzero(deg > 0)[:: max(1, (deg > 0).sum() // N_SOURCES)]]
    sources = sources[:N_SOURCES]
    exact = np.stack([exact_ppr(g, s) for s in sources])
    return {
        "g": g,
        "deg": deg,
        "sources": sources,
        "exact": exact,
        "edges": edges_df(spark, indptr, indices, prob, weights),
        "sources_df": sources_df(spark, sources),
    }


@pytest.fixture(scope="module")
def runs(spark, graph):
    """Results of the default method for both estimators at 1k, 4k and 8k walks, seed 7."""
    out = {}
    for est in ("visits", "endpoint"):
        for w in WALKS:
            df, stats = ppr_distributed(
                spark, graph["edges"], graph["sources_df"], cfg_for(w, est), SEED
            )
            out[est, w] = (collect(df), stats)
    return out


def l1_per_source(rows, graph) -> np.ndarray:
    est = dense(rows, graph["sources"], N)
    return np.abs(est - graph["exact"]).sum(axis=1)


# --------------------------------------------------------------------------- tests


def test_fixture_graph_has_hubs_dangling_nodes_cycles_and_components(graph):
    g, deg = graph["g"], graph["deg"]
    assert (deg == 0).sum() >= 10
    assert deg.max() >= 30
    assert nx.number_weakly_connected_components(g) >= 3
    assert max(len(c) for c in nx.strongly_connected_components(g)) >= 50
    assert len(graph["sources"]) == N_SOURCES


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_l1_error_at_4000_walks_within_the_monte_carlo_bound(graph, runs, estimator):
    """E|p^_v - p_v| <= sd(p^_v) and Var(p^_v) <~ p_v / W (one walk's visits to v have mean
    p_v / alpha and second moment <~ p_v / alpha**2; end points are multinomial over the
    coin-ended walks), so E L1 <= sum_v sqrt(p_v / W) <= sqrt(support / W) (Cauchy-Schwarz).
    The test holds the mean L1 to the tighter sum_v sqrt(p_v / W) (x2 for the end-point
    estimator, which keeps only the coin-ended walks, ~half of them here) and checks that the
    bound rejects the PPR of a different alpha."""
    w = 4000
    rows, stats = runs[estimator, w]
    l1 = l1_per_source(rows, graph)
    exact = graph["exact"]
    factor = 1.0 if estimator == "visits" else 2.0
    bound = factor * np.sqrt(exact / w).sum(axis=1)
    support = (exact > 1e-12).sum(axis=1)
    print(estimator, "mean L1", l1.mean(), "bound", bound.mean(), "sqrt(support/W)",
          np.sqrt(support / w).mean())  # fmt: skip
    assert l1.mean() <= bound.mean()
    # The bound has power: the exact PPR of alpha = 0.1 is far outside it.
    other = np.stack([exact_ppr(graph["g"], s, alpha=0.1) for s in graph["sources"]])
    assert np.abs(dense(rows, graph["sources"], N) - other).sum(axis=1).mean() > 2 * bound.mean()
    assert stats["walks"] == N_SOURCES * w and stats["steps"] > 0


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_l1_error_shrinks_with_more_walks(graph, runs, estimator):
    """8x the walks: the error shrinks by sqrt(8) ~ 2.8 in expectation; ask for >= 2."""
    l1_1k = l1_per_source(runs[estimator, 1000][0], graph).mean()
    l1_8k = l1_per_source(runs[estimator, 8000][0], graph).mean()
    print(estimator, "L1 1k", l1_1k, "8k", l1_8k, "ratio", l1_1k / l1_8k)
    assert l1_1k / l1_8k >= 2.0


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_top10_overlap_at_8000_walks(graph, runs, estimator):
    """At 8k walks the score noise sqrt(p / W) is ~1e-3 at p ~ 0.01, below most gaps between
    neighbouring true scores around rank 10.  A returned top-10 node counts as a hit when its
    true score reaches the 10th largest (ties at rank 10 make either node right)."""
    rows = runs[estimator, 8000][0]
    exact = graph["exact"]
    overlaps = []
    for i, s in enumerate(graph["sources"]):
        true = exact[i].copy()
        true[s] = 0.0
        if (true > 1e-12).sum() < 10:
            continue
        tenth = np.sort(true)[-10]
        top = [d for src, d, _, rank in rows if src == s and rank <= 10]
        overlaps.append(sum(true[d] >= tenth - 1e-12 for d in top) / 10)
    print(estimator, "overlaps", overlaps)
    assert len(overlaps) >= 10
    assert np.mean(overlaps) >= 0.9
    assert min(overlaps) >= 0.7


def test_output_contract(graph, runs):
    rows, stats = runs["visits", 1000]
    by_src: dict[int, list[tuple]] = {}
    for r in rows:
        by_src.setdefault(r[0], []).append(r)
    assert set(by_src) <= set(graph["sources"])
    for s, rs in by_src.items():
        rs.sort(key=lambda r: r[3])
        assert [r[3] for r in rs] == list(range(1, len(rs) + 1))
        assert all(r[1] != s for r in rs)  # the source itself is excluded
        keys = [(-r[2], r[1]) for r in rs]
        assert keys == sorted(keys)  # score desc, then dst asc
        assert 0.0 < sum(r[2] for r in rs) < 1.0  # the source's own mass is left out
    assert stats["strategy"] == "distributed" and stats["method"] == "steps"
    assert stats["joins"] >= stats["rounds"] - 1 >= 10
    # Timings are reported (run_report prints them), not asserted.
    assert {"seconds", "walk_seconds", "steps_per_second"} <= stats.keys()


def test_same_seed_same_table_even_with_other_partitioning_different_seed_differs(
    spark, graph, runs
):
    cfg = cfg_for(1000, "visits")
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "3")
    try:
        again, _ = ppr_distributed(spark, graph["edges"], graph["sources_df"], cfg, SEED)
        again = collect(again)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)
    assert again == runs["visits", 1000][0]
    other, _ = ppr_distributed(spark, graph["edges"], graph["sources_df"], cfg, SEED + 1)
    other = collect(other)
    assert other != again
    assert {(s, d) for s, d, _, _ in other} & {(s, d) for s, d, _, _ in again}


@pytest.mark.parametrize("estimator", ["visits", "endpoint"])
def test_doubling_reads_the_same_cells_as_steps(spark, graph, estimator):
    """Walk r of s reads cell (node_t, r XOR t) in both methods, so their tables are
    identical.  max_steps = 12 (not a power of two) exercises truncation and two stitches."""
    cfg = cfg_for(100, estimator, max_steps=12, top_k=10)
    a, sa = ppr_distributed(spark, graph["edges"], graph["sources_df"], cfg, SEED, method="steps")
    b, sb = ppr_distributed(
        spark, graph["edges"], graph["sources_df"], cfg, SEED, method="doubling"
    )
    a, b = collect(a), collect(b)
    assert a == b and len(a) > 0
    assert max(r[3] for r in a) == 10
    assert sa["steps"] == sb["steps"] > 0
    assert sa["live_per_step"][-1] > 0  # some walks were cut at max_steps
    assert sb["levels"] == 3 and sb["stitches"] == 2  # 12 = 8 + 4
    assert sb["rounds"] < sa["rounds"]
    g = graph["g"]
    in_graph = sum(1 for v in g if g.degree(v) > 0)
    assert sb["cells"] == in_graph * 2 ** index_bits(100, 12)


# --------------------------------------------------------------------------- hubs


@pytest.fixture(scope="module")
def star(spark):
    """Hub 0 <-> leaves 1..L (weighted), plus a few leaf -> leaf edges and dangling leaves."""
    leaves = 40
    rng = np.random.default_rng(5)
    src = [0] * leaves + list(range(1, leaves + 1 - 4)) + [1, 2, 3]
    dst = list(range(1, leaves + 1)) + [0] * (leaves - 4) + [2, 3, 4]
    w = np.concatenate([rng.lognormal(size=leaves), np.ones(leaves - 4), [0.5, 0.5, 0.5]])
    n = leaves + 1
    indptr, indices, prob, weights = csr_from_edges(n, np.array(src), np.array(dst), w)
    g = to_networkx(indptr, indices, weights)
    sources = list(range(1, leaves + 1))
    return {
        "n": n,
        "g": g,
        "sources": sources,
        "edges": edges_df(spark, indptr, indices, prob, weights),
        "sources_df": sources_df(spark, sources),
    }


def test_salting_a_hub_changes_nothing_but_the_plan(spark, star):
    """40 sources x 500 walks: ~0.7 * 20k walkers reach the hub at step 1, far above the
    threshold of 1000, so its alias rows are replicated over 4 salts.  The result must be
    identical to the unsalted run (salting only moves work between tasks), identical again
    with the doubling method (whose segment joins salt the hub too), and close to networkx."""
    cfg = PprConfig(alpha=ALPHA, walks_per_node=500, top_k=star["n"], max_steps=200)
    args = (spark, star["edges"], star["sources_df"], cfg, SEED)
    salted, s1 = ppr_distributed(*args, salt_threshold=1000, salts=4, method="steps")
    plain, s2 = ppr_distributed(*args, salt_threshold=10**9, salts=4, method="steps")
    dbl, s3 = ppr_distributed(*args, salt_threshold=1000, salts=4, method="doubling")
    salted, plain, dbl = collect(salted), collect(plain), collect(dbl)
    assert s1["salted_joins"] >= 1 and 0 in s1["salted_nodes"]
    assert s1["hot_per_step"][1] >= 1  # the hub is hot after the first step
    assert s2["salted_joins"] == 0 and s2["n_salted_nodes"] == 0
    assert s3["salted_joins"] >= 1 and 0 in s3["salted_nodes"]
    assert salted == plain == dbl
    est = dense(salted, star["sources"], star["n"])
    exact = np.stack([exact_ppr(star["g"], s) for s in star["sources"]])
    l1 = np.abs(est - exact).sum(axis=1)
    bound = np.sqrt(exact / 500).sum(axis=1)
    assert l1.mean() <= bound.mean()


def test_invalid_arguments_are_rejected(spark, graph):
    e, s = graph["edges"], graph["sources_df"]
    with pytest.raises(ConfigError, match="ppr.alpha"):
        ppr_distributed(spark, e, s, PprConfig(alpha=0.0), SEED)
    with pytest.raises(ConfigError, match="ppr.estimator"):
        ppr_distributed(spark, e, s, PprConfig(estimator="mean"), SEED)
    with pytest.raises(ValueError, match="method"):
        ppr_distributed(spark, e, s, PprConfig(), SEED, method="magic")
    with pytest.raises(ValueError, match="salt"):
        ppr_distributed(spark, e, s, PprConfig(), SEED, salts=0)
