"""A real `walkrank run` of the default learned pipeline (the fit pass included) given S3
credentials both ways a user gives them, as Spark settings on the command line (`--set
spark.conf.spark.hadoop.fs.s3a.*`, what a profile's [spark.conf] holds) and in the environment
(AWS_SECRET_ACCESS_KEY, ...): not one byte of any of them in any file under the run folder,
nor in what the run printed. The run still records that they were set (config.toml names the
left-out keys)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipelines import tableio
from tests.daily_history import history_rows, write_csv

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_leaves_no_credential_in_its_files(tmp_path):
    tag = uuid.uuid4().hex[:12]  # unique: no byte sequence of the run can hold them by chance
    given = {
        "spark.conf.spark.hadoop.fs.s3a.access.key": f"AKIAsetmark{tag}",
        "spark.conf.spark.hadoop.fs.s3a.secret.key": f"secretsetmark{tag}",
        "spark.conf.spark.hadoop.fs.s3a.session.token": f"tokensetmark{tag}",
    }
    env = {
        "AWS_ACCESS_KEY_ID": f"AKIAenvmark{tag}",
        "AWS_SECRET_ACCESS_KEY": f"secretenvmark{tag}",
        "AWS_SESSION_TOKEN": f"tokenenvmark{tag}",
    }
    write_csv(tmp_path / "events.csv", history_rows(random.Random(2)))
    # A ranker fitted on the fit pass's 41 users and kept: its model folder is among the files.
    sets = ["spark.master=local[2]", "ppr.walks_per_node=100", "rank.min_fit_users=10",
            "rank.min_gain=-1", *(f"{k}={v}" for k, v in given.items())]  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--input", str(tmp_path / "events.csv"),
         "--format", "csv", "--out", str(tmp_path / "runs"), "--run-id", "r",
         *[a for s in sets for a in ("--set", s)]],
        cwd=ROOT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **env},
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / "r"
    # The files that hold a config are there: the run's, its fit pass's, and manifests.
    assert tableio.is_committed(run, "rankings") and tableio.is_committed(run / "fit", "candidates")
    assert (run / "models" / "ranker").is_dir()
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {"config.toml", "_manifest.json", "plan.json"} <= {p.name for p in files}

    markers = [v.encode() for v in [*given.values(), *env.values()]]
    leaks = {
        str(p.relative_to(run)): [m.decode() for m in markers if m in p.read_bytes()] for p in files
    }
    assert {f: found for f, found in leaks.items() if found} == {}
    said = (res.stdout + res.stderr).encode()
    assert [m.decode() for m in markers if m in said] == []

    # What was given is named, not lost without a trace.
    for toml in (run / "config.toml", run / "fit" / "config.toml"):
        lines = toml.read_text().splitlines()
        for key in given:
            name = key.removeprefix("spark.conf.")
            assert f'# conf."{name}" = <redacted>' in lines, (toml, name)
