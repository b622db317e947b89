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
from pipelines.storage import Location, as_location


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


def prepare(cfg: Config, run_dir: str | Path | Location) -> tuple[Config, list[str]]:
    """The config a run in `run_dir` runs, and notes for its plan: `rank.model = "latest"`
    resolved to a committed model under the same --out, or to "" (fit one), with the reason
    (pipelines/ranker/latest.py). Plans and runs of a run dir both go through here."""
    from pipelines.ranker.latest import resolve_latest

    cfg, note = resolve_latest(cfg, as_location(run_dir), produced_features(cfg))
    return cfg, [note] if note else []


def produced_features(cfg: Config) -> set[str]:
    """The ranker features this config's tables give (a reused model may use only these):
    its sources' and the base features, and the text, LLM and summary ones it plans. Kept
    here, not in a stage: it reads every source's declaration, which no stage's code hash
    should include."""
    from pipelines.candidates.registry import enabled
    from pipelines.ranker.features import feature_names
    from pipelines.stages.summary_embeddings import summary_feature_used

    llm = cfg.llm.enabled and cfg.rank.llm_feature
    summary = summary_feature_used(cfg) is None
    sources = enabled(cfg.candidates.sources)
    return set(feature_names(sources, cfg.rank.text_features, llm, summary))


def plan(
    cfg: Config, stages: list[str] | None = None, notes: list[str] | None = None
):  # -> pipelines.plan.Plan
    """The stages `cfg` needs (or exactly `stages`), in order, with why the others skip;
    `notes` (from `prepare`) are printed with it and kept in plan.json."""
    from pipelines.plan import plan_stages
    from pipelines.stage_registry import STAGES, select_stages

    forced = select_stages(stages) if stages else None
    out = plan_stages(list(STAGES.values()), cfg, forced)
    out.notes = list(notes or [])
    return out


def run(
    cfg: Config,
    run_dir: str | Path | Location,
    stages: list[str] | None = None,
    *,
    force: bool = False,
) -> dict[str, str]:
    """Run the planned stages into `run_dir`; returns {stage: 'ran' | 'skipped'}."""
    from pipelines import tableio
    from pipelines.ranker.latest import LATEST
    from pipelines.runner import run_plan

    # rank.model = latest is chosen against the run's data end: its events first.
    first = cfg.rank.model == LATEST and (not stages or "ingest" in stages)
    if first and not tableio.is_committed(as_location(run_dir), "events"):
        run_plan(run_dir, cfg, plan(cfg, ["ingest"]), announce=False)
    cfg, notes = prepare(cfg, run_dir)
    return run_plan(run_dir, cfg, plan(cfg, stages, notes), force=force)


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


SPEC_FORMAT = 1  # bumped when a field of stage_spec's rows changes meaning


def stage_spec(cfg: Config | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """The stage registry as data (`walkrank plan --json`), for schedulers that import nothing
    of WalkRank: the Airflow DAG builds its tasks from it (airflow_dags/walkrank_stages.json).

    Each stage, in registry order: its engine; the tables it may read (`inputs_for(None)`) and
    writes; `upstream`, the stages writing a table it may read; `reads_input`, whether its
    config keys cover `ingest.input` (the stage a job's --input/--items/--format are for). With
    `cfg`, also `plan`: the stages `cfg` plans and why the others skip (Plan.to_json)."""
    from pipelines.stage_registry import STAGES

    writers: dict[str, set[str]] = {}
    for s in STAGES.values():
        for table in s.outputs:
            writers.setdefault(table, set()).add(s.name)
    rows = []
    for s in STAGES.values():
        reads = s.inputs_for(None)
        up = {w for t in reads for w in writers.get(t, ()) if w != s.name}
        rows.append(
            {
                "name": s.name,
                "engine": s.engine,
                "upstream": [n for n in STAGES if n in up],
                "reads": list(reads),
                "writes": list(s.outputs),
                "reads_input": any(_covers(k, "ingest.input") for k in s.config_keys),
            }
        )
    spec: dict[str, Any] = {"format": SPEC_FORMAT, "stages": rows}
    if cfg is not None:
        spec["plan"] = plan(cfg, notes=notes).to_json()
    return spec


def _covers(key: str, path: str) -> bool:
    """Whether config key `key` (a section or a dotted field) includes `path`."""
    return path == key or path.startswith(key + ".")
