"""What every job file runs: one stage of a run, as `spark-submit` or a Ray job calls it.

    spark-submit --py-files dist/walkrank-0.1.0-py3-none-any.whl jobs/graph.py \\
        --run-dir /data/runs/2026-11-25 --config conf/cluster.toml [--set key=value]...

`--run-dir DIR` names the run (`DIR` = `<out>/<run_id>`); the rest are `walkrank run`'s
options, so a job is exactly `walkrank run --stages <stage>`: the same config, the same skip
of committed outputs, the same one-line errors and exit codes (0 ok, 1 engine error, 2 usage
or config error).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(stage: str, argv: list[str] | None = None) -> int:
    """Parse a job's arguments and run `stage` of the run they name."""
    from pipelines.cli import main as walkrank

    p = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"the '{stage}' stage")
    p.add_argument("--run-dir", required=True, help="<out>/<run_id> of the run")
    p.add_argument("--config", help="TOML profile, e.g. conf/cluster.toml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--input", help="events path (ingest)")
    p.add_argument("--items", help="item catalog path (ingest)")
    p.add_argument("--format", help="input format (ingest)")
    p.add_argument("--force", action="store_true", help="re-run even if committed")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir)
    cmd = ["run", "--out", str(run_dir.parent), "--run-id", run_dir.name, "--stages", stage]
    for flag in ("config", "input", "items", "format"):
        if getattr(args, flag):
            cmd += [f"--{flag}", getattr(args, flag)]
    for s in args.sets:
        cmd += ["--set", s]
    if args.force:
        cmd.append("--force")
    return walkrank(cmd)
