"""The callable classes Ray Data runs in its actor pool: the model loads once in __init__,
each call handles one batch of users (a pyarrow table) and returns their output rows.

A user whose work raises (anything but out-of-memory, which halves the batch instead) gets
its rows with a null result and the error text in `error`; the batch and the job go on.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from pipelines.llm.encode import PromptEncoder
from udfs.prompts import parse_summary, score_messages, split_at_slot, summary_messages

SUMMARY_OUT = pa.schema(
    [
        ("user_id", pa.string()),
        ("shard", pa.int32()),
        ("summary", pa.string()),
        ("n_history", pa.int32()),
        ("error", pa.string()),
    ]
)
SCORE_OUT = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("shard", pa.int32()),
        ("llm_score", pa.float64()),
        ("error", pa.string()),
    ]
)


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class _ModelWorker:
    def __init__(self, spec: dict[str, str], params: dict[str, Any]) -> None:
        import torch

        from pipelines.llm.model import ModelSpec, load_model

        threads = params.get("torch_threads") or max(1, math.ceil(params.get("actor_cpus", 1)))
        # More intra-op threads than the actor's CPU share spin against each other instead of
        # working (benchmarks/RESULTS.md, "LLM stages", has the measured cost).
        torch.set_num_threads(int(threads))
        self.params = params
        self.model, self.tok = load_model(ModelSpec(**spec))
        self.enc = PromptEncoder(self.tok)
        self.state: dict[str, int] = {}


class SummaryWorker(_ModelWorker):
    def __call__(self, batch: pa.Table) -> pa.Table:
        from pipelines.llm.infer import generate

        rows = batch.to_pylist()
        prompts = [self.enc.chat_ids(summary_messages(r["history"], self.enc.mark)) for r in rows]
        kw = {
            "pad_id": self.tok.pad_token_id,
            "max_new_tokens": self.params["max_new_tokens"],
            "batch": self.params["batch_size"],
            "state": self.state,
        }
        try:
            outs: list[Any] = generate(self.model, prompts, **kw)
        except Exception:
            # Isolate the failing prompt(s): one at a time, each failure becomes its own row.
            outs = []
            for p in prompts:
                try:
                    outs.append(generate(self.model, [p], **kw)[0])
                except Exception as exc:
                    outs.append(exc)
        result = []
        for r, o in zip(rows, outs, strict=True):
            failed = isinstance(o, BaseException)
            text = "" if failed else self.tok.decode(o, skip_special_tokens=True)
            result.append(
                {
                    "user_id": r["user_id"],
                    "shard": r["shard"],
                    "summary": parse_summary(text, self.params["max_chars"]),
                    "n_history": len(r["history"]),
                    "error": _err(o) if failed else None,
                }
            )
        return pa.Table.from_pylist(result, schema=SUMMARY_OUT)


class ScoreWorker(_ModelWorker):
    def __init__(self, spec: dict[str, str], params: dict[str, Any]) -> None:
        super().__init__(spec, params)
        enc = self.tok.encode
        self.yes_no = (
            enc("yes", add_special_tokens=False)[0],
            enc("no", add_special_tokens=False)[0],
        )

    def score_user(self, summary: str | None, history: list[str], candidates: list[str]):
        from pipelines.llm.infer import score_padded, score_shared_prefix

        scorer = self.params["scorer"]
        rendered = self.enc.render(score_messages(summary, history, scorer, self.enc.mark))
        prefix = None
        suffixes = []
        for c in candidates:
            pre, suf = split_at_slot(rendered, self.enc.mark(c), scorer)
            prefix = pre
            suffixes.append(self.enc.encode(suf))
        prefix_ids = self.enc.encode(prefix)
        fn = score_shared_prefix if self.params["batching"] == "shared_prefix" else score_padded
        return fn(
            self.model,
            prefix_ids,
            suffixes,
            scorer=scorer,
            yes_no=self.yes_no,
            pad_id=self.tok.pad_token_id,
            batch=self.params["pair_batch"],
            state=self.state,
        )

    def __call__(self, batch: pa.Table) -> pa.Table:
        result = []
        for r in batch.to_pylist():
            try:
                scores: list[Any] = self.score_user(r["summary"], r["history"], r["candidates"])
                error = None
            except Exception as exc:
                scores, error = [None] * len(r["item_ids"]), _err(exc)
            for item, s in zip(r["item_ids"], scores, strict=True):
                result.append(
                    {
                        "user_id": r["user_id"],
                        "item_id": item,
                        "shard": r["shard"],
                        "llm_score": s,
                        "error": error,
                    }
                )
        return pa.Table.from_pylist(result, schema=SCORE_OUT)
