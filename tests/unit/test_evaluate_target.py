"""evaluate refuses a target other than the one the run's split was made for."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pyarrow as pa
import pytest

from pipelines import tableio
from pipelines.cli import main
from pipelines.errors import ConfigError
from pipelines.evaluation.run import evaluate_run
from schemas.tables import EVENTS, HOLDOUT, ITEMS

TS = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _run(tmp_path, target: str):
    """A split made for `target` (the split stage records it in the manifests' extra)."""

    def write(name, rows, schema):
        cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
        tableio.write_table(
            tmp_path,
            name,
            pa.table(cols, schema=schema),
            stage="split",
            stage_key="k",
            extra={"target": target},
        )

    write(
        "items",
        [{"item_id": f"i{k}", "item_idx": k, "popularity": 1} for k in range(3)],
        ITEMS.schema,
    )
    write(
        "train",
        [
            {"user_id": "a", "item_id": "i0", "ts": TS, "user_idx": 0, "item_idx": 0},
            {"user_id": "b", "item_id": "i1", "ts": TS, "user_idx": 1, "item_idx": 1},
        ],
        EVENTS.schema,
    )
    write(
        "holdout",
        [
            {"user_id": "a", "item_id": "i1", "ts": TS, "split": "valid"},
            {"user_id": "a", "item_id": "i2", "ts": TS, "split": "test"},
            {"user_id": "b", "item_id": "i2", "ts": TS, "split": "test"},
        ],
        HOLDOUT.schema,
    )
    # a: its valid item first, its test item second; b: its test item first.
    ranked = {"a": ["i1", "i2"], "b": ["i2", "i0"]}
    write(
        "rankings",
        [
            {"user_id": u, "item_id": i, "rank": r + 1, "score": 1 / (r + 1)}
            for u, items in ranked.items()
            for r, i in enumerate(items)
        ],
        pa.schema(
            [
                ("user_id", pa.string()),
                ("item_id", pa.string()),
                ("rank", pa.int32()),
                ("score", pa.float64()),
            ]
        ),
    )


def test_the_split_target_is_scored(tmp_path):
    """Scored on the test rows only: a's test item at rank 2 (its valid item, at rank 1, is
    not relevant here), b's at rank 1."""
    _run(tmp_path, "test")
    m = evaluate_run(tmp_path, ["rankings"], [1, 2], "test")
    got = {
        (r["metric"], r["k"]): (r["value"], r["n_users"])
        for r in m.filter(pl.col("segment") == "all").iter_rows(named=True)
    }
    assert got[("hr", 1)] == (pytest.approx(1 / 2), 2)
    assert got[("hr", 2)] == (pytest.approx(1.0), 2)
    assert got[("mrr", 2)] == (pytest.approx((1 / 2 + 1) / 2), 2)
    assert got[("ndcg", 2)] == (pytest.approx((1 / math.log2(3) + 1) / 2), 2)


def test_another_target_is_refused_with_both_named(tmp_path, capsys):
    _run(tmp_path, "test")
    with pytest.raises(ConfigError, match=r"split for eval.target 'test', not 'valid'"):
        evaluate_run(tmp_path, ["rankings"], [1], "valid")
    assert main(["evaluate", str(tmp_path), "--target", "valid", "--k", "1"]) == 2
    err = capsys.readouterr().err
    assert "error: run" in err and "--target test" in err and "Traceback" not in err
