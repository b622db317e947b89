"""What every job file runs: one stage of a run, as `spark-submit` or a Ray job calls it.

    spark-submit --archives dist/walkrank-env.tar.gz#env \\
        --conf spark.pyspark.python=./env/bin/python --conf spark.pyspark.driver.python=python \\
        jobs/graph.py --run-dir /data/runs/2026-11-25 --config cluster [--set key=value]...

`--run-dir DIR` names the run (`DIR` = `<out>/<run_id>`); the rest are `walkrank run`'s
options, so a job is exactly `walkrank run --stages <stage>`: the same config, the same skip
of committed outputs, the same one-line errors and exit codes (0 ok, 1 engine error, 2 usage
or config error).

How a scheduler passes run parameters without a shell ever parsing them:
- `--sets-json '["ppr.alpha=0.3", ...]'`: the `--set` list as one argument (Airflow renders a
  list parameter into one argv element);
- `WALKRANK_JOB_ARGS='["--run-dir", ...]'` in the environment, read when no arguments are
  given: a Ray job's entrypoint is a fixed command and its arguments travel in the job's
  runtime env (airflow_dags/walkrank_daily.py, tests/test_ray_cluster.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipelines.storage import Location

ARGS_ENV = "WALKRANK_JOB_ARGS"


def job_argv(argv: list[str] | None) -> list[str]:
    """The job's arguments: `argv`, else the command line, else WALKRANK_JOB_ARGS (a JSON list)."""
    if argv is not None:
        return argv
    if len(sys.argv) > 1 or ARGS_ENV not in os.environ:
        return sys.argv[1:]
    args = json.loads(os.environ[ARGS_ENV])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise SystemExit(f"{ARGS_ENV} must be a JSON list of strings, got {args!r}")
    return args


def _sets_json(text: str) -> list[str]:
    sets = json.loads(text)
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise argparse.ArgumentTypeError(f"--sets-json takes a JSON list of strings: {text!r}")
    return sets


def main(stage: str, argv: list[str] | None = None) -> int:
    """Parse a job's arguments and run `stage` of the run they name."""
    from pipelines.cli import guarded

    p = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"the '{stage}' stage")
    p.add_argument("--run-dir", required=True, help="<out>/<run_id> of the run")
    p.add_argument("--config", help="engine profile: local, cluster, or a TOML file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--sets-json", type=_sets_json, default=[], help="more --set values as a JSON list"
    )
    p.add_argument("--input", help="events path (ingest)")
    p.add_argument("--items", help="item catalog path (ingest)")
    p.add_argument("--format", help="input format (ingest)")
    p.add_argument("--force", action="store_true", help="re-run even if committed")
    if stage == "evaluate":
        p.add_argument("--against", help="score this serve run against later events instead")
    args = p.parse_args(job_argv(argv))
    if getattr(args, "against", None):
        return guarded(lambda: _evaluate_against(Location(args.run_dir), args.against, args.format))
    return guarded(lambda: _run_stage(stage, args))


def _run_stage(stage: str, args: argparse.Namespace) -> int:
    """Exactly `walkrank run --stages <stage>`: the same config, checks and skips."""
    from pipelines import api
    from pipelines.config import load_config
    from pipelines.run_dir import resolve_run_dir

    run_dir = Location(args.run_dir)  # a local path or a URI (s3://bucket/runs/<day>)
    run_dir = resolve_run_dir(run_dir.parent, run_dir.name)
    inputs = api.input_sets(args.input, args.items, args.format)
    cfg = load_config(args.config, [*inputs, *args.sets, *args.sets_json])
    api.run(cfg, run_dir, [stage], force=args.force)
    return 0


def _evaluate_against(run_dir: Location, events: str, fmt: str | None) -> int:
    """`walkrank evaluate RUN --against EVENTS`: how a serve run's rankings did on the events
    that came after it. A run without committed rankings (the first day of a schedule, or a day
    that failed) has nothing to score: said, and exit 0."""
    from pipelines import api, tableio
    from pipelines.cli import print_against
    from pipelines.config import load_config

    if not tableio.is_committed(run_dir, "rankings"):
        print(f"[evaluate] nothing to score: {run_dir} has no committed rankings", file=sys.stderr)
        return 0
    ks = load_config(run_dir / "config.toml").eval.ks
    metrics, extra = api.evaluate_against(run_dir, events, fmt, ks)
    print_against(run_dir, events, metrics, extra)
    return 0
