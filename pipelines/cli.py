"""The `walkrank` command line: run, plan, evaluate, gate, show, compare, generate, data, demo."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipelines.storage import Location

DEBUG_ENV = "WALKRANK_DEBUG"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="walkrank", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    for add in (_add_run, _add_plan, _add_evaluate, _add_gate, _add_tools):
        add(sub)
    return p


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field, e.g. --set eval.ks=[10,20]",
    )


def _add_run(sub) -> None:  # sub: argparse's subparsers action
    r = sub.add_parser("run", help="run pipeline stages into <out>/<run-id>/")
    r.add_argument("--input", help="events file or directory (sets ingest.input)")
    r.add_argument("--items", help="item catalog (sets ingest.items)")
    r.add_argument("--format", help="auto|csv|tsv|parquet|jsonl|movielens|recbole|sequences")
    r.add_argument("--out", required=True, help="output root directory")
    r.add_argument("--run-id", default=None, help="run directory name (default: a timestamp)")
    r.add_argument(
        "--config",
        default=None,
        help="engine profile: a shipped one (local, cluster) or a TOML file",
    )
    _add_set(r)
    r.add_argument("--stages", default=None, help="comma-separated subset of stages")
    r.add_argument("--force", action="store_true", help="re-run stages even if committed")


def _add_plan(sub) -> None:
    p = sub.add_parser(
        "plan", help="the stages a config runs and why the others skip; --json: the stage spec"
    )
    p.add_argument("--config", default=None, help="engine profile or TOML file (as for run)")
    _add_set(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print every stage with its engine and upstream stages (airflow_dags reads it); "
        "with --config/--set, also this config's plan",
    )
    p.add_argument("--out", default=None, metavar="FILE", help="write the JSON here (--json)")
    p.add_argument(
        "--run-dir",
        default=None,
        help="plan for this run (<out>/<run_id>): rank.model=latest is resolved against --out",
    )


def _add_evaluate(sub) -> None:
    e = sub.add_parser("evaluate", help="print metrics of a run's rankings/candidates")
    e.add_argument("run_dir")
    e.add_argument(
        "--table", default="rankings,candidates", help="rankings|candidates (comma list)"
    )
    e.add_argument("--k", default=None, help="cut-offs, e.g. 10,20,100 (default: the run's)")
    e.add_argument(
        "--target", default=None, help="test|valid|serve (default: the run's eval.target)"
    )
    e.add_argument(
        "--against",
        default=None,
        metavar="EVENTS",
        help="score a serve run's rankings against events that arrived after it",
    )
    e.add_argument("--format", default=None, help="format of --against (default: auto)")
    e.add_argument(
        "--since", default=None, help="with --against: only events at or after this ISO time"
    )


def _add_gate(sub) -> None:
    g = sub.add_parser("gate", help="check a run against its gate bounds; exit 1 on a breach")
    g.add_argument("run_dir")
    g.add_argument("--previous", metavar="RUN", help="the run whose coverage@10 this one keeps")
    _add_set(g)


def _add_tools(sub) -> None:
    s = sub.add_parser("show", help="preview a table and print its manifest")
    s.add_argument("table_dir", help="RUN_DIR/TABLE")
    s.add_argument("-n", type=int, default=10, help="rows to show")

    c = sub.add_parser("compare", help="two runs' metrics side by side with deltas")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--segment", default="all", help="a segment name, or * for every segment")
    c.add_argument("--table", default="rankings", help="rankings|candidates|*")

    g = sub.add_parser(
        "generate", help="write a synthetic log (events/ + items/) that `run --input` reads"
    )
    g.add_argument("--events", type=int, required=True, help="number of events, e.g. 1000000")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--out", required=True, help="a new or empty directory")
    g.add_argument(
        "--model-set",
        dest="model_sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a LogModel field, e.g. --model-set zipf_a=1.2",
    )

    a = sub.add_parser("data", help="print the path of a dataset shipped in a package")
    a.add_argument("name", nargs="?", help="ml-100k | ml-1m (default: list them)")

    d = sub.add_parser(
        "demo", help="run MovieLens-1M end to end (ingest, split, candidates, evaluate)"
    )
    d.add_argument("--out", default="runs")
    d.add_argument("--run-id", default="demo-ml1m")
    d.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines import api
    from pipelines.config import load_config
    from pipelines.run_dir import resolve_run_dir

    cfg = load_config(
        args.config, [*api.input_sets(args.input, args.items, args.format), *args.sets]
    )
    run_dir = resolve_run_dir(args.out, args.run_id or time.strftime("%Y%m%d-%H%M%S"))
    t0 = time.perf_counter()
    api.run(cfg, run_dir, args.stages.split(",") if args.stages else None, force=args.force)
    print(f"run {run_dir} finished in {time.perf_counter() - t0:.1f}s")
    if (run_dir / "report.md").exists():
        print(f"report: {run_dir / 'report.md'}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    """The plan's lines, or (--json) the stage spec; `--out` writes it, as `make dag-spec` does."""
    import json

    from pipelines import api
    from pipelines.config import load_config
    from pipelines.errors import ConfigError

    given = args.config is not None or bool(args.sets) or args.run_dir is not None
    # A plan reads no input or model (the run does, and checks them): a DAG's plan task may
    # run where neither is, before the data has arrived.
    cfg = load_config(args.config, args.sets, check_paths=False) if given else None
    notes: list[str] = []
    if cfg is not None and args.run_dir:
        cfg, notes = api.prepare(cfg, args.run_dir)
    if not args.json:
        if args.out:
            raise ConfigError("--out writes the JSON spec", hint="add --json")
        print("\n".join(api.plan(cfg or load_config(None, []), notes=notes).lines()))
        return 0
    text = json.dumps(api.stage_spec(cfg, notes), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import polars as pl

    from pipelines import api
    from pipelines.config import load_config
    from pipelines.errors import ConfigError
    from pipelines.evaluation.run import run_target

    run_dir = Location(args.run_dir)
    toml = run_dir / "config.toml"
    cfg = load_config(toml, check_paths=False) if toml.exists() else None
    ks = [int(k) for k in args.k.split(",") if k] if args.k else (cfg.eval.ks if cfg else [10])
    show = pl.Config(tbl_rows=200, tbl_hide_dataframe_shape=True, float_precision=4)
    if args.against is None and (args.since, args.format) != (None, None):
        raise ConfigError("--since and --format are for --against EVENTS, which is not given")
    if args.against is not None:
        metrics, extra = api.evaluate_against(run_dir, args.against, args.format, ks, args.since)
        print_against(run_dir, args.against, metrics, extra)
        return 0
    target = args.target or run_target(run_dir)
    max_rows = cfg.eval.max_rows_in_memory if cfg else None
    metrics = api.evaluate(run_dir, args.table.split(","), ks, target, max_rows)
    with show:
        print(f"{run_dir} (target: {target}, users: {metrics['n_users'].max()})")
        print(_wide(metrics.filter(pl.col("segment") == "all")))
    return 0


def print_against(run_dir: Location, against: str, metrics, extra: dict) -> None:
    """What `evaluate --against` prints: who was scored and counted, the metrics table."""
    import polars as pl

    with pl.Config(tbl_rows=200, tbl_hide_dataframe_shape=True, float_precision=4):
        print(f"{run_dir} against {against}: {extra['scored']}\n{extra['stale']}")
        print(_wide(metrics.filter(pl.col("segment") == "all")))
    print(f"table: {run_dir / 'served_metrics'}")


def _wide(metrics):  # pl.DataFrame -> pl.DataFrame: one column per table
    return metrics.pivot(on="table", index=["metric", "k"], values="value").sort("metric", "k")


def _cmd_gate(args: argparse.Namespace) -> int:
    from pipelines.quality_gate import check_run

    report = check_run(args.run_dir, args.previous, args.sets)
    print("\n".join(report.lines()))
    report.raise_on_breach()
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    import json

    import polars as pl

    from pipelines import tableio

    d = Location(args.table_dir)
    manifest = tableio.verify_table(d.parent, d.name)
    df = tableio.read_polars(d.parent, d.name)
    with pl.Config(tbl_rows=args.n, fmt_str_lengths=60):
        print(df.head(args.n))
    print(json.dumps(manifest, indent=2))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import polars as pl

    from pipelines.evaluation.compare import compare_metrics

    df = compare_metrics(args.run_a, args.run_b)
    if args.segment != "*":
        df = df.filter(pl.col("segment") == args.segment)
    if args.table != "*":
        df = df.filter(pl.col("table") == args.table)
    with pl.Config(tbl_rows=500, tbl_hide_dataframe_shape=True, float_precision=4):
        print(f"a = {args.run_a}\nb = {args.run_b}")
        print(df)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    import dataclasses

    from pipelines.config import coerce, parse_literal
    from pipelines.errors import ConfigError
    from pipelines.synthetic_logs import LogModel, generate_logs

    fields = {f.name: f for f in dataclasses.fields(LogModel)}
    overrides = {}
    for item in args.model_sets:
        key, _, raw = item.partition("=")
        if key not in fields:
            raise ConfigError(
                f"unknown generator field '{key}'", hint=f"one of: {', '.join(fields)}"
            )
        overrides[key] = coerce(parse_literal(raw), type(getattr(LogModel(), key)), key)
    summary = generate_logs(args.events, args.seed, args.out, LogModel(**overrides))
    print(
        f"wrote {summary['events']:,} events of {summary['users']:,} users on "
        f"{summary['items']:,} items to {args.out} in {summary['seconds']}s; "
        f"read it with: walkrank run --input {args.out} --out runs"
    )
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from pipelines.ingest.datasets import DATASETS, dataset_path

    for name in [args.name] if args.name else list(DATASETS):
        print(dataset_path(name) if args.name else f"{name}\t{dataset_path(name)}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import polars as pl

    from pipelines import api, tableio
    from pipelines.config import load_config
    from pipelines.ingest.datasets import dataset_format, dataset_path
    from pipelines.run_dir import resolve_run_dir

    sets = [*api.input_sets(str(dataset_path("ml-1m")), fmt=dataset_format("ml-1m")), *args.sets]
    cfg = load_config("local", sets)
    run_dir = resolve_run_dir(args.out, args.run_id)
    t0 = time.perf_counter()
    api.run(cfg, run_dir)
    m = tableio.read_polars(run_dir, "metrics").filter(
        (pl.col("segment") == "all") & (pl.col("k") == 10)
    )
    vals = {(r["table"], r["metric"]): r["value"] for r in m.iter_rows(named=True)}
    order = tableio.read_manifest(run_dir, "rankings")["extra"].get("order", "candidate order")
    print(f"MovieLens-1M demo in {time.perf_counter() - t0:.1f}s (test split, 6,040 users):")
    for table, label in (("candidates", "fused candidates"), ("rankings", f"rankings: {order}")):
        ndcg, hr = vals.get((table, "ndcg"), float("nan")), vals.get((table, "hr"), float("nan"))
        print(f"  {label:<36} NDCG@10 {ndcg:.4f}  HR@10 {hr:.4f}")
    print(f"tables: {run_dir}/<table>/  report: {run_dir / 'report.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {
        "run": _cmd_run,
        "plan": _cmd_plan,
        "evaluate": _cmd_evaluate,
        "gate": _cmd_gate,
        "show": _cmd_show,
        "generate": _cmd_generate,
        "compare": _cmd_compare,
        "demo": _cmd_demo,
        "data": _cmd_data,
    }
    return guarded(lambda: handlers[args.cmd](args))


def guarded(command) -> int:  # command: () -> int
    """Run a command and turn its errors into one line with a hint and an exit code: 2 for
    usage and config errors (an error's own `exit_code` where it has one: a gate breach is 1),
    1 for engine errors and a full disk (the jobs use it too)."""
    from pipelines.errors import WalkRankError

    try:
        return command()
    except WalkRankError as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except OSError as exc:
        from pipelines.tableio import is_disk_full

        if os.environ.get(DEBUG_ENV) or not is_disk_full(exc):
            raise
        print(
            f"error: no space left on the device writing {exc.filename or 'a file'}\n"
            "  hint: free space there, or write the run elsewhere with --out, then re-run",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # Java/Py4J errors: one line, not a JVM stack trace
        if os.environ.get(DEBUG_ENV) or not _is_engine_error(exc):
            raise
        first = engine_error_line(exc)
        print(
            f"error: {type(exc).__name__}: {first}\n  hint: set {DEBUG_ENV}=1 for the full trace",
            file=sys.stderr,
        )
        return 1


def engine_error_line(exc: Exception) -> str:
    """The line of a Spark/Ray error that names the cause: a Python worker's traceback ends
    with `SomeError: message`, which is worth more than the wrapper's first line."""
    import re

    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    causes = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b.*:", ln)]
    return causes[-1] if causes and causes[-1] != lines[0] else lines[0]


def _is_engine_error(exc: Exception) -> bool:
    mod = type(exc).__module__
    return mod.startswith(("pyspark", "py4j", "ray"))


if __name__ == "__main__":
    sys.exit(main())
