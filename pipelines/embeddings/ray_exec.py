"""Embed item texts on a Ray Data actor pool: the encoder loads once per actor, each call
embeds one batch of items (embeddings.ray_batch) in forward passes of embeddings.batch_size.

Placement as for the LLM stages (pipelines/llm/placement.py): one GPU per actor where the
cluster has GPUs, a fraction of a CPU otherwise. Progress: a bar over items (rate, time left)
as batches come back. Not resumable within a run: the unit of reuse is the committed table
(the stage embeds only new or changed texts).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import Config
from pipelines.llm.placement import place_actors
from pipelines.progress import ProgressLine, bar

EMBEDDING = pa.field("embedding", pa.list_(pa.float32()))


def vectors_to_arrow(vecs: np.ndarray) -> pa.ListArray:
    """(n x d) float32 -> list<float32> array of n rows of d values."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    n, d = vecs.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(vecs.reshape(-1)))


class EmbedWorker:
    """The callable class of the actor pool: (key, text) rows -> (key, embedding), the key
    being the first column (item_id, user_id)."""

    def __init__(self, spec: dict[str, Any], params: dict[str, Any]) -> None:
        import torch

        from pipelines.embeddings.encoder import load_encoder

        threads = params.get("torch_threads") or max(1, math.ceil(params.get("actor_cpus", 1)))
        # More intra-op threads than the actor's CPU share spin against each other.
        torch.set_num_threads(int(threads))
        self.params = params
        self.model, self.tok = load_encoder(spec["path"], spec["device"], spec["dtype"])

    def __call__(self, batch: pa.Table) -> pa.Table:
        from pipelines.embeddings.encoder import embed_texts

        vecs = embed_texts(
            self.model,
            self.tok,
            batch.column("text").to_pylist(),
            batch_size=self.params["batch_size"],
            max_length=self.params["max_length"],
        )
        key = batch.schema.names[0]
        return pa.table({key: batch.column(0), "embedding": vectors_to_arrow(vecs)})


def embed_on_ray(
    cfg: Config, rows: pa.Table, path: str, stage: str, log: Callable[[str], None]
) -> tuple[pa.Table, dict[str, Any]]:
    """rows (key, text) -> ((key, embedding) of every row, stats for the manifest); the key is
    the first column (item_id for items, user_id for summaries)."""
    from pipelines.ray_runtime import init_ray

    ecfg = cfg.embeddings
    init_ray(cfg.ray)
    import ray

    ctx = ray.data.DataContext.get_current()
    # Ray Data's bars redraw in place: useful on a terminal, noise in a log file.
    ctx.enable_progress_bars = sys.stderr.isatty() and cfg.run.progress_seconds > 0
    ctx.print_on_execution_start = False
    placement = place_actors(ecfg, int(ray.cluster_resources().get("GPU", 0)))
    log(
        f"{rows.num_rows} texts on {placement.actors} actor(s), {placement.resources} "
        f"({placement.reason}), {placement.device} {placement.dtype}"
    )
    # Longest texts first, so each forward pass holds texts of similar length (little
    # padding); one block per actor call, so results stream back call by call.
    order = np.argsort(-np.asarray(pc.utf8_length(rows.column("text"))), kind="stable")
    rows = rows.take(pa.array(order))
    step = max(1, ecfg.ray_batch)
    blocks = [rows.slice(i, step) for i in range(0, rows.num_rows, step)]
    params = {
        "batch_size": ecfg.batch_size,
        "max_length": ecfg.max_length,
        "actor_cpus": ecfg.actor_cpus,
        "torch_threads": ecfg.torch_threads,
    }
    ds = ray.data.from_arrow(blocks).map_batches(
        EmbedWorker,
        fn_constructor_kwargs={
            "spec": {"path": path, "device": placement.device, "dtype": placement.dtype},
            "params": params,
        },
        batch_size=step,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=placement.actors),
        **placement.resources,
    )
    line = ProgressLine(cfg.run.progress_seconds)
    parts: list[pa.Table] = []
    done, t0 = 0, time.perf_counter()
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        parts.append(batch)
        done += batch.num_rows
        elapsed = time.perf_counter() - t0
        rate = done / elapsed if elapsed else 0.0
        left = (rows.num_rows - done) / rate if rate else float("nan")
        line.update(
            f"[{stage}] embed {bar(done, rows.num_rows)} texts, {rate:.1f} texts/s, "
            f"~{left:.0f}s left",
            force=done >= rows.num_rows,
        )
    line.close()
    seconds = time.perf_counter() - t0
    empty = pa.schema([rows.schema.field(0), EMBEDDING]).empty_table()
    out = pa.concat_tables(parts) if parts else empty
    if out.num_rows != rows.num_rows:
        raise RuntimeError(f"embedded {out.num_rows} of {rows.num_rows} texts")
    stats = {
        **placement.stats(),
        "ray_seconds": round(seconds, 3),
        "items_per_s": round(rows.num_rows / seconds, 2) if seconds else None,
    }
    return out, stats


def embed_rows(cfg: Config, todo, key: str, stage: str, log: Callable[[str], None], schema: dict):
    """todo (polars: key, text, text_hash and any other columns of `schema`) -> (rows of
    `schema` with the embedding and the encoder's name, stats for the manifest); no Ray job
    when todo is empty."""
    import polars as pl

    from pipelines.embeddings.encoder import encoder_name, resolve_encoder

    if todo.height == 0:
        return pl.DataFrame(schema=schema), {}
    path, _ = resolve_encoder(cfg.embeddings.model)
    out, stats = embed_on_ray(cfg, todo.select(key, "text").to_arrow(), str(path), stage, log)
    new = (
        pl.from_arrow(out)
        .join(todo.drop("text"), on=key)
        .with_columns(pl.lit(encoder_name(cfg.embeddings.model)).alias("model"))
        .select(list(schema))
        .cast(schema)
    )
    return new, stats
