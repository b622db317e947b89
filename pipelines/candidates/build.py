"""Every enabled source's per-user list, fused into one ranked list per user (ids attached)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from pipelines.candidates.inputs import SourceInputs
from pipelines.candidates.registry import SOURCES, enabled, without_kernel
from schemas import score_column


def _stage_log(msg: str) -> None:
    print(f"[candidates] {msg}", file=sys.stderr, flush=True)


def source_inputs(
    spark, events, train, n_items: int, cfg, read_arrow, user_ids=None
) -> SourceInputs:
    """The common inputs of every source: users are `user_ids` (DataFrame[user_idx, user_id]),
    by default every user of `events` (including users seen only in the holdout); seen pairs
    those of `train` when `exclude_seen`."""
    every = events.select("user_idx", "user_id").distinct()
    chosen = every if user_ids is None else user_ids
    seen = train.select("user_idx", "item_idx").distinct() if cfg.exclude_seen else None
    return SourceInputs(
        spark=spark,
        train=train,
        users=chosen.select("user_idx"),
        user_ids=chosen,
        seen=seen,
        n_items=n_items,
        per_source=cfg.per_source,
        read_arrow=read_arrow,
        all_user_ids=every,
    )


def build_candidates(
    inputs: SourceInputs,
    tables: dict[str, Any],
    items,
    cfg,
    partitions: int,
    *,
    one_pass: bool = True,
    log: Callable[[str], None] = _stage_log,
):
    """-> (candidates DataFrame keyed by string ids, one score column per source, sorted by
    (user_id, rank) within its user partitions; the source names in column order).

    When every enabled source has a kernel form, the sources and their fusion run in one
    pass over users (pipelines/candidates/one_pass.py); otherwise (or `one_pass=False`, or
    tables too large to broadcast together) each source's `fn` runs and fusion.py fuses the
    rows with a shuffle. Both give the same table; `log` says which ran and why."""
    from pyspark.sql import functions as F

    from pipelines.candidates.fusion import fuse_sources
    from pipelines.candidates.one_pass import MAX_BROADCAST_BYTES, broadcast_bytes

    names = enabled(cfg.sources)
    forms = _kernel_forms(inputs, tables, cfg, names, log) if one_pass else {}
    size = broadcast_bytes(forms)
    if size > MAX_BROADCAST_BYTES:
        log(
            f"the sources' tables are {size / 2**30:.1f} GiB together, above the one-pass limit "
            f"of {MAX_BROADCAST_BYTES / 2**30:.1f} GiB: each source runs alone, rows fused by a "
            "shuffle"
        )
    fused_in_order = bool(forms) and size <= MAX_BROADCAST_BYTES
    if fused_in_order:
        from pipelines.candidates.one_pass import fused_candidates

        log(
            f"sources {names} and their fusion in one pass over users (no shuffle of their "
            f"rows; {size / 2**20:,.0f} MiB of tables broadcast to each worker)"
        )
        fused = fused_candidates(
            inputs, forms, cfg.weights, cfg.fusion, cfg.rrf_k, cfg.top_n, partitions
        )
        # Rows leave the tasks with their user_id, partitioned by user and in (user_id, rank)
        # order: only the item ids are joined (broadcast: the streamed rows keep their order).
        named = fused.join(F.broadcast(items.select("item_idx", "item_id")), "item_idx")
    else:
        per_source = _per_source_rows(inputs, tables, cfg, names, forms)
        fused = fuse_sources(per_source, cfg.weights, cfg.fusion, cfg.rrf_k, cfg.top_n, partitions)
        # fused is hash-partitioned by user_idx: the id joins keep that, and the table is
        # written from it sorted per partition (no second shuffle of every row by user_id).
        named = (
            fused.join(F.broadcast(items.select("item_idx", "item_id")), "item_idx")
            .join(inputs.user_ids, "user_idx")
            .drop("user_idx")
        )
    score_cols = [score_column(n) for n in names]
    out = named.select("user_id", "item_id", "rank", "score", "sources", *score_cols)
    return (out if fused_in_order else out.sortWithinPartitions("user_id", "rank")), names


def _kernel_forms(inputs, tables, cfg, names, log) -> dict[str, Any]:
    """{name: RowSum} of every source, or {} when one has no kernel form (logged)."""
    plain = without_kernel(names)
    if plain:
        log(f"sources {plain} have no kernel form: each source runs alone, rows fused by a shuffle")
        return {}
    forms = {}
    for name in names:
        src = SOURCES[name]
        forms[name] = src.load_kernel()(
            inputs, {t: tables[t] for t in src.reads}, src.settings_of(cfg)
        )
    return forms


def _per_source_rows(inputs, tables, cfg, names, forms) -> dict[str, Any]:
    """{name: DataFrame[user_idx, item_idx, score]}: each source's `fn`, or its already built
    kernel form run alone (the same rows)."""
    from pipelines.candidates.broadcast_topk import source_topk

    # Each source is read once, by the fusion's single union: nothing to cache.
    per_source = {}
    for name in names:
        src = SOURCES[name]
        if name in forms:
            per_source[name] = source_topk(inputs, forms[name])
        else:
            per_source[name] = src.load()(
                inputs, {t: tables[t] for t in src.reads}, src.settings_of(cfg)
            )
    return per_source
