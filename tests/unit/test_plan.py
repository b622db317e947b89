"""The run plan: a stage runs only when an enabled consumer reads what it writes."""

from __future__ import annotations

import pytest

from pipelines import api
from pipelines.config import load_config

ALL = ["ingest", "split", "graph", "ppr", "neighbors", "candidates", "evaluate"]
LEARNED = [*ALL[:-1], "fit_ranker", "rank", "evaluate"]
FUSION = "rank.method=fusion"


@pytest.mark.parametrize(
    ("sets", "planned"),
    [
        ([FUSION, "candidates.sources=[]"], ["ingest", "split", "candidates", "evaluate"]),
        (
            [FUSION, 'candidates.sources=["transition"]'],
            ["ingest", "split", "graph", "candidates", "evaluate"],
        ),
        (
            [FUSION, 'candidates.sources=["ppr"]'],
            ["ingest", "split", "graph", "ppr", "candidates", "evaluate"],
        ),
        (
            [FUSION, 'candidates.sources=["user_cf"]'],
            ["ingest", "split", "neighbors", "candidates", "evaluate"],
        ),
        ([FUSION], ALL),
        ([], LEARNED),  # the defaults: every source, the learned ranker
        # The learned ranker reads the graph (transition features) whatever the sources.
        (
            ['candidates.sources=["user_cf"]'],
            [
                "ingest",
                "split",
                "graph",
                "neighbors",
                "candidates",
                "fit_ranker",
                "rank",
                "evaluate",
            ],
        ),  # fmt: skip
        (["rank.model=/m"], [*ALL[:-1], "rank", "evaluate"]),  # a fitted model reused
        (
            [FUSION, "rank.llm_weight=0.5"],
            [*ALL[:-1], "summaries", "llm_scores", "rank", "evaluate"],
        ),
        (["eval.target=valid"], [*ALL[:-1], "summaries", "llm_scores", "rank", "evaluate"]),
        (["eval.target=valid", "llm.enabled=false"], ALL),
        (["eval.target=serve"], LEARNED),
        # The summary feature: summaries and both embedding tables, no LLM scores.
        (
            ["rank.summary_feature=true"],
            [
                *ALL[:5],
                "item_embeddings",
                "candidates",
                "fit_ranker",
                "summaries",
                "summary_embeddings",
                "rank",
                "evaluate",
            ],
        ),  # fmt: skip
        (["rank.summary_feature=true", "llm.enabled=false"], LEARNED),
        (["rank.summary_feature=true", FUSION], ALL),
    ],
)
def test_plan_follows_the_config(sets, planned):
    plan = api.plan(load_config(None, sets, check_paths=False))  # rank.model=/m: no folder
    assert plan.names == planned
    assert set(plan.names) | set(plan.skipped) == {
        "ingest", "split", "graph", "ppr", "neighbors", "item_embeddings", "candidates",
        "fit_ranker", "summaries", "summary_embeddings", "llm_scores", "rank", "evaluate",
    }  # fmt: skip
    # Only the text and summary features read item_embeddings.
    if "item_embeddings" not in plan.names:
        assert plan.skipped["item_embeddings"] == "no planned stage reads item_embeddings"


def test_skipped_stages_say_why():
    plan = api.plan(load_config(None, [FUSION, "candidates.sources=[]"]))
    assert plan.skipped["graph"].startswith("no planned stage reads graph_nodes, graph_edges")
    assert "transition" in plan.skipped["graph"] and "ppr" in plan.skipped["graph"]
    assert "item_cf" in plan.skipped["neighbors"]
    assert plan.skipped["rank"].startswith("rank.llm_weight = 0")
    assert plan.skipped["summaries"] == plan.skipped["rank"]
    assert plan.skipped["fit_ranker"] == "rank.method = fusion"
    valid = api.plan(load_config(None, ["eval.target=valid"]))
    assert valid.skipped["fit_ranker"].startswith("eval.target = valid: no earlier event")
    off = api.plan(load_config(None, ["llm.enabled=false"]))
    assert off.skipped["llm_scores"] == "llm.enabled = false"
    lines = plan.lines()
    assert lines[0] == "plan: ingest > split > candidates > evaluate"
    assert "plan: skip ppr: no planned stage reads item_ppr" in "\n".join(lines)


def test_stages_option_forces_the_subset():
    plan = api.plan(load_config(None, ["candidates.sources=[]"]), ["graph", "ingest"])
    assert plan.forced and plan.names == ["ingest", "graph"] and plan.skipped == {}
    assert plan.lines() == ["plan (--stages): ingest > graph"]


def test_plan_json_lists_every_stage():
    doc = api.plan(load_config(None, [FUSION])).to_json()
    rows = {r["name"]: r for r in doc["stages"]}
    assert rows["ppr"]["planned"] and not rows["rank"]["planned"] and rows["rank"]["reason"]
