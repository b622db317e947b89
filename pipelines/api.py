"""The one entry to WalkRank: the CLI, `walkrank demo`, jobs and benchmarks call these.

from pipelines import api
from pipelines.config import load_config
api.run(load_config(None, ["eval.target=serve"]), "runs/today")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from pipelines.config import Config
from pipelines.storage import Location


def input_sets(
    input: str | None = None, items: str | None = None, fmt: str | None = None
) -> list[str]:
    """`--input/--items/--format` as config overrides (local paths made absolute, URIs such as
    s3://bucket/events kept as given; quoted as TOML strings so no value is parsed as anything
    else)."""
    import json

    from pipelines.storage import Location

    out = []
    for key, val, is_path in (
        ("ingest.input", input, True),
        ("ingest.items", items, True),
        ("ingest.format", fmt, False),
    ):
        if val:
            if is_path:
                loc = Location(val)
                val = str(Path(loc.path).resolve()) if loc.is_local else val
            out.append(f"{key}={json.dumps(val)}")
    return out


def plan(cfg: Config, stages: list[str] | None = None):  # -> pipelines.plan.Plan
    """The stages `cfg` needs (or exactly `stages`), in order, with why the others skip."""
    from pipelines.plan import plan_stages
    from pipelines.stages import STAGES, select_stages

    forced = select_stages(stages) if stages else None
    return plan_stages(list(STAGES.values()), cfg, forced)


def run(
    cfg: Config,
    run_dir: str | Path | Location,
    stages: list[str] | None = None,
    *,
    force: bool = False,
) -> dict[str, str]:
    """Run the planned stages into `run_dir`; returns {stage: 'ran' | 'skipped'}."""
    from pipelines.runner import run_plan

    return run_plan(run_dir, cfg, plan(cfg, stages), force=force)


def evaluate(
    run_dir: str | Path | Location,
    tables: list[str],
    ks: list[int],
    target: str | None = None,
    max_rows_in_memory: int | None = None,
) -> pl.DataFrame:
    """Metrics of a run's tables (the run's own target by default; serve: label-free), read
    in buckets of about `max_rows_in_memory` rows (default: eval.max_rows_in_memory)."""
    from pipelines.evaluation.run import evaluate_run, run_target

    return evaluate_run(run_dir, tables, ks, target or run_target(run_dir), max_rows_in_memory)


def evaluate_against(
    run_dir: str | Path | Location,
    against: str,
    fmt: str | None,
    ks: list[int],
    since: str | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Score a serve run's rankings against later events; commits `served_metrics`."""
    from pipelines.evaluation.run import evaluate_against as against_

    return against_(run_dir, against, fmt, ks, since)
