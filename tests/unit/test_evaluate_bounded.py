"""evaluate in bounded memory: a run read in many buckets of users gives exactly the metrics
of one pass over whole tables (every metric, every segment, every table and source)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import random

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from pipelines import tableio
from pipelines.config import load_config
from pipelines.errors import ConfigError
from pipelines.evaluation.buckets import n_buckets, read_buckets
from pipelines.evaluation.evaluate import RankingEvaluator
from pipelines.evaluation.per_source import run_source_overlap
from pipelines.evaluation.run import (
    evaluate_run,
    run_train_stats,
    score_against_buckets,
)
from schemas.tables import EVENTS, HOLDOUT, ITEMS
from tests.whole_table import score_against, source_overlap

TS = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
N_USERS = 3000  # held-out users, all ranked; EXTRA more users are ranked but not held out
EXTRA = 200
N_ITEMS = 400
CATALOG_ONLY = 50  # items of the catalog that nobody saw
KS = [1, 5, 10, 20]
SMALL = 10_000  # rows per bucket: rankings 64,000 rows -> 7 buckets, candidates 96,000 -> 10
LARGE = 10_000_000  # one bucket


def _target_rank(u: int) -> int:
    """Rank of user u's held-out item in rankings: 1..15 evenly (N_USERS is a multiple of 15)."""
    return u % 15 + 1


def _write(run, name, table, target="test", **extra):
    tableio.write_table(
        run, name, table, stage="t", stage_key="t", extra={"target": target, **extra}
    )


def _frame(rows, schema):
    return pa.table({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema)


def write_run(run, target="test"):
    rng = random.Random(7)
    items = [f"i{k:03d}" for k in range(N_ITEMS + CATALOG_ONLY)]
    _write(
        run,
        "items",
        _frame(
            [{"item_id": i, "item_idx": k, "popularity": 1} for k, i in enumerate(items)],
            ITEMS.schema,
        ),
        target,
    )
    users = [f"u{u:05d}" for u in range(N_USERS + EXTRA)]
    # Skewed popularity, so the head/tail and history segments all have users.
    seen = items[:N_ITEMS]
    weights = [1 / (k + 1) for k in range(N_ITEMS)]
    train = [
        {"user_id": user, "item_id": item, "ts": TS, "user_idx": u, "item_idx": 0}
        for u, user in enumerate(users)
        for item in rng.choices(seen, weights, k=rng.choice([1, 3, 6, 12, 25]))
    ]
    _write(run, "train", _frame(train, EVENTS.schema), target)
    truth = {user: rng.choice(seen) for user in users[:N_USERS]}
    holdout = (
        [
            {"user_id": user, "item_id": item, "ts": TS, "split": "test"}
            for user, item in ([] if target == "serve" else truth.items())
        ]
        + [  # another split's rows, which the test target must ignore
            {"user_id": user, "item_id": seen[0], "ts": TS, "split": "valid"}
            for user in ([] if target == "serve" else users[:100])
        ]
    )
    _write(run, "holdout", _frame(holdout, HOLDOUT.schema), target)

    rankings, candidates = [], []
    for u, user in enumerate(users):
        others = [i for i in rng.sample(seen, 35) if i != truth.get(user)]
        ranked = others[:20]
        if user in truth:
            ranked = others[:19]
            ranked.insert(_target_rank(u) - 1, truth[user])
        rankings += [(user, item, r + 1, 1.0 / (r + 1)) for r, item in enumerate(ranked)]
        for r, item in enumerate((ranked + others[19:])[:30]):
            a = rng.random() if rng.random() < 0.7 else None
            b = rng.random() if a is None or rng.random() < 0.5 else None
            sources = [s for s, v in (("a", a), ("b", b)) if v is not None]
            candidates.append((user, item, r + 1, 1.0 / (r + 1), sources, a, b))
    rank_cols = ["user_id", "item_id", "rank", "score"]
    _write(
        run,
        "rankings",
        pl.DataFrame(rankings, schema=rank_cols, orient="row").with_columns(
            pl.col("rank").cast(pl.Int32)
        ),
        target,
    )
    _write(
        run,
        "candidates",
        pl.DataFrame(
            candidates, schema=[*rank_cols, "sources", "score_a", "score_b"], orient="row"
        ).with_columns(pl.col("rank").cast(pl.Int32)),
        target,
        sources=["a", "b"],
    )
    return run


@pytest.fixture(scope="module")
def test_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("eval") / "run")


@pytest.fixture(scope="module")
def serve_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("serve") / "run", target="serve")


def test_bucket_count_comes_from_the_table_size():
    assert n_buckets(0, 5) == 1 and n_buckets(5, 5) == 1 and n_buckets(6, 5) == 2
    assert n_buckets(64_000, SMALL) == 7
    with pytest.raises(ValueError, match="max_rows_in_memory"):
        n_buckets(10, 0)


def test_max_rows_in_memory_is_validated_at_load():
    assert load_config(None, ["eval.max_rows_in_memory=1000"]).eval.max_rows_in_memory == 1000
    with pytest.raises(ConfigError, match="eval.max_rows_in_memory"):
        load_config(None, ["eval.max_rows_in_memory=0"])


def test_buckets_partition_the_users(test_run):
    scan = tableio.scan_polars(test_run, "rankings")
    buckets = list(read_buckets(scan, 7))
    assert len(buckets) == 7 and all(b.rows.height for b in buckets)
    users = [set(b.rows["user_id"]) for b in buckets]
    assert sum(len(u) for u in users) == len(set().union(*users)) == N_USERS + EXTRA
    assert (
        sum(b.rows.height for b in buckets) == tableio.read_manifest(test_run, "rankings")["rows"]
    )
    # Each bucket's rows are the table's rows of its users, in the table's order.
    whole = scan.collect()
    for b in buckets:
        assert b.rows.equals(whole.filter(pl.col("user_id").is_in(list(users[b.index]))))
    # More buckets than users: the empty ones are empty frames of the same columns.
    few = whole.filter(pl.col("user_id").is_in(["u00000", "u00001"]))
    assert few.height > 0
    many = list(read_buckets(few.lazy(), 50))
    assert sum(b.rows.height for b in many) == few.height
    assert all(b.rows.schema == few.schema for b in many)
    assert sum(b.rows.height == 0 for b in many) >= 48


def test_bucketed_metrics_equal_one_pass(test_run, caplog):
    with caplog.at_level(logging.INFO, logger="pipelines.evaluation.run"):
        bucketed = evaluate_run(test_run, ["rankings", "candidates"], KS, "test", SMALL)
    # It really read in buckets: rankings 64,000 rows, candidates 96,000, train ~40,000.
    assert "read rankings of" in caplog.text and "in 7 bucket(s)" in caplog.text
    assert "read candidates of" in caplog.text and "in 10 bucket(s)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipelines.evaluation.run"):
        whole = evaluate_run(test_run, ["rankings", "candidates"], KS, "test", LARGE)
    assert "in 1 bucket(s)" in caplog.text and "in 7 bucket(s)" not in caplog.text

    assert set(whole["table"]) == {"rankings", "candidates", "candidates:a", "candidates:b"}
    assert set(whole["segment"]) == {
        "all",
        "hist_le5",
        "hist_6_20",
        "hist_gt20",
        "pop_head",
        "pop_tail",
    }
    assert set(whole["metric"]) >= {
        "hr",
        "ndcg",
        "recall",
        "mrr",
        "map",
        "precision",
        "coverage",
        "gini",
        "novelty",
    }
    # Exactly equal, not approximately: every value, every segment, every table.
    assert_frame_equal(bucketed, whole, check_exact=True)

    # By hand: every held-out user's item is at rank 1..15, each rank for 1/15 of the users.
    got = {
        (r["metric"], r["k"]): (r["value"], r["n_users"])
        for r in whole.filter(
            (pl.col("table") == "rankings") & (pl.col("segment") == "all")
        ).iter_rows(named=True)
    }
    assert got[("hr", 10)] == (pytest.approx(10 / 15), N_USERS)
    assert got[("hr", 20)] == (1.0, N_USERS)
    assert got[("mrr", 10)][0] == pytest.approx(sum(1 / r for r in range(1, 11)) / 15)
    assert got[("ndcg", 1)][0] == pytest.approx(1 / 15)
    # The extra ranked users are not held out, so their slots are not counted.
    assert got[("coverage", 20)][1] == N_USERS


def test_evaluator_keeps_sums_not_users(test_run):
    """What a RankingEvaluator keeps between buckets does not grow with the users added: at
    20M events six evaluators keeping per-user rows for 1M users took the driver to 10.6 GB."""
    holdout = pl.from_arrow(tableio.read_arrow(test_run, "holdout", columns=["user_id", "item_id"]))
    evaluator = RankingEvaluator(KS, run_train_stats(test_run, SMALL))
    scan = tableio.scan_polars(test_run, "rankings").select("user_id", "item_id", "rank")
    kept = []
    for bucket in read_buckets(scan, 7):
        evaluator.add(bucket.rows, bucket.users_of(holdout))
        kept.append(evaluator.state_rows)
    per_user_rows = N_USERS * len(KS) * 3  # all, a history segment, one popularity segment
    # Sums: 6 segments x 4 ks x 6 metrics x the exponents seen; exposure: items x ks, summed
    # and at most as many pending.
    bound = 6 * len(KS) * 6 * 16 + 2 * N_ITEMS * len(KS)
    assert max(kept) <= bound < per_user_rows


def test_bucketed_serve_metrics_equal_one_pass(serve_run):
    bucketed = evaluate_run(serve_run, ["rankings", "candidates"], KS, "serve", SMALL)
    whole = evaluate_run(serve_run, ["rankings", "candidates"], KS, "serve", LARGE)
    assert_frame_equal(bucketed, whole, check_exact=True)
    users = whole.filter((pl.col("table") == "rankings") & (pl.col("metric") == "users"))
    assert users["value"].to_list() == [float(N_USERS + EXTRA)]


def test_bucketed_scoring_against_new_events_equals_one_pass(serve_run):
    t = TS + dt.timedelta(days=1)
    new = pl.DataFrame(
        {
            "user_id": [f"u{u:05d}" for u in range(0, N_USERS + EXTRA + 500, 3)],
            "item_id": [f"i{u % N_ITEMS:03d}" for u in range(0, N_USERS + EXTRA + 500, 3)],
            "ts": t,
        }
    )
    stats = run_train_stats(serve_run, SMALL)
    scan = tableio.scan_polars(serve_run, "rankings")
    bucketed, counts_b = score_against_buckets(
        read_buckets(scan, 7), new, stats, KS, N_ITEMS + CATALOG_ONLY
    )
    whole, counts_w = score_against(
        tableio.read_polars(serve_run, "rankings"),
        new,
        tableio.read_polars(serve_run, "train"),
        KS,
        N_ITEMS + CATALOG_ONLY,
    )
    assert counts_b == counts_w
    assert counts_w["users_scored"] == math.ceil((N_USERS + EXTRA) / 3)
    assert_frame_equal(bucketed, whole, check_exact=True)


def test_bucketed_source_overlap_equals_one_pass(test_run):
    whole = source_overlap(tableio.read_polars(test_run, "candidates"), ["a", "b"], 5)
    assert_frame_equal(run_source_overlap(test_run, 5, SMALL), whole, check_exact=True)
    assert_frame_equal(run_source_overlap(test_run, 5, LARGE), whole, check_exact=True)
