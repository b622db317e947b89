"""to_graphframe: a clear error naming the --packages coordinate when the GraphFrames JAR is
missing (the case on the project's machines: Maven Central as they reach it serves no
GraphFrames build for Spark 4), a GraphFrame over the graph tables when present; and the PPR
benchmark's GraphX peer, which needs no JAR beyond pyspark's."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pyspark
import pytest

from pipelines.errors import GraphFramesMissingError
from pipelines.graph.graphframe import (
    coordinate_for,
    graphframes_available,
    graphframes_coordinate,
    to_graphframe,
)

NODES = [(0, "a", 2, 1, 3.0), (1, "b", 1, 1, 1.0), (2, "c", 0, 1, 0.0)]
EDGES = [(0, 1, 2.0, 2, 2 / 3), (0, 2, 1.0, 1, 1 / 3), (1, 0, 1.0, 1, 1.0)]


def _tables(spark):
    nodes = spark.createDataFrame(
        NODES, "id int, item_id string, out_degree int, in_degree int, out_weight double"
    )
    edges = spark.createDataFrame(EDGES, "src int, dst int, weight double, count long, prob double")
    return nodes, edges


def test_coordinate_per_spark_and_scala_version():
    assert graphframes_coordinate("4.0.1", "2.13.16", "0.12.3") == (
        "io.graphframes:graphframes-spark4_2.13:0.12.3"
    )
    assert graphframes_coordinate("3.5.3", "2.12.18", "0.11.0") == (
        "io.graphframes:graphframes-spark3_2.12:0.11.0"
    )


@pytest.mark.spark
def test_coordinate_matches_the_installed_spark_and_graphframes_py(spark):
    jars = Path(pyspark.__file__).parent / "jars"
    scala = next(
        m.group(1)
        for j in jars.glob("scala-library-*.jar")
        if (m := re.match(r"scala-library-(\d+\.\d+)", j.name))
    )
    want = (
        f"io.graphframes:graphframes-spark{pyspark.__version__.split('.')[0]}_{scala}:"
        f"{metadata.version('graphframes-py')}"
    )
    assert coordinate_for(spark) == want


@pytest.mark.spark
def test_missing_jar_is_a_clear_error_naming_the_packages_coordinate(spark):
    if graphframes_available(spark):
        pytest.skip("the GraphFrames JAR is on the classpath: the missing-JAR error cannot occur")
    nodes, edges = _tables(spark)
    with pytest.raises(GraphFramesMissingError) as err:
        to_graphframe(nodes, edges)
    assert f"--packages {coordinate_for(spark)}" in str(err.value)
    assert err.value.hint


@pytest.mark.spark
def test_graphframe_over_the_graph_tables(spark):
    if not graphframes_available(spark):
        pytest.skip(
            "needs the GraphFrames JAR: start Spark with --packages " + coordinate_for(spark)
        )
    nodes, edges = _tables(spark)
    g = to_graphframe(nodes, edges)
    assert g.vertices.count() == len(NODES) and g.edges.count() == len(EDGES)
    in_deg = {r["id"]: r["inDegree"] for r in g.inDegrees.collect()}
    assert in_deg == {i: d for i, _, _, d, _ in NODES if d}
    out_deg = {r["id"]: r["outDegree"] for r in g.outDegrees.collect()}
    assert out_deg == {i: d for i, _, d, _, _ in NODES if d}


@pytest.mark.spark
def test_graphx_parallel_ppr_matches_networkx_on_an_unweighted_graph(spark, tmp_path):
    """The PPR benchmark's GraphX peer (what GraphFrames' parallelPersonalizedPageRank runs)
    against networkx.pagerank per source; a graph with no dangling node, where GraphX's and
    networkx's conventions agree, and edge weights GraphX must ignore."""
    import networkx as nx
    import numpy as np
    import pyarrow as pa

    from benchmarks.ppr_baselines import graphx_ppr

    rng = np.random.default_rng(7)
    n = 30
    pairs = {(i, (i + 1) % n) for i in range(n)}  # a ring: every node has an out-edge
    pairs |= {(int(a), int(b)) for a, b in rng.integers(0, n, (60, 2)) if a != b}
    src, dst = map(np.array, zip(*sorted(pairs), strict=True))
    edges = pa.table({"src": src, "dst": dst, "weight": rng.uniform(0.1, 5.0, len(src))})
    sources, alpha, k = [0, 7, 19], 0.3, 5
    est, seconds = graphx_ppr(spark, edges, sources, alpha, 60, k, tmp_path)
    assert seconds > 0
    g = nx.DiGraph(list(zip(src.tolist(), dst.tolist(), strict=True)))
    for s in sources:
        pr = nx.pagerank(g, alpha=1 - alpha, personalization={s: 1}, tol=1e-12, weight=None)
        want = sorted(((x, v) for v, x in pr.items() if v != s), key=lambda t: (-t[0], t[1]))[:k]
        assert list(est[s]) == [v for _, v in want]
        assert np.allclose([est[s][v] for _, v in want], [x for x, _ in want], atol=1e-8)
