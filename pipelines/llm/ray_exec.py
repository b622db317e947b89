"""Run a worker class over per-user rows on Ray Data, committing output shard by shard.

The input rows carry a `shard` id. Committed shards are skipped; the rest stream through
`map_batches(worker, compute=ActorPoolStrategy(size=n))`. The driver collects the output
as it arrives and commits a shard as soon as every one of its users is back, so a kill
loses at most the shards in flight.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import Config
from pipelines.llm.model import ModelSpec
from pipelines.llm.shards import ShardStore


def actor_resources(cfg: Config) -> tuple[dict[str, Any], int, str]:
    """-> (map_batches resource args, pool size, reason): one GPU per actor where the cluster
    has GPUs, a fraction of a CPU otherwise (a pool holding every CPU starves Ray Data's own
    tasks and hangs on a 2-core machine)."""
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus and cfg.llm.device != "cpu":
        return {"num_gpus": 1}, max(1, min(cfg.llm.actors, gpus)), f"{gpus} GPU(s) in the cluster"
    return {"num_cpus": cfg.llm.actor_cpus}, max(1, cfg.llm.actors), "no GPU: fractional CPUs"


def run_sharded(
    cfg: Config,
    rows: pa.Table,
    worker: type,
    spec: Callable[[], ModelSpec],
    params: dict[str, Any],
    store: ShardStore,
    out_schema: pa.Schema,
    log,
) -> tuple[pa.Table, dict[str, Any]]:
    """rows (user_id, shard, ...) -> (all output rows of every shard, stats for the manifest)."""
    all_shards = sorted(set(rows.column("shard").to_pylist()))
    done = store.done() & set(all_shards)
    pending = rows.filter(
        pc.invert(pc.is_in(rows.column("shard"), pa.array(sorted(done), pa.int32())))
    )
    stats: dict[str, Any] = {
        "shards": len(all_shards),
        "shards_reused": len(done),
        "shards_computed": 0,
        "users_computed": pending.num_rows,
    }
    if done:
        log(f"resuming: {len(done)} of {len(all_shards)} shards already committed")
    if pending.num_rows:
        from pipelines.ray_runtime import init_ray

        t0 = time.perf_counter()
        init_ray(cfg.ray)
        import ray

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        resources, pool, reason = actor_resources(cfg)
        # Device and dtype follow the actors' placement, not the driver's own hardware.
        device = (
            cfg.llm.device
            if cfg.llm.device != "auto"
            else ("cuda" if "num_gpus" in resources else "cpu")
        )
        dtype = (
            cfg.llm.dtype
            if cfg.llm.dtype != "auto"
            else ("bfloat16" if device == "cuda" else "float32")
        )
        stats.update(
            {
                "actors": pool,
                "resources": resources,
                "placement": reason,
                "device": device,
                "dtype": dtype,
            }
        )
        log(f"{pending.num_rows} users on {pool} actor(s), {resources} ({reason})")
        # One block per shard: each map task then returns one shard's rows as soon as it is
        # done (a single block would come back only when the whole input is finished).
        blocks = [
            pending.filter(pc.equal(pending.column("shard"), s))
            for s in sorted(set(pending.column("shard").to_pylist()))
        ]
        ds = ray.data.from_arrow(blocks).map_batches(
            worker,
            fn_constructor_kwargs={
                "spec": {**asdict(spec()), "device": device, "dtype": dtype},
                "params": params,
            },
            batch_size=max(1, cfg.llm.user_batch),
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=pool),
            **resources,
        )
        expected = Counter(pending.column("shard").to_pylist())
        seen: dict[int, set[str]] = defaultdict(set)
        parts: dict[int, list[pa.Table]] = defaultdict(list)
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for s in set(batch.column("shard").to_pylist()):
                part = batch.filter(pc.equal(batch.column("shard"), s))
                parts[s].append(part)
                seen[s].update(part.column("user_id").to_pylist())
                if len(seen[s]) == expected[s]:
                    store.commit(s, pa.concat_tables(parts.pop(s)), users=expected[s])
                    stats["shards_computed"] += 1
                    # Progress of the long LLM work: one line per committed shard.
                    n_done = len(done) + stats["shards_computed"]
                    log(
                        f"shard {s} committed: {n_done}/{len(all_shards)} shards "
                        f"({n_done / len(all_shards):.0%}), {time.perf_counter() - t0:.0f}s"
                    )
        stats["ray_seconds"] = round(time.perf_counter() - t0, 3)
    missing = set(all_shards) - store.done()
    if missing:
        raise RuntimeError(f"shards {sorted(missing)[:5]} produced no complete output")
    table = store.read(all_shards, out_schema)
    errors = table.column("error").null_count
    stats["errors"] = table.num_rows - errors
    return table, stats
