"""A callable `extra` is evaluated once, after the table's data files are written (the ppr
stage passes one so that figures of the Spark job run by the write reach the manifest)."""

from __future__ import annotations

import json

import pyarrow as pa

from pipelines import tableio


def test_callable_extra_is_evaluated_after_the_data_is_written(tmp_path):
    calls = []

    def figures():
        # The data file exists in the (not yet committed) temporary table directory.
        parts = [p for p in tmp_path.glob(".tmp-item_ppr-*/*.parquet")]
        calls.append(len(parts))
        return {"steps": 7}

    table = pa.table(
        {
            "src": pa.array([1], pa.int32()),
            "dst": pa.array([2], pa.int32()),
            "score": [0.5],
            "rank": pa.array([1], pa.int32()),
        }
    )
    m = tableio.write_table(tmp_path, "item_ppr", table, stage="t", stage_key="k", extra=figures)
    assert calls == [1]
    assert m["extra"] == {"steps": 7}
    on_disk = json.loads((tmp_path / "item_ppr" / "_manifest.json").read_text())
    assert on_disk["extra"] == {"steps": 7}
