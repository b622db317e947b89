"""Shared fixtures: one local SparkSession per test session (real engine, UI off)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

from tests.ranker_fixtures import planted_run  # noqa: F401 - a session fixture, shared

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Executors must run the same interpreter as the tests (the project's venv).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# Nothing machine-wide: local Ray sessions (and `ray start`'s cluster record) go to a folder
# of this test session instead of /tmp/ray (a short path: Ray puts unix sockets under it),
# the default model's conversion to the project's venv instead of ~/.cache/walkrank, and
# Hypothesis keeps no example database in the working tree.
_SESSION_TMP = tempfile.mkdtemp(prefix="wr-tests-", dir="/tmp")
atexit.register(shutil.rmtree, _SESSION_TMP, True)
os.environ.setdefault("RAY_TMPDIR", _SESSION_TMP)
os.environ.setdefault("WALKRANK_CACHE", str(ROOT / ".venv" / "share" / "walkrank" / "cache"))
settings.register_profile("walkrank", database=None)
settings.load_profile("walkrank")


@pytest.fixture(scope="session")
def spark():
    from pipelines.config import SparkConfig
    from pipelines.spark_session import get_spark

    session = get_spark(
        SparkConfig(
            master="local[2]",
            driver_memory="2g",
            shuffle_partitions=4,
            log_level="ERROR",
            jit="quick",
        )
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def amazon_toys_path() -> Path:
    path = SHARED / "datasets" / "amazon-toys" / "Toys_and_Games.txt"
    if not path.exists():
        pytest.skip(f"dataset not found: {path} (shared/ must sit beside the repository)")
    return path
