"""evaluate_run scores every candidate source alone (its score column) beside the fusion."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow as pa
import pytest

from pipelines import tableio
from pipelines.evaluation.run import evaluate_run
from schemas.tables import EVENTS, HOLDOUT, ITEMS

TS = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _write(run, name, rows, schema):
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    tableio.write_table(run, name, pa.table(cols, schema=schema), stage="t", stage_key="t")


def test_each_source_is_ranked_by_its_column(tmp_path):
    items = [f"i{k}" for k in range(6)]
    _write(
        tmp_path,
        "items",
        [{"item_id": i, "item_idx": k, "popularity": 1} for k, i in enumerate(items)],
        ITEMS.schema,
    )
    _write(
        tmp_path,
        "train",
        [
            {"user_id": u, "item_id": "i5", "ts": TS, "user_idx": n, "item_idx": 5}
            for n, u in enumerate(["a", "b"])
        ],
        EVENTS.schema,
    )
    _write(
        tmp_path,
        "holdout",
        [
            {"user_id": "a", "item_id": "i1", "ts": TS, "split": "test"},
            {"user_id": "b", "item_id": "i3", "ts": TS, "split": "test"},
        ],
        HOLDOUT.schema,
    )
    # Fused: a gets i0, i1; b gets i2, i3. Source x ranks a: i1 first; b: only i2.
    cands = pl.DataFrame(
        {
            "user_id": ["a", "a", "b", "b"],
            "item_id": ["i0", "i1", "i2", "i3"],
            "rank": pl.Series([1, 2, 1, 2], dtype=pl.Int32),
            "score": [2.0, 1.0, 2.0, 1.0],
            "sources": [["x"], ["x"], ["x"], ["y"]],
            "score_x": [0.1, 0.9, 0.5, None],
            "score_y": [None, None, None, 0.3],
        }
    )
    tableio.write_table(
        tmp_path, "candidates", cands, stage="t", stage_key="t", extra={"sources": ["x", "y"]}
    )
    m = evaluate_run(tmp_path, ["candidates"], [1, 2], "test").filter(pl.col("segment") == "all")
    hr = {
        (r["table"], r["k"]): r["value"]
        for r in m.filter(pl.col("metric") == "hr").iter_rows(named=True)
    }
    assert hr[("candidates", 1)] == 0.0 and hr[("candidates", 2)] == 1.0
    assert hr[("candidates:x", 1)] == pytest.approx(0.5)  # a hits at 1, b never (i3 not in x)
    assert hr[("candidates:y", 1)] == pytest.approx(0.5)  # b: i3 is y's only item
