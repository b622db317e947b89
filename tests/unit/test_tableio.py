import json

import polars as pl
import pyarrow as pa
import pytest

from pipelines import tableio
from pipelines.errors import TableNotCommittedError
from schemas import SCHEMA_VERSION, ContractError


def _rankings(n=3):
    return pl.DataFrame(
        {
            "user_id": ["u"] * n,
            "item_id": [f"i{k}" for k in range(n)],
            "rank": list(range(1, n + 1)),
            "score": [1.0 / (k + 1) for k in range(n)],
        },
        schema_overrides={"rank": pl.Int32},
    )


def test_write_then_read_with_manifest(tmp_path):
    m = tableio.write_table(
        tmp_path, "rankings", _rankings(), stage="t", stage_key="k", inputs={"x": "1"}
    )
    assert m["rows"] == 3 and m["schema_version"] == SCHEMA_VERSION
    on_disk = json.loads((tmp_path / "rankings" / "_manifest.json").read_text())
    assert on_disk == m
    assert tableio.read_polars(tmp_path, "rankings").equals(_rankings())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_table_without_manifest_does_not_exist(tmp_path):
    (tmp_path / "rankings").mkdir()
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "rankings" / "part-00000.parquet")
    with pytest.raises(TableNotCommittedError, match="without a manifest"):
        tableio.read_arrow(tmp_path, "rankings")
    with pytest.raises(TableNotCommittedError, match="does not exist"):
        tableio.read_arrow(tmp_path, "metrics")


def test_contract_violation_names_the_column_and_leaves_old_table(tmp_path):
    tableio.write_table(tmp_path, "rankings", _rankings(), stage="t", stage_key="k")
    bad = _rankings().with_columns(pl.col("rank").cast(pl.Utf8))
    with pytest.raises(ContractError, match="'rank'"):
        tableio.write_table(tmp_path, "rankings", bad, stage="t", stage_key="k2")
    assert tableio.read_manifest(tmp_path, "rankings")["stage_key"] == "k"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_overwrite_replaces_whole_table(tmp_path):
    tableio.write_table(tmp_path, "rankings", _rankings(5), stage="t", stage_key="a")
    tableio.write_table(tmp_path, "rankings", _rankings(2), stage="t", stage_key="b")
    assert tableio.read_arrow(tmp_path, "rankings").num_rows == 2
    assert tableio.read_manifest(tmp_path, "rankings")["stage_key"] == "b"


def test_missing_required_column_is_named(tmp_path):
    with pytest.raises(ContractError, match="missing column 'score'"):
        tableio.write_table(
            tmp_path, "rankings", _rankings().drop("score"), stage="t", stage_key="k"
        )


def test_extra_columns_are_kept_and_types_conformed(tmp_path):
    df = _rankings().with_columns(pl.col("rank").cast(pl.Int64), pl.lit(0.5).alias("score_ppr"))
    with pytest.raises(ContractError):
        tableio.write_table(tmp_path, "rankings", df, stage="t", stage_key="k")
    t = _rankings().with_columns(pl.lit(0.5).alias("score_ppr")).to_arrow()
    tableio.write_table(tmp_path, "rankings", t, stage="t", stage_key="k")
    back = tableio.read_arrow(tmp_path, "rankings")
    assert back.schema.field("rank").type == pa.int32()
    assert "score_ppr" in back.column_names


def test_clean_uncommitted_removes_only_temp_siblings(tmp_path):
    tableio.write_table(tmp_path, "rankings", _rankings(), stage="t", stage_key="k")
    (tmp_path / ".tmp-metrics-123").mkdir()
    assert tableio.clean_uncommitted(tmp_path) == [".tmp-metrics-123"]
    assert tableio.is_committed(tmp_path, "rankings")


def test_only_a_committed_table_of_that_name_is_ever_replaced(tmp_path):
    from pipelines.errors import RunDirError

    mine = tmp_path / "rankings"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's folder that happens to be named like a table")
    with pytest.raises(RunDirError, match="not a committed WalkRank table 'rankings'"):
        tableio.write_table(tmp_path, "rankings", _rankings(), stage="t", stage_key="k")
    assert (mine / "notes.txt").exists() and not list(tmp_path.glob(".tmp-*"))
    # A manifest of another table does not make it ours either.
    (mine / "_manifest.json").write_text(json.dumps({"table": "events"}))
    with pytest.raises(RunDirError):
        tableio.write_table(tmp_path, "rankings", _rankings(), stage="t", stage_key="k")
    # Our own committed table is replaced as before.
    other = tmp_path / "r2"
    tableio.write_table(other, "rankings", _rankings(2), stage="t", stage_key="k")
    tableio.write_table(other, "rankings", _rankings(3), stage="t", stage_key="k2")
    assert tableio.read_manifest(other, "rankings")["rows"] == 3


def test_run_ids_stay_inside_out(tmp_path):
    from pipelines.errors import RunDirError
    from pipelines.run_dir import resolve_run_dir

    got = resolve_run_dir(tmp_path, "2026-11-30_a.b")
    assert got.local_path == (tmp_path / "2026-11-30_a.b").resolve()
    assert str(resolve_run_dir("s3a://bucket/runs", "d1")) == "s3://bucket/runs/d1"
    for bad in ("..", ".", "../x", "a/b", "", "a b", "x;rm"):
        with pytest.raises(RunDirError):
            resolve_run_dir(tmp_path, bad)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(RunDirError, match="outside --out"):
        resolve_run_dir(tmp_path, "link")
