"""A callable `extra` is evaluated once, after the table's data files are written (the ppr
stage passes one so that figures of the Spark job run by the write reach the manifest)."""

from __future__ import annotations

import json

import pyarrow as pa

from pipelines import tableio


def test_callable_extra_is_evaluated_after_the_data_is_written(tmp_path):
    calls = []

    def figures():
        # The data file exists in the (not yet committed) version folder.
        parts = [p for p in tmp_path.glob("item_ppr/v-*/*.parquet")]
        assert not (tmp_path / "item_ppr" / "_manifest.json").exists()
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


def _ppr_rows(src: list[int]) -> pa.Table:
    n = len(src)
    return pa.table(
        {
            "src": pa.array(src, pa.int32()),
            "dst": pa.array([9] * n, pa.int32()),
            "score": [0.5] * n,
            "rank": pa.array([1] * n, pa.int32()),
        }
    )


def test_files_writer_commits_the_files_in_name_order_without_temp_files(tmp_path):
    import pyarrow.parquet as pq

    def write(out):
        pq.write_table(_ppr_rows([3, 4]), out / "part-00007.parquet")
        pq.write_table(_ppr_rows([1]), out / "part-00002.parquet")
        (out / ".part-00009-dead.tmp").write_bytes(b"half a file")  # a killed attempt's

    m = tableio.write_table(
        tmp_path, "item_ppr", tableio.FilesWriter(write), stage="t", stage_key="k"
    )
    v = m["version"]
    assert m["rows"] == 3
    assert [f["path"] for f in m["files"]] == [f"{v}/part-00000.parquet", f"{v}/part-00001.parquet"]
    assert tableio.read_arrow(tmp_path, "item_ppr").column("src").to_pylist() == [1, 3, 4]
    assert sorted(p.name for p in (tmp_path / "item_ppr").iterdir()) == ["_manifest.json", v]
    assert sorted(p.name for p in (tmp_path / "item_ppr" / v).iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]


def test_files_writer_with_no_files_is_an_empty_table_and_checks_the_contract(tmp_path):
    import pyarrow.parquet as pq
    import pytest

    from schemas.contract import ContractError

    m = tableio.write_table(
        tmp_path, "item_ppr", tableio.FilesWriter(lambda out: None), stage="t", stage_key="k"
    )
    assert m["rows"] == 0 and m["files"] == []
    assert tableio.read_arrow(tmp_path, "item_ppr").num_rows == 0

    def wrong(out):
        pq.write_table(pa.table({"src": [1.5]}), out / "part-00000.parquet")

    with pytest.raises(ContractError, match="src"):
        tableio.write_table(
            tmp_path, "item_ppr", tableio.FilesWriter(wrong), stage="t", stage_key="k2"
        )
    assert tableio.read_manifest(tmp_path, "item_ppr")["stage_key"] == "k"  # old one kept


def test_manifest_seconds_run_from_the_stage_start_to_the_end_of_the_write(tmp_path, monkeypatch):
    """A FilesWriter (or a lazy Spark job) does its work inside the write: the stage's time
    in the manifest must include it (it used to be taken before the write started). The
    clock tableio reads is one that moves only when the test says: 7 s pass inside each write
    (its files being written), none anywhere else, so every figure is exact."""
    import types

    import pyarrow.parquet as pq

    now = [100.0]
    monkeypatch.setattr(tableio, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def slow(out):
        now[0] += 7.0
        pq.write_table(_ppr_rows([1]), out / "part-00000.parquet")

    # The stage started 3 s before this write: 3 s before it + 7 s in it.
    m = tableio.write_table(
        tmp_path, "item_ppr", tableio.FilesWriter(slow), stage="t", stage_key="k",
        stage_started=now[0] - 3.0,
    )  # fmt: skip
    assert m["seconds"] == 10.0
    # No stage start: the write's own time, its work included.
    own = tableio.write_table(
        tmp_path, "item_ppr", tableio.FilesWriter(slow), stage="t", stage_key="k"
    )
    assert own["seconds"] == 7.0
    # Given seconds are taken as they are.
    fixed = tableio.write_table(
        tmp_path, "item_ppr", _ppr_rows([1]), stage="t", stage_key="k", seconds=4.5,
        stage_started=now[0] - 3.0,
    )  # fmt: skip
    assert fixed["seconds"] == 4.5
