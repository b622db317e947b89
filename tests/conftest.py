"""Shared fixtures: one local SparkSession per test session (real engine, UI off)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.ranker_fixtures import planted_run  # noqa: F401 - a session fixture, shared

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Executors must run the same interpreter as the tests (the project's venv).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from pipelines.config import SparkConfig
    from pipelines.spark_session import get_spark

    session = get_spark(
        SparkConfig(master="local[2]", driver_memory="2g", shuffle_partitions=4, log_level="ERROR")
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def amazon_toys_path() -> Path:
    path = SHARED / "datasets" / "amazon-toys" / "Toys_and_Games.txt"
    if not path.exists():
        pytest.skip(f"dataset not found: {path} (shared/ must sit beside the repository)")
    return path
