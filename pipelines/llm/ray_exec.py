"""Run a worker class over per-user rows on Ray Data, committing output shard by shard.

The input rows carry a `shard` id. Committed shards are skipped; the rest stream through
`map_batches(worker, compute=ActorPoolStrategy(size=n))`. The driver collects the output
as it arrives and commits a shard as soon as every one of its users is back, so a kill
loses at most the shards in flight.

Progress: a bar over users (rate and time left) as batches come back, one line per committed
shard, and Ray Data's own operator bars when stderr is a terminal.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import Config
from pipelines.llm.model import ModelSpec
from pipelines.llm.shards import ShardStore, shard_key
from pipelines.progress import ProgressLine, bar
from pipelines.stage import StageContext


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
    expected_ids: dict[int, list[str]] = defaultdict(list)
    for u, s in zip(
        rows.column("user_id").to_pylist(), rows.column("shard").to_pylist(), strict=True
    ):
        expected_ids[s].append(u)
    all_shards = sorted(expected_ids)
    done, wrong = store.verified_done(expected_ids)
    if wrong:
        log(f"{len(wrong)} committed shard(s) hold other users than now: computed again")
    pending = rows.filter(
        pc.invert(pc.is_in(rows.column("shard"), pa.array(sorted(done), pa.int32())))
    )
    stats: dict[str, Any] = {
        "shards": len(all_shards),
        "shards_reused": len(done),
        "shards_rejected": len(wrong),
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
        # Ray Data's bars redraw in place: useful on a terminal, noise in a log file.
        ctx.enable_progress_bars = sys.stderr.isatty() and cfg.run.progress_seconds > 0
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
        progress = ProgressLine(cfg.run.progress_seconds)
        users_back = 0
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            users_back += len(set(batch.column("user_id").to_pylist()))
            elapsed = time.perf_counter() - t0
            rate = users_back / elapsed if elapsed else 0.0
            left = (pending.num_rows - users_back) / rate if rate else float("nan")
            progress.update(
                f"[{store.stage}] llm {bar(users_back, pending.num_rows)} users, "
                f"{rate:.2f} users/s, ~{left:.0f}s left",
                force=users_back >= pending.num_rows,
            )
            for s in set(batch.column("shard").to_pylist()):
                part = batch.filter(pc.equal(batch.column("shard"), s))
                parts[s].append(part)
                seen[s].update(part.column("user_id").to_pylist())
                if len(seen[s]) == expected[s]:
                    store.commit(s, pa.concat_tables(parts.pop(s)), users=sorted(seen[s]))
                    stats["shards_computed"] += 1
                    n_done = len(done) + stats["shards_computed"]
                    progress.close()
                    log(
                        f"shard {s} committed: {n_done}/{len(all_shards)} shards "
                        f"({n_done / len(all_shards):.0%}), {time.perf_counter() - t0:.0f}s"
                    )
        progress.close()
        stats["ray_seconds"] = round(time.perf_counter() - t0, 3)
    missing = set(all_shards) - store.verified_done(expected_ids)[0]
    if missing:
        raise RuntimeError(f"shards {sorted(missing)[:5]} produced no complete output")
    table = store.read(all_shards, out_schema)
    errors = table.column("error").null_count
    stats["errors"] = table.num_rows - errors
    return table, stats


def shard_settings(cfg: Config, params: dict[str, Any]) -> dict[str, Any]:
    """Everything besides the stage key that decides which user lands in which shard
    (shard_users; the user selection is in the stage key) or what a row contains: the
    worker's params (batch sizes, batching, scorer, threads), the Ray batch size (a
    generation batch is cut from it), device and dtype as configured."""
    llm = cfg.llm
    return {
        **params,
        "shard_users": llm.shard_users,
        "user_batch": llm.user_batch,
        "device": llm.device,
        "dtype": llm.dtype,
    }


def run_llm_stage(
    ctx: StageContext,
    rows: Any,  # polars.DataFrame with user_id and the worker's input columns
    worker: type,
    params: dict[str, Any],
    out_schema: pa.Schema,
) -> tuple[pa.Table, dict[str, Any], ShardStore]:
    """What both LLM stages do with their per-user rows: shard them (by user order), drop
    shards of an older stage key, run `worker` over the pending shards (`run_sharded`).
    The caller writes its table from the output, then clears the returned store."""
    from pipelines.llm.inputs import with_shards
    from pipelines.llm.model import model_spec

    cfg = ctx.config.llm
    params = {**params, "actor_cpus": cfg.actor_cpus, "torch_threads": cfg.torch_threads}
    settings = shard_settings(ctx.config, params)
    store = ShardStore(ctx.run_dir, ctx.stage.name, shard_key(ctx.stage_key, settings))
    stale = store.clear_stale()
    if stale:
        ctx.log(f"dropped shards of other inputs or settings: {', '.join(stale)}")
    sharded = with_shards(rows, cfg.shard_users)

    def spec() -> ModelSpec:  # resolved (and the default converted) only when there is work
        return model_spec(cfg.model, cfg.cache_dir, cfg.device, cfg.dtype)

    out, stats = run_sharded(
        ctx.config, sharded.to_arrow(), worker, spec, params, store, out_schema, ctx.log
    )
    return out, stats, store
