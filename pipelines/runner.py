"""Run a plan: each stage in order (a nested run just before the stage that reads it),
skipping those whose outputs are committed for the same inputs, config and code."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pipelines import faults, tableio
from pipelines.config import Config, config_to_toml
from pipelines.errors import StageOrderError, TableDamagedError
from pipelines.plan import NestedPlan, Plan, plan_stages
from pipelines.progress import watch_spark
from pipelines.run_dir import run_lock
from pipelines.stage import Stage, StageContext, stage_key
from pipelines.storage import Location, as_location


def _input_fingerprints(stage: Stage, cfg: Config, run_dir: Location) -> dict[str, str]:
    fps: dict[str, str] = {}
    for name in stage.inputs_for(cfg):
        # Every file of an input is there at its size before a stage reads it.
        fps[name] = tableio.verify_table(run_dir, name)["fingerprint"]
    if stage.raw_inputs:
        for path in stage.raw_inputs(cfg):
            fps[f"file:{path}"] = tableio.file_fingerprint(path)
    return fps


def _output_current(
    run_dir: Location, stage: Stage, key: str, name: str, superseders: set[str] | None
) -> bool:
    """Committed by this stage for this key, or superseded: rewritten since by a later stage
    that read the current version of another output of this stage (`rankings`: written by
    candidates, then refined by rank from those same candidates). With `superseders`, only
    those stages count (a plan without rank must not keep rank's rankings). A damaged table
    (a manifest that does not parse, a data file missing or cut short) raises
    TableDamagedError: it is neither current nor a reason to skip."""
    if not tableio.is_committed(run_dir, name):
        return False
    m = tableio.verify_table(run_dir, name)
    if m["stage_key"] == key:
        return True
    if m["stage"] == stage.name or (superseders is not None and m["stage"] not in superseders):
        return False
    for other in stage.outputs:
        if other != name and tableio.is_committed(run_dir, other):
            om = tableio.read_manifest(run_dir, other)
            if om["stage_key"] == key and m["inputs"].get(other) == om["fingerprint"]:
                return True
    return False


def _outputs_current(
    run_dir: Location,
    stage: Stage,
    key: str,
    superseders: set[str] | None,
    repair: bool,
    tag: str,
) -> bool:
    """Every output of the stage current (`_output_current`). With `repair` (a run nested in
    a forced one, whose stages --force does not re-run) a damaged output makes its stage run
    again instead of failing the run."""
    try:
        return all(_output_current(run_dir, stage, key, o, superseders) for o in stage.outputs)
    except TableDamagedError as exc:
        if not repair:
            raise
        print(f"{tag} {exc.args[0]}: writing it again (--force)", file=sys.stderr, flush=True)
        return False


def release_spark_cache() -> None:
    """Drop every DataFrame cached and every RDD persisted in this process's Spark session.
    Stages hand tables to each other through Parquet, never through Spark's cache, so what a
    stage persisted is dead once it returns; left cached (the split's labelled events, a
    source's weights), it kept heap that later stages' sorts and joins could have used, for the
    rest of the run. The catalog's cache holds DataFrames only: ALS keeps its final user and
    item factors as persisted RDDs for as long as the JVM holds its model, and sorts can
    take storage memory back only down to `spark.memory.storageFraction`."""
    if "pyspark" not in sys.modules:  # a run without Spark (Ray and local stages only)
        return
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is not None:
        spark.catalog.clearCache()
        for rdd in spark.sparkContext._jsc.getPersistentRDDs().values():
            rdd.unpersist(True)


def run_stages(
    run_dir: str | Path | Location,
    cfg: Config,
    selected: list[Stage],
    *,
    force: bool = False,
    registry: list[Stage] | None = None,
) -> dict[str, str]:
    """Run exactly the selected stages, in order (and the runs nested in them, planned from
    `registry`, by default WalkRank's); returns {stage: 'ran' | 'skipped'}."""
    if registry is None:
        from pipelines.stage_registry import STAGES

        registry = list(STAGES.values())
    plan = plan_stages(registry, cfg, selected)
    return run_plan(run_dir, cfg, plan, force=force)


def run_nested(
    run_dir: Location, nested: NestedPlan, label: str, repair: bool = False
) -> dict[str, str]:
    """Run (or resume) a nested plan in <run>/<folder>: its shared tables linked to the run's
    own (re-linked each time: the run's may have been rewritten), then its stages. Never
    forced: its committed stages are skipped like any run's, except, with `repair` (the
    parent run is forced), those with a damaged output, which run again."""
    sub = run_dir / nested.spec.folder
    sub.mkdir()
    for name in nested.spec.shared:
        tableio.link_table(run_dir, name, sub)
    label = f"{label}{nested.spec.folder}/"
    with faults.scoped(label):
        outcome = run_plan(
            sub, nested.spec.config, nested.plan, label=label, announce=False, repair=repair
        )
    return {f"{nested.spec.folder}/{k}": v for k, v in outcome.items()}


def run_plan(
    run_dir: str | Path | Location,
    cfg: Config,
    plan: Plan,
    *,
    force: bool = False,
    label: str = "",
    announce: bool = True,
    repair: bool = False,
) -> dict[str, str]:
    """Run a plan's stages in order (see pipelines/plan.py); returns {stage: 'ran' | 'skipped'},
    the nested runs' stages as '<folder>/<stage>'.

    The plan (nested plans included) is printed first unless `announce` is False (a nested
    run: its parent printed it) and written to <run>/plan.json. `label` goes before each
    stage name in the log ("fit/": a run nested in another, the fit pass). `force` re-runs
    every stage; `repair` only those whose outputs are damaged (a nested run of a forced
    one)."""
    run_dir = as_location(run_dir)
    outcome: dict[str, str] = {}
    superseders = None if plan.forced else set(plan.names)
    with run_lock(run_dir, cfg.run.lock, cfg.run.lease_seconds) as lease:
        tableio.clean_uncommitted(run_dir)
        (run_dir / "config.toml").write_text(config_to_toml(cfg))
        (run_dir / "plan.json").write_text(json.dumps(plan.to_json(), indent=2))
        for line in plan.lines() if announce else ():
            print(f"{label}{line}", file=sys.stderr, flush=True)
        for stage in plan.stages:
            if lease is not None:
                lease.check()
            if stage.name in plan.nested:
                outcome |= run_nested(run_dir, plan.nested[stage.name], label, force or repair)
            missing = [i for i in stage.inputs_for(cfg) if not tableio.is_committed(run_dir, i)]
            if missing:
                raise StageOrderError(
                    f"stage '{stage.name}' needs table(s) {missing}, not committed in {run_dir}",
                    hint="add the stages that write them to --stages, or run them first",
                )
            fps = _input_fingerprints(stage, cfg, run_dir)
            key = stage_key(stage, cfg, fps)
            tag = f"[{label}{stage.name}]"
            if not force and _outputs_current(run_dir, stage, key, superseders, repair, tag):
                print(
                    f"{tag} skipped: outputs committed for these inputs and config",
                    file=sys.stderr,
                    flush=True,
                )
                outcome[stage.name] = "skipped"
                continue
            ctx = StageContext(run_dir, cfg, stage, key, fps, label=label)
            t0 = time.perf_counter()
            ctx.log(f"running: {stage.description or stage.name}")
            with watch_spark(ctx.tag, cfg.run.progress_seconds):
                try:
                    stage.fn(ctx)
                finally:
                    release_spark_cache()
            unwritten = [o for o in stage.outputs if o not in ctx.written]
            if unwritten:
                raise RuntimeError(f"stage '{stage.name}' did not write {unwritten}")
            rows = ", ".join(f"{k} {v['rows']:,}" for k, v in ctx.written.items())
            print(
                f"{ctx.tag} done in {time.perf_counter() - t0:.1f}s: {rows}",
                file=sys.stderr,
                flush=True,
            )
            outcome[stage.name] = "ran"
    return outcome
