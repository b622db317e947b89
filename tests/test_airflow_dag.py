"""The walkrank_daily DAG in a real Airflow 3 (its own venv, `make airflow-setup`): it imports
cleanly, its tasks and edges follow the stage registry, and `airflow dags test` runs the
whole DAG, producing the same rankings and metrics as a CLI run of the same config."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipelines import tableio
from pipelines.config import load_config
from pipelines.stages import DEFAULT_STAGES, STAGES

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"
DAGS = ROOT / "airflow_dags"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not AIRFLOW_PY.exists() and not os.environ.get("CI"),
        reason="Airflow's venv is missing: run `make airflow-setup` (make test does)",
    ),
]

SETS = ["spark.master=local[2]", "ppr.walks_per_node=100", "llm.enabled=false"]


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "WALKRANK_HOME": str(ROOT),
        "WALKRANK_PYTHON": sys.executable,
        "WALKRANK_SPARK_MASTER": "local[2]",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def test_dag_imports_with_the_registry_tasks_and_order(tmp_path):
    probe = (
        "import json; from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag({str(DAGS)!r})\n"
        "dag = bag.dags['walkrank_daily']\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},\n"
        "  'tasks': {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},\n"
        "  'retries': [t.retries for t in dag.tasks],\n"
        "  'timeouts': [t.execution_timeout.total_seconds() for t in dag.tasks],\n"
        "  'params': sorted(dag.params.keys())}))"
    )
    res = subprocess.run(
        [str(AIRFLOW_PY), "-c", probe], env=_airflow_env(tmp_path), capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    upstream = info["tasks"]
    assert set(upstream) == set(DEFAULT_STAGES)
    assert min(info["retries"]) >= 1 and min(info["timeouts"]) > 0
    assert info["params"] == ["config", "input", "out", "sets"]

    def ancestors(task: str) -> set[str]:
        seen, todo = set(), list(upstream[task])
        while todo:
            t = todo.pop()
            if t not in seen:
                seen.add(t)
                todo.extend(upstream[t])
        return seen

    # Every table a stage reads (under the default config) comes from an ancestor task.
    cfg = load_config(None, [])
    producers = {out: s.name for s in STAGES.values() for out in s.outputs}
    for name, stage in STAGES.items():
        needed = {producers[i] for i in stage.inputs_for(cfg) if i in producers} - {name}
        assert needed <= ancestors(name), (name, needed - ancestors(name))


def test_airflow_dags_test_runs_the_whole_dag(tmp_path):
    rng = random.Random(2)
    data = tmp_path / "seq.txt"
    data.write_text(
        "".join(
            " ".join([f"u{u}", *(str(rng.randrange(40)) for _ in range(rng.randint(3, 10)))]) + "\n"
            for u in range(50)
        )
    )
    home = tmp_path / "airflow"
    env = _airflow_env(home)
    airflow = str(AIRFLOW_PY.parent / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    conf = {"input": str(data), "out": str(tmp_path / "runs"), "sets": SETS}
    res = subprocess.run(
        [airflow, "dags", "test", "walkrank_daily", "2026-11-20", "--conf", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    run_dir = tmp_path / "runs" / "2026-11-20"
    for table in ("rankings", "metrics", "candidates"):
        assert tableio.is_committed(run_dir, table), (res.stdout + res.stderr)[-5000:]

    cli = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--input", str(data), "--out",
         str(tmp_path / "cli"), "--run-id", "r", *[a for s in SETS for a in ("--set", s)]],
        cwd=ROOT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    for table, keys in (
        ("rankings", ["user_id", "rank"]),
        ("metrics", ["table", "metric", "k", "segment"]),
    ):
        a = tableio.read_polars(run_dir, table).sort(keys)
        b = tableio.read_polars(tmp_path / "cli" / "r", table).sort(keys)
        assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9)
