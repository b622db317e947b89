"""The graph tables as a GraphFrame, where the GraphFrames JAR is on the Spark classpath.

graph_nodes (`id`) and graph_edges (`src`, `dst`) already follow GraphFrames' column
conventions, so wrapping them needs no renaming. The `graphframes-py` package is only the
Python half; the JVM half comes from a package repository (`--packages`). Nothing in the
pipeline depends on it: a missing JAR is a clear error naming the coordinate to add.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines.errors import GraphFramesMissingError

JVM_CLASS = "org.graphframes.GraphFramePythonAPI"


def graphframes_coordinate(spark_version: str, scala_version: str, graphframes_version: str) -> str:
    """Maven coordinate of the GraphFrames JAR for a Spark / Scala pair, e.g.
    ``io.graphframes:graphframes-spark4_2.13:0.12.3`` (the artifact is per Spark major and
    Scala binary version; its version matches the Python package's)."""
    major = spark_version.split(".")[0]
    scala_binary = ".".join(scala_version.split(".")[:2])
    return f"io.graphframes:graphframes-spark{major}_{scala_binary}:{graphframes_version}"


def _scala_version(spark: Any) -> str:
    """The running JVM's Scala version; the bundled scala-library JAR when the JVM cannot say."""
    try:
        return str(spark.sparkContext._jvm.scala.util.Properties.versionNumberString())
    except Exception:  # Spark Connect has no py4j gateway
        import pyspark

        jars = Path(pyspark.__file__).parent / "jars"
        for jar in sorted(jars.glob("scala-library-*.jar")):
            m = re.match(r"scala-library-(\d+\.\d+)", jar.name)
            if m:
                return m.group(1)
        return "2.13"  # Spark 4 is built for Scala 2.13 only


def _graphframes_version() -> str:
    try:
        return metadata.version("graphframes-py")
    except metadata.PackageNotFoundError:
        return "0.12.3"  # the version this module was written against


def coordinate_for(spark: Any) -> str:
    """The `--packages` coordinate that matches the running Spark and installed graphframes-py."""
    return graphframes_coordinate(spark.version, _scala_version(spark), _graphframes_version())


def graphframes_available(spark: Any) -> bool:
    """True when the GraphFrames JVM classes load in this session."""
    try:
        jvm = spark.sparkContext._jvm
        jvm.Thread.currentThread().getContextClassLoader().loadClass(JVM_CLASS)
        return True
    except Exception:  # Py4JJavaError(ClassNotFoundException), or no JVM gateway at all
        return False


def to_graphframe(nodes: Any, edges: Any) -> Any:
    """graphframes.GraphFrame over graph_nodes (vertices, `id`) and graph_edges (`src`, `dst`).

    Raises GraphFramesMissingError, with the `--packages` coordinate for this Spark and Scala
    version, when the JAR is not on the classpath.
    """
    spark = nodes.sparkSession
    if not graphframes_available(spark):
        coord = coordinate_for(spark)
        raise GraphFramesMissingError(
            f"the GraphFrames JAR ({JVM_CLASS}) is not on the Spark classpath; "
            f"graphframes-py is only its Python half (Spark {spark.version})",
            hint=(
                f"start Spark with --packages {coord} (or set spark.jars.packages={coord}, "
                f'e.g. --set \'spark.conf={{"spark.jars.packages"="{coord}"}}\'); '
                "or put the JAR in spark.jars where the repository is unreachable"
            ),
        )
    from graphframes import GraphFrame

    return GraphFrame(nodes, edges)
