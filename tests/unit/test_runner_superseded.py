"""A table written by one stage and refined by a later one (`rankings`: candidates, then
rank) does not make the first stage stale on a re-run; a real change still does."""

from __future__ import annotations

import pyarrow as pa

from pipelines import tableio
from pipelines.config import load_config
from pipelines.runner import run_stages
from pipelines.stage import Stage
from schemas.tables import CANDIDATES, RANKINGS

CALLS: list[str] = []


def _cands(ctx):
    CALLS.append("cands")
    n = ctx.config.candidates.top_n
    t = pa.table(
        {
            "user_id": ["u"] * n,
            "item_id": [f"i{k}" for k in range(n)],
            "rank": list(range(1, n + 1)),
            "score": [float(n - k) for k in range(n)],
            "sources": [["popular"]] * n,
        },
        schema=CANDIDATES.schema,
    )
    ctx.write("candidates", t)
    ctx.write("rankings", t.select(["user_id", "item_id", "rank", "score"]))


def _rank(ctx):
    CALLS.append("rank")
    t = ctx.read_arrow("candidates").select(["user_id", "item_id", "rank", "score"])
    reversed_rank = pa.array([t.num_rows + 1 - r for r in t.column("rank").to_pylist()], pa.int32())
    ctx.write("rankings", t.set_column(2, "rank", reversed_rank).cast(RANKINGS.schema))


A = Stage("a", _cands, outputs=("candidates", "rankings"), config_keys=("candidates",))
B = Stage("b", _rank, inputs=("candidates",), outputs=("rankings",), engine="local")


def test_refined_output_keeps_the_first_stage_current(tmp_path):
    CALLS.clear()
    cfg = load_config(None, ["candidates.top_n=3"])
    assert run_stages(tmp_path, cfg, [A, B]) == {"a": "ran", "b": "ran"}
    assert tableio.read_manifest(tmp_path, "rankings")["stage"] == "b"
    assert run_stages(tmp_path, cfg, [A, B]) == {"a": "skipped", "b": "skipped"}
    assert tableio.read_polars(tmp_path, "rankings")["rank"].to_list() == [3, 2, 1]
    # a config change of the first stage re-runs both
    cfg2 = load_config(None, ["candidates.top_n=4"])
    assert run_stages(tmp_path, cfg2, [A, B]) == {"a": "ran", "b": "ran"}
    assert CALLS == ["cands", "rank", "cands", "rank"]
    # the first stage alone, after the refinement: still current, nothing rewritten
    assert run_stages(tmp_path, cfg2, [A]) == {"a": "skipped"}
    assert tableio.read_manifest(tmp_path, "rankings")["stage"] == "b"
