"""A damaged committed table (a manifest that does not parse or lacks its keys, a data file
deleted or cut short) is found before it is used: by the runner when it decides whether the
stage that wrote it is current (the stage is never skipped over it) and by every reader. The
error names the table and what is wrong; --force writes the table again, in a run nested in
the forced one too. A manifest of before sizes were recorded is checked by existence only."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import tableio
from pipelines.config import Config, load_config
from pipelines.errors import TableDamagedError
from pipelines.runner import run_stages
from pipelines.stage import Nested, Stage
from tests.table_damage import delete_a_data_file, sorted_content, truncate_a_data_file

NB = {"item_idx": pl.Int32, "neighbor_idx": pl.Int32, "sim": pl.Float64, "rank": pl.Int32}
METRICS = {"table": ["rankings"], "metric": ["hr"], "k": [10], "segment": ["all"],
           "value": [0.5]}  # fmt: skip


def _registry(log: list[str], nested: bool = False) -> list[Stage]:
    """w writes item_neighbors (neighbors.item_k rows, a value per row); r reads it (or, with
    `nested`, the nested run sub/'s) and writes metrics with its row count."""

    def write_nb(ctx):
        log.append(f"{ctx.label}w")
        n = ctx.config.neighbors.item_k
        rows = [list(range(n)), [n] * n, [0.5 + k for k in range(n)], [1] * n]
        ctx.write("item_neighbors", pl.DataFrame(rows, schema=NB))

    source = "sub/item_neighbors" if nested else "item_neighbors"

    def read_nb(ctx):
        log.append(f"{ctx.label}r")
        rows = ctx.read_polars(source).height
        ctx.write(
            "metrics",
            pl.DataFrame({**METRICS, "n_users": [rows]}, schema_overrides={"k": pl.Int32}),
        )

    def sub_run(cfg: Config) -> Nested:
        return Nested("sub", copy.deepcopy(cfg), ("item_neighbors",), why="a toy")

    return [
        Stage(name="w", fn=write_nb, outputs=("item_neighbors",), config_keys=("neighbors",),
              engine="local"),
        Stage(name="r", fn=read_nb, inputs=() if nested else ("item_neighbors",),
              outputs=("metrics",), nested=sub_run if nested else None, engine="local"),
    ]  # fmt: skip


def _bad_json(run: Path, name: str) -> str:
    (run / name / tableio.MANIFEST).write_text('{"table": "item_neighbors", "files": [')
    return "its _manifest.json does not parse (Expecting"


def _no_stage_key(run: Path, name: str) -> str:
    path = run / name / tableio.MANIFEST
    m = json.loads(path.read_text())
    del m["stage_key"]
    path.write_text(json.dumps(m))
    return "is not a manifest of this table (no 'stage_key')"


def _a_list(run: Path, name: str) -> str:
    (run / name / tableio.MANIFEST).write_text("[1, 2]")
    return "is not a manifest of this table (a JSON list, not an object)"


DAMAGE: dict[str, Callable[[Path, str], str]] = {
    "manifest not JSON": _bad_json,
    "manifest without its stage key": _no_stage_key,
    "manifest not an object": _a_list,
    "data file deleted": delete_a_data_file,
    "data file truncated": truncate_a_data_file,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_output_fails_the_run_naming_it_and_force_rebuilds_it(tmp_path, damage):
    log: list[str] = []
    registry = _registry(log)
    cfg = load_config(None, ["neighbors.item_k=5"])
    assert run_stages(tmp_path, cfg, registry, registry=registry) == {"w": "ran", "r": "ran"}
    clean = sorted_content(tmp_path, "item_neighbors")
    assert clean.num_rows == 5
    what = DAMAGE[damage](tmp_path, "item_neighbors")

    with pytest.raises(TableDamagedError) as failed:
        run_stages(tmp_path, cfg, registry, registry=registry)
    line = str(failed.value).splitlines()[0]
    assert line.startswith(f"table 'item_neighbors' in {tmp_path} is damaged: ")
    assert what in line
    assert any(p.name.startswith("v-") for p in (tmp_path / "item_neighbors").iterdir())
    assert "--force" in failed.value.hint
    assert log == ["w", "r"]  # neither skipped over the damage nor run on it

    forced = run_stages(tmp_path, cfg, registry, registry=registry, force=True)
    assert forced == {"w": "ran", "r": "ran"} and log == ["w", "r", "w", "r"]
    assert sorted_content(tmp_path, "item_neighbors").equals(clean)
    assert tableio.verify_table(tmp_path, "item_neighbors")["rows"] == 5
    # Repaired: the next run finds everything current.
    assert run_stages(tmp_path, cfg, registry, registry=registry) == {
        "w": "skipped",
        "r": "skipped",
    }


@pytest.mark.parametrize(
    "damage", ["data file deleted", "data file truncated", "manifest not JSON"]
)
def test_every_reader_names_the_damaged_table_before_reading_it(tmp_path, damage):
    registry = _registry([])
    run_stages(tmp_path, load_config(None, ["neighbors.item_k=5"]), registry[:1], registry=registry)
    what = DAMAGE[damage](tmp_path, "item_neighbors")
    for read in (
        lambda: tableio.read_arrow(tmp_path, "item_neighbors"),
        lambda: tableio.read_polars(tmp_path, "item_neighbors"),
        lambda: tableio.scan_polars(tmp_path, "item_neighbors"),
        lambda: tableio.verify_table(tmp_path, "item_neighbors"),
    ):
        with pytest.raises(TableDamagedError, match="table 'item_neighbors' .* is damaged") as e:
            read()
        assert what in str(e.value)


def test_a_manifest_of_before_sizes_is_checked_by_existence(tmp_path):
    """Manifests listed bare paths before they recorded sizes: such a table is still read,
    a missing file is still found; a file cut short is found by its reader, not the check."""
    tableio.write_table(tmp_path, "item_ppr", _ppr(3), stage="t", stage_key="k")
    path = tmp_path / "item_ppr" / tableio.MANIFEST
    m = json.loads(path.read_text())
    m["files"] = [e["path"] for e in m["files"]]
    path.write_text(json.dumps(m))
    data = tmp_path / "item_ppr" / m["files"][0]
    whole = data.read_bytes()
    assert tableio.read_arrow(tmp_path, "item_ppr").column("src").to_pylist() == [0, 1, 2]
    data.write_bytes(whole[:-8])
    assert tableio.verify_table(tmp_path, "item_ppr")["rows"] == 3  # no size to compare
    data.unlink()
    with pytest.raises(TableDamagedError, match=f"data file {data} is missing"):
        tableio.verify_table(tmp_path, "item_ppr")


def _ppr(n: int) -> pa.Table:
    return pa.table(
        {
            "src": pa.array(range(n), pa.int32()),
            "dst": pa.array([9] * n, pa.int32()),
            "score": [0.5] * n,
            "rank": pa.array([1] * n, pa.int32()),
        }
    )


def test_sizes_are_recorded_at_commit(tmp_path):
    m = tableio.write_table(tmp_path, "item_ppr", _ppr(4), stage="t", stage_key="k")
    for entry in m["files"]:
        assert entry["size"] == (tmp_path / "item_ppr" / entry["path"]).stat().st_size
    assert pq.read_table(tmp_path / "item_ppr" / m["files"][0]["path"]).num_rows == 4


def test_force_repairs_a_damaged_table_of_a_nested_run_and_reruns_nothing_else(tmp_path):
    """--force re-runs the forced run's stages, not its nested run's (they are skipped as in
    any run), except a nested stage whose output is damaged."""
    log: list[str] = []
    registry = _registry(log, nested=True)
    reader = [registry[1]]
    cfg = load_config(None, ["neighbors.item_k=4"])
    assert run_stages(tmp_path, cfg, reader, registry=registry) == {"sub/w": "ran", "r": "ran"}
    sub = tmp_path / "sub"
    clean = sorted_content(sub, "item_neighbors")
    assert run_stages(tmp_path, cfg, reader, registry=registry, force=True) == {
        "sub/w": "skipped",
        "r": "ran",
    }
    what = truncate_a_data_file(sub, "item_neighbors")
    with pytest.raises(TableDamagedError) as failed:
        run_stages(tmp_path, cfg, reader, registry=registry)
    assert str(failed.value).startswith(f"table 'item_neighbors' in {sub} is damaged: {what}")
    assert log == ["sub/w", "r", "r"]
    forced = run_stages(tmp_path, cfg, reader, registry=registry, force=True)
    assert forced == {"sub/w": "ran", "r": "ran"} and log[-2:] == ["sub/w", "r"]
    assert sorted_content(sub, "item_neighbors").equals(clean)
    assert run_stages(tmp_path, cfg, reader, registry=registry) == {
        "sub/w": "skipped",
        "r": "skipped",
    }
