"""Daily runs that pay for what changed: the fit pass computes per-user tables for its user
sample only (the same rows a whole fit pass gives those users); `rank.model = latest` ranks
a serve run with the newest qualifying model of an earlier run under the same --out, without
a fit pass; every run commits `fallback_rankings` (the most popular train items)."""

from __future__ import annotations

import json
import math
import shutil

import polars as pl
import pytest

from pipelines import api, tableio
from pipelines.config import load_config
from pipelines.errors import ConfigError
from tests.pipeline_fixtures import write_events
from tests.ranker_fixtures import SMALL, planted_log
from tests.ranker_fixtures import stages_run as _run


def _users(run, table: str) -> set[str]:
    return set(tableio.read_polars(run, table)["user_id"])


@pytest.fixture(scope="module")
def whole_and_sampled(planted_run, tmp_path_factory):
    """The planted run (its fit pass on every user: 120 < the sample) and a copy of it whose
    fit pass samples ceil(20 x 1.1) = 22 users (rank.max_fit_users = 20): the fit pass's
    neighbors and candidates, the fit, rank and evaluate run again, the rest is skipped."""
    sampled = tmp_path_factory.mktemp("sample") / "sampled"
    shutil.copytree(planted_run, sampled, symlinks=True)
    out = _run(sampled, ["rank.max_fit_users=20"])
    assert out["fit/split"] == "skipped" and out["fit/candidates"] == "ran"
    return planted_run, sampled


def test_fit_pass_computes_per_user_tables_for_its_sample_only(spark, whole_and_sampled):
    whole, sampled = whole_and_sampled
    fw, fs = whole / "fit", sampled / "fit"
    n = math.ceil(20 * 1.1)
    labelled = set(tableio.read_polars(fs, "holdout").filter(pl.col("split") == "valid")["user_id"])
    assert len(labelled) > n
    # The sample: users with a fit label, the n lowest seeded hashes (the order fit users are
    # picked in), computed here by a query of its own.
    from pyspark.sql import functions as F

    order = (
        spark.createDataFrame([(u,) for u in sorted(labelled)], "user_id string")
        .withColumn("h", F.xxhash64("user_id", F.lit(42)))
        .orderBy("h", "user_id")
        .limit(n)
        .collect()
    )
    chosen = {r["user_id"] for r in order}
    assert _users(fs, "candidates") == chosen
    assert _users(fs, "user_neighbors") == chosen
    assert len(_users(fw, "candidates")) == 120  # the whole pass: every user
    # The sampled users' rows are the whole pass's rows of those users; item-side tables whole.
    for table in ("candidates", "user_neighbors"):
        a = tableio.read_polars(fw, table).filter(pl.col("user_id").is_in(list(chosen)))
        b = tableio.read_polars(fs, table)
        keys = [c for c, t in a.schema.items() if not isinstance(t, pl.List)]
        assert a.sort(keys).equals(b.sort(keys)), table
    for table in ("item_neighbors", "graph_edges", "item_ppr", "train"):
        a, b = tableio.read_polars(fw, table), tableio.read_polars(fs, table)
        keys = [c for c, t in a.schema.items() if not isinstance(t, pl.List)]
        assert a.sort(keys).equals(b.sort(keys)), table
    # The run's own tables do not sample.
    assert _users(sampled, "candidates") == _users(whole, "candidates")
    fit = tableio.read_manifest(sampled, "ranker_model")["extra"]
    assert fit["fitted"] and fit["report"]["labelled_users"] <= n


def test_fallback_rankings_are_the_most_popular_train_items(whole_and_sampled):
    run = whole_and_sampled[0]
    train = tableio.read_polars(run, "train")
    items = tableio.read_polars(run, "items")
    top_n = load_config(None, SMALL).candidates.top_n
    ref = (
        train.group_by("item_idx")
        .len()
        .sort(["len", "item_idx"], descending=[True, False])
        .head(top_n)
        .join(items.select("item_idx", "item_id"), on="item_idx")
        .sort(["len", "item_idx"], descending=[True, False])
    )
    got = tableio.read_polars(run, "fallback_rankings").sort("rank")
    assert got["rank"].to_list() == list(range(1, ref.height + 1))
    assert got["item_id"].to_list() == ref["item_id"].to_list()
    assert got["score"].to_list() == [float(c) for c in ref["len"]]


def _day(log: list[dict], drop_last: int) -> list[dict]:
    """Every user's events but their last `drop_last`."""
    by_user: dict[str, list[dict]] = {}
    for row in sorted(log, key=lambda r: (r["user_id"], r["ts"])):
        by_user.setdefault(row["user_id"], []).append(row)
    return [r for rows in by_user.values() for r in rows[: len(rows) - drop_last]]


@pytest.mark.slow  # two serve runs, one with a fit pass: ~3 min
def test_latest_model_ranks_day_two_without_a_fit_pass(spark, tmp_path, capfd):
    out = tmp_path / "runs"
    log = planted_log()
    day1, day2 = out / "day1", out / "day2"
    write_events(day1, _day(log, 2))
    write_events(day2, _day(log, 1))
    serve = ["eval.target=serve"]
    first = _run(day1, [*serve, "rank.model=latest"])  # no model under --out yet: it fits
    assert first["fit_ranker"] == "ran"
    meta = json.loads((day1 / "models" / "ranker" / "meta.json").read_text())
    assert meta["run_target"] == "serve" and meta["run"] == str(day1)
    capfd.readouterr()
    second = _run(day2, [*serve, "rank.model=latest"])
    err = capfd.readouterr().err
    assert "fit_ranker" not in second and not (day2 / "fit").exists()
    assert all(tableio.is_committed(d, "fallback_rankings") for d in (day1, day2))
    assert f"rank.model = latest -> {day1 / 'models' / 'ranker'}" in err
    m = tableio.read_manifest(day2, "rankings")["extra"]
    assert m["order"] == "learned ranker" and m["model_run"] == str(day1)
    assert m["model_choice"].startswith(f"rank.model = latest -> {day1 / 'models' / 'ranker'}")
    plan = json.loads((day2 / "plan.json").read_text())
    assert any("rank.model = latest" in note for note in plan["notes"])
    # A backfill of day 1 (a run whose data end before day 2's) never takes day 2's model.
    day0 = out / "day0"
    write_events(day0, _day(log, 3))
    cfg, notes = api.prepare(load_config(None, [*SMALL, *serve, "rank.model=latest"]), day0)
    assert cfg.rank.model == "" and "fitted in this run" in notes[0]


def test_an_evaluation_run_refuses_latest_before_any_engine():
    for target in ("test", "valid"):
        with pytest.raises(ConfigError, match="leak|fitted on the labels"):
            load_config(None, [f"eval.target={target}", "rank.model=latest"])
