"""A default run on local disk and the same run on S3, back to back, on one machine.

    python benchmarks/s3_bench.py [--input shared/.../Toys_and_Games.txt] [--format sequences]

Starts the tests' S3 server (SeaweedFS on 127.0.0.1, tests/s3_server.py), uploads the input,
then runs `walkrank run --set llm.enabled=false` twice as a user would, each in a process of
its own: local input into a local `--out`, then the S3 input into `s3://walkrank/runs` (the
only S3 settings: the AWS environment variables). Prints one JSON object: both runs' wall
time and stage seconds (from the manifests), their ratio, and whether the two `rankings`
tables are equal by content. The server's own CPU counts against the S3 run, as a local
object store would.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOYS = ROOT.parent / "shared" / "datasets" / "amazon-toys" / "Toys_and_Games.txt"


def _run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", *args], cwd=cwd, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(f"walkrank run {' '.join(args)} failed:\n{res.stderr[-4000:]}")
    return time.perf_counter() - t0


def _stage_seconds(run) -> dict[str, float]:
    from pipelines import tableio
    from pipelines.storage import Location

    out: dict[str, float] = {}
    for e in Location(run).list():
        if e.is_dir and tableio.is_committed(run, e.rel):
            m = tableio.read_manifest(run, e.rel)
            out[m["stage"]] = max(out.get(m["stage"], 0.0), m["seconds"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", default=str(TOYS))
    p.add_argument("--format", default="sequences")
    p.add_argument("--set", dest="sets", action="append", default=["llm.enabled=false"])
    a = p.parse_args()
    from tests.s3_server import s3_server

    with tempfile.TemporaryDirectory() as tmp, s3_server(Path(tmp) / "s3") as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(server.env, SPARK_LOCAL_IP="127.0.0.1")
        os.environ.update(server.env)
        from pipelines.storage import Location

        name = Path(a.input).name
        (Location("s3://walkrank/in") / name).write_bytes(Path(a.input).read_bytes())
        sets = [x for s in a.sets for x in ("--set", s)]
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        common = ["--format", a.format, "--run-id", "t", *sets]
        local_out = Path(tmp) / "out"
        local = _run(["--input", a.input, "--out", str(local_out), *common], env, cwd)
        remote = _run(["--input", f"s3://walkrank/in/{name}", "--out", "s3://walkrank/runs",
                       *common], env, cwd)  # fmt: skip

        from pipelines import tableio

        def rankings(run):
            return tableio.read_polars(run, "rankings").sort("user_id", "rank")

        same = rankings(local_out / "t").equals(rankings("s3://walkrank/runs/t"))
        print(
            json.dumps(
                {
                    "input": a.input,
                    "sets": a.sets,
                    "local_seconds": round(local, 1),
                    "s3_seconds": round(remote, 1),
                    "s3_over_local": round(remote / local, 3),
                    "rankings_equal": same,
                    "stages_local": _stage_seconds(local_out / "t"),
                    "stages_s3": _stage_seconds("s3://walkrank/runs/t"),
                    "nothing_in_cwd": not any(cwd.iterdir()),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
