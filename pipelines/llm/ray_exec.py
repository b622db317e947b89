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
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import Config
from pipelines.llm.model import ModelSpec
from pipelines.llm.placement import place_actors
from pipelines.llm.shards import ShardStore, shard_key
from pipelines.progress import ProgressLine, bar


def run_sharded(
    cfg: Config,
    rows: pa.Table,
    worker: type,
    spec: Callable[[], ModelSpec],
    params: dict[str, Any],
    store: ShardStore,
    out_schema: pa.Schema,
    log: Callable[[str], None],
) -> tuple[pa.Table, dict[str, Any]]:
    """rows (user_id, shard, ...) -> (all output rows of every shard, stats for the manifest).

    Committed shards whose users are still exactly these are reused; the others run."""
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
        ds, placement = _actor_dataset(cfg, pending, worker, spec, params)
        stats.update(placement.stats())
        log(
            f"{pending.num_rows} users on {placement.actors} actor(s), {placement.resources} "
            f"({placement.reason})"
        )
        t0 = time.perf_counter()
        progress = ShardProgress(
            cfg, store.stage, pending.num_rows, len(all_shards), len(done), log
        )
        stats["shards_computed"] = _commit_as_they_complete(ds, pending, store, progress)
        stats["ray_seconds"] = round(time.perf_counter() - t0, 3)
    missing = set(all_shards) - store.verified_done(expected_ids)[0]
    if missing:
        raise RuntimeError(f"shards {sorted(missing)[:5]} produced no complete output")
    table = store.read(all_shards, out_schema)
    without_error = table.column("error").null_count
    stats["errors"] = table.num_rows - without_error
    return table, stats


def _actor_dataset(cfg: Config, pending: pa.Table, worker: type, spec, params):
    """-> (the Ray dataset of `worker` over the pending rows, one block per shard; placement)."""
    from pipelines.ray_runtime import init_ray

    init_ray(cfg.ray)
    import ray

    ctx = ray.data.DataContext.get_current()
    # Ray Data's bars redraw in place: useful on a terminal, noise in a log file.
    ctx.enable_progress_bars = sys.stderr.isatty() and cfg.run.progress_seconds > 0
    ctx.print_on_execution_start = False
    placement = place_actors(cfg.llm, int(ray.cluster_resources().get("GPU", 0)))
    # One block per shard: each map task then returns one shard's rows as soon as it is
    # done (a single block would come back only when the whole input is finished).
    blocks = [
        pending.filter(pc.equal(pending.column("shard"), s))
        for s in sorted(set(pending.column("shard").to_pylist()))
    ]
    ds = ray.data.from_arrow(blocks).map_batches(
        worker,
        fn_constructor_kwargs={
            "spec": {**asdict(spec()), "device": placement.device, "dtype": placement.dtype},
            "params": params,
        },
        batch_size=max(1, cfg.llm.user_batch),
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=placement.actors),
        **placement.resources,
    )
    return ds, placement


class ShardProgress:
    """A bar over users (rate, time left) as batches come back; a line per committed shard."""

    def __init__(self, cfg: Config, stage: str, users: int, shards: int, reused: int, log):
        self.line = ProgressLine(cfg.run.progress_seconds)
        self.stage, self.users, self.shards, self.committed = stage, users, shards, reused
        self.back, self.log, self.t0 = 0, log, time.perf_counter()

    def users_back(self, n: int) -> None:
        self.back += n
        elapsed = time.perf_counter() - self.t0
        rate = self.back / elapsed if elapsed else 0.0
        left = (self.users - self.back) / rate if rate else float("nan")
        self.line.update(
            f"[{self.stage}] llm {bar(self.back, self.users)} users, "
            f"{rate:.2f} users/s, ~{left:.0f}s left",
            force=self.back >= self.users,
        )

    def shard_committed(self, shard: int) -> None:
        self.committed += 1
        self.line.close()
        self.log(
            f"shard {shard} committed: {self.committed}/{self.shards} shards "
            f"({self.committed / self.shards:.0%}), {time.perf_counter() - self.t0:.0f}s"
        )


def _commit_as_they_complete(ds, pending: pa.Table, store: ShardStore, progress) -> int:
    """Stream the output; commit each shard as soon as all its users are back -> shards
    committed. A kill loses at most the shards in flight."""
    expected = Counter(pending.column("shard").to_pylist())
    seen: dict[int, set[str]] = defaultdict(set)
    parts: dict[int, list[pa.Table]] = defaultdict(list)
    committed = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        progress.users_back(len(set(batch.column("user_id").to_pylist())))
        for s in set(batch.column("shard").to_pylist()):
            part = batch.filter(pc.equal(batch.column("shard"), s))
            parts[s].append(part)
            seen[s].update(part.column("user_id").to_pylist())
            if len(seen[s]) == expected[s]:
                store.commit(s, pa.concat_tables(parts.pop(s)), users=sorted(seen[s]))
                committed += 1
                progress.shard_committed(s)
    progress.line.close()
    return committed


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
    cfg: Config,
    run_dir: Path,
    stage: str,
    stage_key: str,
    rows: Any,  # polars.DataFrame with user_id and the worker's input columns
    worker: type,
    params: dict[str, Any],
    out_schema: pa.Schema,
    log: Callable[[str], None],
) -> tuple[pa.Table, dict[str, Any], ShardStore]:
    """What both LLM stages do with their per-user rows: shard them (by user order), drop
    shards of an older stage key, run `worker` over the pending shards (`run_sharded`).
    The caller writes its table from the output, then clears the returned store."""
    from pipelines.llm.inputs import with_shards
    from pipelines.llm.model import model_spec

    llm = cfg.llm
    params = {**params, "actor_cpus": llm.actor_cpus, "torch_threads": llm.torch_threads}
    settings = shard_settings(cfg, params)
    store = ShardStore(run_dir, stage, shard_key(stage_key, settings))
    stale = store.clear_stale()
    if stale:
        log(f"dropped shards of other inputs or settings: {', '.join(stale)}")
    sharded = with_shards(rows, llm.shard_users)

    def spec() -> ModelSpec:  # resolved (and the default converted) only when there is work
        return model_spec(llm.model, llm.cache_dir, llm.device, llm.dtype)

    out, stats = run_sharded(cfg, sharded.to_arrow(), worker, spec, params, store, out_schema, log)
    return out, stats, store
