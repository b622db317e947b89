"""Stage.config_inputs: inputs that only some configs read order, gate and key the stage."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines import tableio
from pipelines.config import Config, load_config
from pipelines.errors import StageOrderError
from pipelines.plan import order_stages
from pipelines.runner import run_stages
from pipelines.stage import Stage
from pipelines.stage_registry import STAGES

NB = {"item_idx": pl.Int32, "neighbor_idx": pl.Int32, "sim": pl.Float64, "rank": pl.Int32}
METRICS = {
    "table": ["rankings"],
    "metric": ["hr"],
    "k": [10],
    "segment": ["all"],
    "value": [0.5],
    "n_users": [3],
}


def _writer(name: str, n: int):
    def fn(ctx):
        rows = [list(range(n)), [n] * n, [0.5] * n, [1] * n]
        ctx.write("item_neighbors", pl.DataFrame(rows, schema=NB))

    return Stage(name=name, fn=fn, outputs=("item_neighbors",), engine="local")


def _reader(calls: list[str]):
    def fn(ctx):
        calls.append("read")
        ctx.write("metrics", pl.DataFrame(METRICS, schema_overrides={"k": pl.Int32}))

    def extra(cfg: Config) -> tuple[str, ...]:
        return ("item_neighbors",) if "item_cf" in cfg.candidates.sources else ()

    return Stage(name="r", fn=fn, outputs=("metrics",), config_inputs=extra, engine="local")


def test_optional_input_orders_gates_and_keys_the_stage(tmp_path):
    calls: list[str] = []
    reader = _reader(calls)
    plain = load_config(None, ["candidates.sources=[]"])  # popular only
    with_opt = load_config(None, ['candidates.sources=["item_cf"]'])
    # Not enabled: the stage needs nothing and runs alone.
    assert run_stages(tmp_path, plain, [reader]) == {"r": "ran"}
    # Enabled: the producer is ordered first even when listed last ...
    writer = _writer("w", 1)
    assert [s.name for s in order_stages([reader, writer], with_opt)] == ["w", "r"]
    assert [s.name for s in order_stages([reader, writer], plain)] == ["r", "w"]
    # ... a missing optional table is a clear error ...
    with pytest.raises(StageOrderError, match="item_neighbors"):
        run_stages(tmp_path / "b", with_opt, [reader])
    # ... and a new version of it (another row count here) re-runs the stage, the same skips.
    assert run_stages(tmp_path, with_opt, [reader, writer]) == {"w": "ran", "r": "ran"}
    assert run_stages(tmp_path, with_opt, [reader, writer]) == {"w": "skipped", "r": "skipped"}
    run_stages(tmp_path, with_opt, [_writer("w", 2)], force=True)
    assert run_stages(tmp_path, with_opt, [reader]) == {"r": "ran"}
    assert len(calls) == 3
    assert "item_neighbors" in tableio.read_manifest(tmp_path, "metrics")["inputs"]


def test_candidates_declares_the_tables_of_enabled_sources():
    cfg = load_config(None, ['candidates.sources=["popular","item_cf","transition"]'])
    assert set(STAGES["candidates"].inputs_for(cfg)) == {
        "events",
        "train",
        "items",
        "item_neighbors",
        "graph_edges",
    }
    popular_only = load_config(None, ["candidates.sources=[]"])
    assert STAGES["candidates"].inputs_for(popular_only) == ("events", "train", "items")
