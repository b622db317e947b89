"""The ppr stage end to end on Spark: item_ppr against networkx's exact PPR of graph_edges."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import networkx as nx
import numpy as np
import polars as pl
import pytest

from pipelines import tableio
from pipelines.config import PprConfig, load_config
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from tests.pipeline_fixtures import random_events, write_events

pytestmark = pytest.mark.spark


def exact_ppr(edges, alpha: float, source: int) -> dict[int, float]:
    g = nx.DiGraph()
    g.add_weighted_edges_from(zip(edges["src"], edges["dst"], edges["weight"], strict=True))
    g.add_node(source)
    return nx.pagerank(
        g, alpha=1 - alpha, personalization={source: 1}, weight="weight", tol=1e-12, max_iter=1000
    )


@pytest.fixture(scope="module")
def graph_run(spark, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ppr")
    write_events(run_dir, random_events(11, n_users=80, n_items=60, max_len=15))
    cfg = load_config(None, ["graph.reverse_weight=0.2"])
    run_stages(run_dir, cfg, [STAGES["split"], STAGES["graph"]])
    return run_dir


DEFAULT_WALKS = PprConfig().walks_per_node


def _compare(run_dir, alpha: float, walks: int) -> tuple[float, float, float, int]:
    """(mean L1 on each source's exact top-50, mean Monte-Carlo bound of that L1, mean top-10
    overlap on sources with >= 10 reachable nodes, number of such sources)."""
    got = tableio.read_polars(run_dir, "item_ppr")
    edges = tableio.read_polars(run_dir, "graph_edges").to_dict(as_series=False)
    sources = sorted(set(got["src"].to_list()))
    assert sources == sorted(set(edges["src"]))  # ppr.seeds=all: every node with out-edges
    overlaps, l1s, bounds = [], [], []
    for s in sources:
        exact = exact_ppr(edges, alpha, s)
        rows = got.filter(got["src"] == s)
        est = dict(zip(rows["dst"].to_list(), rows["score"].to_list(), strict=True))
        # top-k truncated, source excluded: compare on the exact top-50 without the source.
        ranked = [v for v, _ in sorted(exact.items(), key=lambda kv: (-kv[1], kv[0])) if v != s]
        l1s.append(sum(abs(est.get(v, 0.0) - exact[v]) for v in ranked[:50]))
        # E|p_hat - p| <= sqrt(p (1 - p) / (alpha W)) per node (see tests/unit/test_walk_batch).
        bounds.append(
            sum(np.sqrt(exact[v] * (1 - exact[v]) / (alpha * walks)) for v in ranked[:50])
        )
        if len(ranked) >= 10 and exact[ranked[9]] > 1e-10:
            top_est = set(rows.sort("rank")["dst"].to_list()[:10])
            overlaps.append(len(top_est & set(ranked[:10])) / 10)
    return float(np.mean(l1s)), float(np.mean(bounds)), float(np.mean(overlaps)), len(overlaps)


@pytest.mark.parametrize(
    "strategy", ["broadcast", pytest.param("distributed", marks=pytest.mark.slow)]
)
def test_item_ppr_matches_networkx_and_is_deterministic(spark, graph_run, strategy):
    base = [f"ppr.strategy={strategy}", "ppr.top_k=50", "ppr.seeds=all"]
    cfg = load_config(None, base)
    assert cfg.ppr.walks_per_node == DEFAULT_WALKS
    run_stages(graph_run, cfg, [STAGES["ppr"]], force=True)
    m = tableio.read_manifest(graph_run, "item_ppr")
    assert m["extra"]["strategy"] == strategy and m["extra"]["steps"] > 0
    l1, bound, overlap, n_overlap = _compare(graph_run, 0.3, DEFAULT_WALKS)
    assert n_overlap >= 20
    assert overlap >= 0.9, overlap  # at the default walk count
    assert l1 < bound, (l1, bound)
    before = tableio.read_polars(graph_run, "item_ppr").sort("src", "rank")

    run_stages(graph_run, cfg, [STAGES["ppr"]], force=True)  # same seed: the same table
    assert tableio.read_polars(graph_run, "item_ppr").sort("src", "rank").equals(before)
    if strategy == "distributed":  # the other walk method reads the same cells
        assert m["extra"]["method"] == "steps"
        # Written straight from the top-k tasks: each file sorted by (src, rank), a source in
        # one file only.
        seen_src: set[int] = set()
        now = tableio.read_manifest(graph_run, "item_ppr")  # the re-run's version
        for f in tableio.data_files(graph_run, "item_ppr", now):
            part = pl.read_parquet(f.path)
            assert part.equals(part.sort("src", "rank")), f.name
            assert not seen_src & set(part["src"].to_list()), f.name
            seen_src |= set(part["src"].to_list())
        dbl = load_config(None, [*base, "ppr.distributed_method=doubling"])
        run_stages(graph_run, dbl, [STAGES["ppr"]], force=True)
        assert tableio.read_manifest(graph_run, "item_ppr")["extra"]["method"] == "doubling"
        assert tableio.read_polars(graph_run, "item_ppr").sort("src", "rank").equals(before)

    more = load_config(None, [*base, f"ppr.walks_per_node={4 * DEFAULT_WALKS}"])
    run_stages(graph_run, more, [STAGES["ppr"]], force=True)
    l1_more, bound_more, overlap_more, _ = _compare(graph_run, 0.3, 4 * DEFAULT_WALKS)
    # Monte-Carlo error ~ 1 / sqrt(walks): x4 walks should halve it; a bias would not.
    assert l1_more < l1 / 1.5, (l1, l1_more)
    assert l1_more < bound_more and overlap_more >= 0.9


def test_numba_kernel_in_the_stage(spark, graph_run):
    """ppr.kernel=numba (compiled walks fused with the top-k, one random stream per walk)
    through the same broadcast stage: within the Monte-Carlo bound of networkx's exact PPR,
    and the same table when the sources are cut into other batches."""
    base = ["ppr.strategy=broadcast", "ppr.kernel=numba", "ppr.top_k=50", "ppr.seeds=all"]
    cfg = load_config(None, base)
    run_stages(graph_run, cfg, [STAGES["ppr"]], force=True)
    assert tableio.read_manifest(graph_run, "item_ppr")["extra"]["kernel"] == "numba"
    l1, bound, overlap, n_overlap = _compare(graph_run, 0.3, DEFAULT_WALKS)
    assert n_overlap >= 20 and overlap >= 0.9 and l1 < bound, (l1, bound, overlap)
    before = tableio.read_polars(graph_run, "item_ppr").sort("src", "rank")
    rebatched = load_config(None, [*base, "ppr.batch_seeds=7"])
    run_stages(graph_run, rebatched, [STAGES["ppr"]], force=True)
    assert tableio.read_polars(graph_run, "item_ppr").sort("src", "rank").equals(before)


SMALL_MEMORY = "512m"  # local mode: the driver JVM is also the executor, so the whole heap


@pytest.mark.slow
def test_auto_picks_distributed_above_the_edge_limit_in_small_memory(spark, graph_run, tmp_path):
    """The distributed strategy where it is meant to run: a graph above
    ppr.broadcast_max_edges, in a Spark with a small heap (its own `walkrank run` process).
    `auto` picks it and says why, and its item_ppr agrees with the broadcast strategy's on
    the same graph within Monte-Carlo error (and both with networkx's exact PPR)."""
    dist_dir, bcast_dir = tmp_path / "d", tmp_path / "b"
    shutil.copytree(graph_run, dist_dir)
    n_edges = tableio.read_manifest(dist_dir, "graph_edges")["rows"]
    limit = n_edges // 2
    sets = ["ppr.top_k=50", "ppr.seeds=all", "ppr.strategy=auto",
            f"ppr.broadcast_max_edges={limit}", f"spark.driver_memory={SMALL_MEMORY}"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--out", str(tmp_path), "--run-id", "d",
         "--stages", "ppr", "--force", *(a for s in sets for a in ("--set", s))],
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    reason = f"{n_edges:,} edges > ppr.broadcast_max_edges {limit:,}"
    assert f"strategy distributed ({reason})" in proc.stderr
    extra = tableio.read_manifest(dist_dir, "item_ppr")["extra"]
    assert (extra["strategy"], extra["strategy_reason"]) == ("distributed", reason)

    shutil.copytree(graph_run, bcast_dir)
    cfg = load_config(None, ["ppr.top_k=50", "ppr.seeds=all", "ppr.strategy=broadcast"])
    run_stages(bcast_dir, cfg, [STAGES["ppr"]], force=True)
    for d in (dist_dir, bcast_dir):
        l1, bound, overlap, n_overlap = _compare(d, 0.3, DEFAULT_WALKS)
        assert n_overlap >= 20 and l1 < bound and overlap >= 0.9, (d.name, l1, bound, overlap)
    # Two independent estimates of each source's vector differ by about sqrt(2) times the
    # error of one: on each source's broadcast top 20, within sqrt(2) x the per-node bound.
    dist = tableio.read_polars(dist_dir, "item_ppr")
    bcast = tableio.read_polars(bcast_dir, "item_ppr")
    diffs, bounds = [], []
    for src in sorted(set(bcast["src"].to_list())):
        b = dict(bcast.filter(pl.col("src") == src).select("dst", "score").iter_rows())
        e = dict(dist.filter(pl.col("src") == src).select("dst", "score").iter_rows())
        top = sorted(b, key=lambda v: (-b[v], v))[:20]
        diffs.append(sum(abs(e.get(v, 0.0) - b[v]) for v in top))
        bounds.append(sum(np.sqrt(2 * b[v] * (1 - b[v]) / (0.3 * DEFAULT_WALKS)) for v in top))
    assert np.mean(diffs) < np.mean(bounds), (np.mean(diffs), np.mean(bounds))
