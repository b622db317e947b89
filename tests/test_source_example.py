"""The worked example of docs/architecture.md: a new candidate source in one function, one
registry entry and this test. `catalog` proposes each user's first unseen items in catalog
order (score 1 / (1 + item_idx)), from catalog position `start` on: no tables of its own, one
setting, a default fusion weight. Nothing else in the code base names it, yet it gets its
config section, its score column, its ranker features and its metrics."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pytest

from pipelines import tableio
from pipelines.bounds import NonNegInt
from pipelines.candidates.inputs import SourceInputs, top_per_user
from pipelines.candidates.registry import SOURCES, Source
from pipelines.config import load_config
from pipelines.ranker.features import candidate_features, feature_names
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from tests.pipeline_fixtures import random_events, write_events

pytestmark = pytest.mark.spark


@dataclass
class CatalogSettings:
    start: NonNegInt = 0  # catalog positions before this one are never proposed


def catalog_source(inputs: SourceInputs, tables: dict, settings: CatalogSettings):
    """DataFrame[user_idx, item_idx, score]: the first unseen items by item_idx."""
    from pyspark.sql import functions as F

    ids = inputs.spark.range(settings.start, inputs.n_items)
    items = ids.select(F.col("id").cast("int").alias("item_idx"))
    scored = inputs.users.crossJoin(items).withColumn("score", 1.0 / (1.0 + F.col("item_idx")))
    return top_per_user(scored, inputs.per_source, inputs.seen)


def _register(monkeypatch) -> None:
    # The one registry line of the example.
    source = Source("catalog", f"{__name__}:catalog_source", settings=CatalogSettings, weight=0.5)
    monkeypatch.setitem(SOURCES, "catalog", source)


def test_a_new_source_needs_a_function_and_a_registry_line(spark, tmp_path, monkeypatch):
    _register(monkeypatch)
    write_events(tmp_path, random_events(21))
    cfg = load_config(
        None,
        ['candidates.sources=["catalog"]', "candidates.per_source=4", "candidates.catalog.start=2"],
    )
    assert cfg.candidates.catalog == CatalogSettings(start=2)
    assert cfg.candidates.weights["catalog"] == 0.5
    run_stages(tmp_path, cfg, [STAGES["split"], STAGES["candidates"], STAGES["evaluate"]])

    sources = tableio.candidate_sources(tmp_path)
    assert sources == ["catalog", "popular"]
    items = tableio.read_polars(tmp_path, "items").sort("item_idx")
    idx = dict(items.select("item_id", "item_idx").iter_rows())
    train = tableio.read_polars(tmp_path, "train")
    cands = tableio.read_polars(tmp_path, "candidates")
    want: dict[tuple[str, str], tuple[float, float]] = {}  # (user, item) -> (score, rank)
    for (user,), g in cands.group_by("user_id"):
        seen = set(train.filter(pl.col("user_id") == user)["item_id"])
        mine = [i for i in items["item_id"] if i not in seen and idx[i] >= 2][:4]
        got = g.filter(pl.col("score_catalog").is_not_null()).sort("score_catalog", descending=True)
        assert got["item_id"].to_list() == mine, user
        want |= {(user, i): (1.0 / (1 + idx[i]), float(r)) for r, i in enumerate(mine, 1)}
        # The fusion weighs it by its registry weight: Σ_s w_s · score_s / max_u(score_s).
        fused = sum(
            w * (g[f"score_{s}"] / g[f"score_{s}"].max()).fill_null(0.0)
            for s, w in (("catalog", 0.5), ("popular", 0.25))
        )
        assert (g["score"] - fused).abs().max() < 1e-12, user

    # The learned ranker's features: its score and its rank among the user's candidates.
    feats = candidate_features(
        tableio.read_spark(spark, tmp_path, "candidates"),
        tableio.read_spark(spark, tmp_path, "train"),
        tableio.read_spark(spark, tmp_path, "items"),
        None,
        sources,
        0.1,
    ).collect()
    assert feature_names(sources)[:4] == [
        "score_catalog",
        "rank_catalog",
        "score_popular",
        "rank_popular",
    ]
    assert len(feats) == cands.height
    for r in feats:
        score, rank = want.get((r["user_id"], r["item_id"]), (None, None))
        assert (r["score_catalog"], r["rank_catalog"]) == (pytest.approx(score), rank)

    # evaluate scores it alone: its hit rate is the share of held-out users it proposed for.
    metrics = tableio.read_polars(tmp_path, "metrics")
    assert {"candidates", "candidates:catalog", "candidates:popular"} <= set(metrics["table"])
    held = tableio.read_polars(tmp_path, "holdout").filter(pl.col("split") == "test")
    hits = {u for u, i in held.select("user_id", "item_id").iter_rows() if (u, i) in want}
    hr = metrics.filter(
        (pl.col("table") == "candidates:catalog")
        & (pl.col("metric") == "hr")
        & (pl.col("k") == 10)
        & (pl.col("segment") == "all")
    ).row(0, named=True)
    assert hr["n_users"] == held["user_id"].n_unique()
    assert hr["value"] == pytest.approx(len(hits) / hr["n_users"])
