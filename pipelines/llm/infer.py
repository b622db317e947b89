"""Batched inference kernels on a loaded model: pointwise scoring and greedy generation.

Scoring takes one user's token prefix and many candidate suffixes (already tokenised):

- shared_prefix: the prefix runs once with use_cache; its KV cache is repeated over a batch
  of suffixes, so each candidate costs only its own tokens. Suffixes are left-padded *after*
  the prefix (masked gap, positions continue from the real tokens), so every row's last
  real token is the last column and only that column's logits are computed for yes/no.
- padded: the plain baseline, prefix + suffix per row, left-padded, one forward per batch.

Both see identical token sequences and give the same scores up to float rounding (a test
holds them to it). Batches halve on out-of-memory instead of failing (`adaptive_map`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in OOM_MARKERS)


def adaptive_map(
    fn: Callable[[Sequence[Any]], list[Any]], items: Sequence[Any], batch: int, state: dict
) -> list[Any]:
    """fn over items in chunks of `batch`; an out-of-memory error halves the chunk and retries.

    `state["batch"]` keeps the reduced size across calls (an actor's later batches start
    small); `state["halvings"]` counts the reductions. A chunk of one that still runs out of
    memory raises."""
    size = max(1, min(batch, state.get("batch", batch)))
    out: list[Any] = []
    i = 0
    while i < len(items):
        chunk = items[i : i + size]
        try:
            out.extend(fn(chunk))
        except Exception as exc:
            if not is_oom(exc) or size == 1:
                raise
            size = max(1, size // 2)
            state["batch"] = size
            state["halvings"] = state.get("halvings", 0) + 1
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        i += len(chunk)
    return out


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        if s:
            ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[r, width - len(s) :] = 1
    return ids, mask


def _suffix_scores(
    logits: torch.Tensor,
    suffixes: Sequence[Sequence[int]],
    scorer: str,
    yes_no: tuple[int, int],
    before: torch.Tensor | None,
) -> list[float]:
    """logits (B, W, V) over the last W columns, suffixes right-aligned in them.

    yes_no: logit(yes) - logit(no) at the last column.
    title_loglik: mean log p of the suffix tokens; token j is predicted by column j-1, the
    first one by `before` (the logits at the prefix's last token, (B, V) or (1, V))."""
    if scorer == "yes_no":
        last = logits[:, -1, :].float()
        return (last[:, yes_no[0]] - last[:, yes_no[1]]).tolist()
    logp = torch.log_softmax(logits.float(), dim=-1)
    first = torch.log_softmax(before.float(), dim=-1)
    width = logits.shape[1]
    out = []
    for r, s in enumerate(suffixes):
        n = len(s)
        total = first[min(r, first.shape[0] - 1), s[0]]
        if n > 1:
            cols = torch.arange(width - n, width - 1)
            total = total + logp[r, cols, torch.tensor(s[1:])].sum()
        out.append(float(total) / n)
    return out


@torch.inference_mode()
def score_shared_prefix(
    model: Any,
    prefix: Sequence[int],
    suffixes: Sequence[Sequence[int]],
    *,
    scorer: str,
    yes_no: tuple[int, int],
    pad_id: int,
    batch: int,
    state: dict | None = None,
) -> list[float]:
    """Scores of `suffixes` after one shared `prefix`, its KV cache computed once."""
    state = state if state is not None else {}
    dev = model.device
    p = len(prefix)
    pre = model(input_ids=torch.tensor([list(prefix)], device=dev), use_cache=True)
    cache = getattr(pre, "cache", None)
    cache = pre.past_key_values if cache is None else cache
    before = pre.logits[:, -1, :]
    # Recent transformers renamed the forward's `past_key_values` to `cache`.
    cache_arg = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    )

    def run(chunk: Sequence[Sequence[int]]) -> list[float]:
        ids, mask = _left_pad(chunk, pad_id)
        b, w = ids.shape
        kv = copy.deepcopy(cache)
        kv.batch_repeat_interleave(b)
        full_mask = torch.cat([torch.ones((b, p), dtype=torch.long), mask], dim=1)
        # Padding sits between prefix and suffix: real tokens continue at position p.
        pos = (p + mask.cumsum(dim=1) - 1).clamp(min=p)
        out = model(
            input_ids=ids.to(dev),
            attention_mask=full_mask.to(dev),
            position_ids=pos.to(dev),
            **{cache_arg: kv},
            use_cache=True,
            logits_to_keep=1 if scorer == "yes_no" else 0,
        )
        return _suffix_scores(out.logits, chunk, scorer, yes_no, before)

    return adaptive_map(run, list(suffixes), batch, state)


@torch.inference_mode()
def score_padded(
    model: Any,
    prefix: Sequence[int],
    suffixes: Sequence[Sequence[int]],
    *,
    scorer: str,
    yes_no: tuple[int, int],
    pad_id: int,
    batch: int,
    state: dict | None = None,
) -> list[float]:
    """The baseline: each row is prefix + suffix, left-padded; no state shared across rows."""
    state = state if state is not None else {}
    dev = model.device

    def run(chunk: Sequence[Sequence[int]]) -> list[float]:
        ids, mask = _left_pad([list(prefix) + list(s) for s in chunk], pad_id)
        pos = (mask.cumsum(dim=1) - 1).clamp(min=0)
        keep = 1 if scorer == "yes_no" else max(len(s) for s in chunk) + 1
        out = model(
            input_ids=ids.to(dev),
            attention_mask=mask.to(dev),
            position_ids=pos.to(dev),
            logits_to_keep=keep,
        )
        logits = out.logits
        if scorer == "yes_no":
            return _suffix_scores(logits, chunk, scorer, yes_no, None)
        # Column j of the kept window predicts token j+1; the first suffix token is predicted
        # by the prefix's last token, which is the column just before each row's suffix.
        width = logits.shape[1]
        before = torch.stack([logits[r, width - len(s) - 1] for r, s in enumerate(chunk)])
        return _suffix_scores(logits, chunk, scorer, yes_no, before)

    return adaptive_map(run, list(suffixes), batch, state)


@torch.inference_mode()
def generate(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    pad_id: int,
    max_new_tokens: int,
    batch: int,
    state: dict | None = None,
) -> list[list[int]]:
    """Greedy continuations of tokenised prompts, left-padded per batch; -> new token ids."""
    state = state if state is not None else {}
    dev = model.device
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    def run(chunk: Sequence[Sequence[int]]) -> list[list[int]]:
        ids, mask = _left_pad(chunk, pad_id)
        out = model.generate(
            input_ids=ids.to(dev),
            attention_mask=mask.to(dev),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
        )
        new = out[:, ids.shape[1] :].tolist()
        res = []
        for row in new:
            cut = next((k for k, t in enumerate(row) if t in eos_ids), len(row))
            res.append(row[:cut])
        return res

    return adaptive_map(run, list(prompts), batch, state)
