"""A nested run (Stage.nested): planned from the same registry for exactly the tables its
stage reads, run just before that stage, and part of the stage's key through its tables."""

from __future__ import annotations

import copy

import polars as pl

from pipelines import api, tableio
from pipelines.config import Config, load_config
from pipelines.plan import plan_stages
from pipelines.runner import run_stages
from pipelines.stage import Nested, Stage
from pipelines.stage_registry import STAGES
from pipelines.stages.fit_ranker import FOLDER, fit_pass_config

NB = {"item_idx": pl.Int32, "neighbor_idx": pl.Int32, "sim": pl.Float64, "rank": pl.Int32}
METRICS = {"table": ["rankings"], "metric": ["hr"], "k": [10], "segment": ["all"],
           "value": [0.5], "n_users": [3]}  # fmt: skip


def _toy_registry(log: list[str]) -> list[Stage]:
    """w writes item_neighbors (its row count: neighbors.item_k); r reads w's table in the
    nested run `sub` (config: item_k + 1) and writes metrics; u writes user_neighbors, which
    nobody reads."""

    def write_nb(ctx):
        log.append(f"{ctx.label}w")
        n = ctx.config.neighbors.item_k
        rows = [list(range(n)), [n] * n, [0.5] * n, [1] * n]
        ctx.write("item_neighbors", pl.DataFrame(rows, schema=NB))

    def read_nested(ctx):
        log.append(f"{ctx.label}r")
        rows = ctx.read_polars("sub/item_neighbors").height
        ctx.write(
            "metrics",
            pl.DataFrame({**METRICS, "n_users": [rows]}, schema_overrides={"k": pl.Int32}),
        )

    def write_user(ctx):  # pragma: no cover - never planned
        log.append("u")

    def nested(cfg: Config) -> Nested:
        sub = copy.deepcopy(cfg)
        sub.neighbors.item_k = cfg.neighbors.item_k + 1
        return Nested("sub", sub, ("item_neighbors",), why="a toy")

    return [
        Stage(name="w", fn=write_nb, outputs=("item_neighbors",), config_keys=("neighbors",),
              engine="local"),
        Stage(name="u", fn=write_user, outputs=("user_neighbors",), engine="local"),
        Stage(name="r", fn=read_nested, outputs=("metrics",), nested=nested, engine="local"),
    ]  # fmt: skip


def test_a_nested_run_is_planned_for_the_tables_its_stage_reads():
    registry = _toy_registry([])
    cfg = load_config(None, ["neighbors.item_k=3"])
    plan = plan_stages(registry, cfg, products=("metrics",))
    assert plan.names == ["r"]  # w's table is read in the nested run only
    sub = plan.nested["r"]
    assert sub.plan.names == ["w"] and sub.spec.config.neighbors.item_k == 4
    assert set(sub.plan.skipped) == {"u", "r"}
    assert sub.plan.skipped["r"] == "no planned stage reads metrics"
    assert registry[2].inputs_for(cfg) == ("sub/item_neighbors",)
    assert plan.lines()[-2:] == ["plan: r reads the run in sub/ (a toy)", "sub/plan: w"]
    assert plan.to_json()["nested"]["r"]["stages"][0] == {
        "name": "w",
        "planned": True,
        "reason": "",
    }


def test_the_nested_run_runs_first_resumes_and_keys_its_stage(tmp_path):
    log: list[str] = []
    registry = _toy_registry(log)
    reader = [registry[2]]
    cfg = load_config(None, ["neighbors.item_k=3"])
    out = run_stages(tmp_path, cfg, reader, registry=registry)
    assert out == {"sub/w": "ran", "r": "ran"} and log == ["sub/w", "r"]
    assert tableio.read_polars(tmp_path, "metrics")["n_users"].to_list() == [4]
    assert "sub/item_neighbors" in tableio.read_manifest(tmp_path, "metrics")["inputs"]
    # Nothing changed: both skip.
    assert run_stages(tmp_path, cfg, reader, registry=registry) == {
        "sub/w": "skipped",
        "r": "skipped",
    }
    # A config the nested run reads changes its table, and so the reading stage's key.
    more = load_config(None, ["neighbors.item_k=5"])
    assert run_stages(tmp_path, more, reader, registry=registry) == {"sub/w": "ran", "r": "ran"}
    assert tableio.read_polars(tmp_path, "metrics")["n_users"].to_list() == [6]
    assert log == ["sub/w", "r", "sub/w", "r"]
    # --force re-runs the stage, not its nested run.
    forced = run_stages(tmp_path, more, reader, registry=registry, force=True)
    assert forced == {"sub/w": "skipped", "r": "ran"}


SPLIT_TO_CANDIDATES = ["split", "graph", "ppr", "neighbors", "candidates"]


def test_the_fit_pass_is_the_plan_of_fit_ranker():
    cfg = load_config(None, [])
    plan = api.plan(cfg)
    fit = plan.nested["fit_ranker"]
    assert fit.spec.folder == FOLDER and fit.plan.names == SPLIT_TO_CANDIDATES
    assert fit.spec.config.eval.target == "valid" and fit.spec.config.rank.method == "fusion"
    assert fit.plan.skipped["ingest"] == "events, items linked from the parent run"
    assert fit.spec.config == fit_pass_config(cfg)
    inputs = STAGES["fit_ranker"].inputs_for(cfg)
    assert {"fit/candidates", "fit/holdout", "fit/graph_edges", "events"} <= set(inputs)
    serve = api.plan(load_config(None, ["eval.target=serve"])).nested["fit_ranker"]
    assert serve.spec.config.eval.target == "test"
    # No fit pass where nothing is fitted, even when fit_ranker is named.
    for sets in (["rank.method=fusion"], ["rank.model=/m"], ["eval.target=valid"]):
        assert api.plan(load_config(None, sets, check_paths=False)).nested == {}  # /m: no folder
    assert api.plan(load_config(None, ["rank.method=fusion"]), ["fit_ranker"]).nested == {}
    assert api.plan(cfg, ["fit_ranker"]).nested["fit_ranker"].plan.names == SPLIT_TO_CANDIDATES


def test_the_fit_pass_runs_the_llm_stages_its_features_read():
    llm = api.plan(load_config(None, ["rank.llm_feature=true"])).nested["fit_ranker"]
    assert llm.plan.names == [*SPLIT_TO_CANDIDATES, "summaries", "llm_scores"]
    assert llm.spec.config.llm.enabled
    summary = api.plan(load_config(None, ["rank.summary_feature=true"])).nested["fit_ranker"]
    assert summary.plan.names == [*SPLIT_TO_CANDIDATES, "summaries", "summary_embeddings"]
    plain = api.plan(load_config(None, [])).nested["fit_ranker"]
    assert not plain.spec.config.llm.enabled
