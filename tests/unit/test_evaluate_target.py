"""evaluate refuses a target other than the one the run's split was made for."""

from __future__ import annotations

import datetime as dt

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
        [{"user_id": "a", "item_id": "i0", "ts": TS, "user_idx": 0, "item_idx": 0}],
        EVENTS.schema,
    )
    write(
        "holdout",
        [
            {"user_id": "a", "item_id": "i1", "ts": TS, "split": "valid"},
            {"user_id": "a", "item_id": "i2", "ts": TS, "split": "test"},
        ],
        HOLDOUT.schema,
    )
    write(
        "rankings",
        [],
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
    _run(tmp_path, "test")
    m = evaluate_run(tmp_path, ["rankings"], [1], "test")
    assert m.height > 0


def test_another_target_is_refused_with_both_named(tmp_path, capsys):
    _run(tmp_path, "test")
    with pytest.raises(ConfigError, match=r"split for eval.target 'test', not 'valid'"):
        evaluate_run(tmp_path, ["rankings"], [1], "valid")
    assert main(["evaluate", str(tmp_path), "--target", "valid", "--k", "1"]) == 2
    err = capsys.readouterr().err
    assert "error: run" in err and "--target test" in err and "Traceback" not in err
