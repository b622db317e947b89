"""The one job entry point: any stage of a run, as `spark-submit` or a Ray job calls it.

    spark-submit --archives dist/walkrank-env.tar.gz#env \\
        --conf spark.pyspark.python=./env/bin/python --conf spark.pyspark.driver.python=python \\
        jobs/stage_job.py graph --run-dir /data/runs/2026-11-25 --config cluster [--set k=v]...
    python -m jobs.stage_job summaries --run-dir ...          # a Ray job's entrypoint

The first argument is a stage of the registry (pipelines/stage_registry.py; anything else is
a usage error, exit 2), or several joined by commas (`split,graph,ppr`): one application runs
them in turn, which on a cluster saves each later stage the application's start (executors,
the archive unpacked). `--run-dir DIR` names the run (`DIR` = `<out>/<run_id>`); the rest are
`walkrank run`'s options, so a job is exactly `walkrank run --stages <stages>`: the same config,
the same skip of committed outputs, the same one-line errors and exit codes (0 ok, 1 engine
error, 2 usage or config error). `--against EVENTS`, for the stage that writes `metrics`, is
`walkrank evaluate RUN --against EVENTS` instead.

How a scheduler passes run parameters without a shell ever parsing them:
- `--sets-json '["ppr.alpha=0.3", ...]'`: the `--set` list as one argument (Airflow renders a
  list parameter into one argv element);
- `WALKRANK_JOB_ARGS='["--run-dir", ...]'` in the environment, appended when the command line
  names no more than the stage: a Ray job's entrypoint is a fixed command and its arguments
  travel in the job's runtime env (airflow_dags/walkrank_daily.py, tests/test_ray_cluster.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ARGS_ENV = "WALKRANK_JOB_ARGS"
# The table of the stage whose job also scores a served run against later events (--against).
AGAINST_TABLE = "metrics"


def job_argv(argv: list[str] | None) -> list[str]:
    """The job's arguments: `argv`, else the command line, followed by WALKRANK_JOB_ARGS (a
    JSON list) when the command line holds at most the stage name."""
    if argv is not None:
        return argv
    line = sys.argv[1:]
    if len(line) > 1 or ARGS_ENV not in os.environ:
        return line
    args = json.loads(os.environ[ARGS_ENV])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise SystemExit(f"{ARGS_ENV} must be a JSON list of strings, got {args!r}")
    return [*line, *args]


def _sets_json(text: str) -> list[str]:
    sets = json.loads(text)
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise argparse.ArgumentTypeError(f"--sets-json takes a JSON list of strings: {text!r}")
    return sets


def _stage_list(known: list[str]):
    """argparse type: "a,b" -> ["a", "b"], each a name of `known`, none twice."""

    def parse(text: str) -> list[str]:
        names = text.split(",")
        for name in names:
            if name not in known:
                choices = ", ".join(map(repr, known))
                raise argparse.ArgumentTypeError(
                    f"invalid choice: {name!r} (choose from {choices})"
                )
        if len(set(names)) < len(names):
            raise argparse.ArgumentTypeError(f"a stage named twice: {text!r}")
        return names

    return parse


def parser(stages: list[str]) -> argparse.ArgumentParser:
    """The job's command line; `stages`: the registry's names, the only first arguments."""
    p = argparse.ArgumentParser(
        prog="jobs/stage_job.py",
        description="Run stages of a run (exactly `walkrank run --stages STAGE[,STAGE...]`).",
    )
    p.add_argument(
        "stages",
        type=_stage_list(stages),
        metavar="STAGE[,STAGE...]",
        help="one of, or several joined by commas (one application): " + ", ".join(stages),
    )
    p.add_argument("--run-dir", required=True, help="<out>/<run_id> of the run")
    p.add_argument("--config", help="engine profile: local, cluster, or a TOML file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--sets-json", type=_sets_json, default=[], help="more --set values as a JSON list"
    )
    p.add_argument("--input", help="events path (the stage that reads the input)")
    p.add_argument("--items", help="item catalog path (the stage that reads the input)")
    p.add_argument("--format", help="input format (the input, or --against's events)")
    p.add_argument("--force", action="store_true", help="re-run even if committed")
    p.add_argument(
        "--against",
        metavar="EVENTS",
        help=f"(the stage writing {AGAINST_TABLE}) score this serve run against later events",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse a job's arguments (`STAGE --run-dir DIR ...`) and run that stage of the run."""
    from pipelines.cli import guarded
    from pipelines.stage_registry import STAGES

    p = parser(list(STAGES))
    args = p.parse_args(job_argv(argv))
    if args.against:
        if len(args.stages) > 1 or AGAINST_TABLE not in STAGES[args.stages[0]].outputs:
            p.error(
                f"--against is for the stage that writes {AGAINST_TABLE}, alone; "
                f"not {','.join(args.stages)}"
            )
        return guarded(lambda: _evaluate_against(args))
    return guarded(lambda: _run_stage(args))


def _run_stage(args: argparse.Namespace) -> int:
    """Exactly `walkrank run --stages <stages>`: the same config, checks and skips."""
    from pipelines import api
    from pipelines.config import load_config
    from pipelines.run_dir import resolve_run_dir
    from pipelines.stage_registry import STAGES
    from pipelines.storage import Location

    run_dir = Location(args.run_dir)  # a local path or a URI (s3://bucket/runs/<day>)
    run_dir = resolve_run_dir(run_dir.parent, run_dir.name)
    inputs = api.input_sets(args.input, args.items, args.format)
    # The paths these stages read: a Spark stage's machine need not hold the LLM's folder.
    checked = tuple(k for name in args.stages for k in STAGES[name].config_keys)
    cfg = load_config(args.config, [*inputs, *args.sets, *args.sets_json], check_paths=checked)
    api.run(cfg, run_dir, args.stages, force=args.force)
    return 0


def _evaluate_against(args: argparse.Namespace) -> int:
    """`walkrank evaluate RUN --against EVENTS`: how a serve run's rankings did on the events
    that came after it. A run without committed rankings (the first day of a schedule, or a day
    that failed) has nothing to score: said, and exit 0."""
    from pipelines import api, tableio
    from pipelines.cli import print_against
    from pipelines.config import load_config
    from pipelines.storage import Location

    run_dir = Location(args.run_dir)
    if not tableio.is_committed(run_dir, "rankings"):
        print(
            f"[{args.stages[0]}] nothing to score: {run_dir} has no committed rankings",
            file=sys.stderr,
        )
        return 0
    ks = load_config(run_dir / "config.toml", check_paths=False).eval.ks
    metrics, extra = api.evaluate_against(run_dir, args.against, args.format, ks)
    print_against(run_dir, args.against, metrics, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
