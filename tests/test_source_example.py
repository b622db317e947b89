"""The worked example of docs/architecture.md: a new candidate source in one function, one
registry entry and this test. `catalog` proposes each user's first unseen items in catalog
order (score 1 / (1 + item_idx)): no tables of its own, no settings."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines import tableio
from pipelines.candidates.inputs import SourceInputs, top_per_user
from pipelines.candidates.registry import SOURCES, Source
from pipelines.config import load_config
from pipelines.runner import run_stages
from pipelines.stages import STAGES
from tests.pipeline_fixtures import random_events, write_events

pytestmark = pytest.mark.spark


def catalog_source(inputs: SourceInputs, tables: dict, settings):
    """DataFrame[user_idx, item_idx, score]: the first unseen items by item_idx."""
    from pyspark.sql import functions as F

    items = inputs.spark.range(inputs.n_items).select(F.col("id").cast("int").alias("item_idx"))
    scored = inputs.users.crossJoin(items).withColumn("score", 1.0 / (1.0 + F.col("item_idx")))
    return top_per_user(scored, inputs.per_source, inputs.seen)


def test_a_new_source_needs_a_function_and_a_registry_line(spark, tmp_path, monkeypatch):
    monkeypatch.setitem(SOURCES, "catalog", Source("catalog", f"{__name__}:catalog_source"))
    rows = random_events(21)
    write_events(tmp_path, rows)
    cfg = load_config(None, ['candidates.sources=["catalog"]', "candidates.per_source=4"])
    run_stages(tmp_path, cfg, [STAGES["split"], STAGES["candidates"]])

    assert tableio.read_manifest(tmp_path, "candidates")["extra"]["sources"] == [
        "catalog",
        "popular",
    ]
    items = tableio.read_polars(tmp_path, "items").sort("item_idx")["item_id"].to_list()
    train = tableio.read_polars(tmp_path, "train")
    cands = tableio.read_polars(tmp_path, "candidates")
    for (user,), g in cands.filter(pl.col("score_catalog").is_not_null()).group_by("user_id"):
        seen = set(train.filter(pl.col("user_id") == user)["item_id"])
        want = [i for i in items if i not in seen][:4]
        got = g.sort("score_catalog", descending=True)["item_id"].to_list()
        assert got == want, user
