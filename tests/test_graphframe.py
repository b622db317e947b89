"""to_graphframe: a clear error naming the --packages coordinate when the GraphFrames JAR is
missing (the case on this build machine), a GraphFrame over the graph tables when present."""

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
