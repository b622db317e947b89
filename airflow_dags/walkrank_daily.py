"""walkrank_daily: one WalkRank run per logical date, one task per stage.

Spark stages go through `spark-submit jobs/<stage>.py` (the master and the code artifact
come from the environment below), Ray stages run their job script as a Ray driver
(`RAY_ADDRESS` in the environment points it at a cluster), `evaluate` runs last. The run id
is the logical date (`<out>/<ds>`): a re-run of a date rewrites that date's run and no other,
each table atomically (the stages commit manifest-last and skip what is already committed
for the same inputs and config).

Nothing of WalkRank is imported here: Airflow lives in its own virtual environment
(`make airflow-setup`), and the tasks call the project's interpreter.

Environment (read when the DAG is parsed):
    WALKRANK_HOME          the repository (default: the folder above this file)
    WALKRANK_PYTHON        the project's Python (default: $WALKRANK_HOME/.venv/bin/python)
    WALKRANK_SPARK_MASTER  spark-submit --master (default: local[*])
    WALKRANK_PY_FILES      spark-submit --py-files, e.g. dist/walkrank-0.1.0-py3-none-any.whl
Params (per run, `--conf` / the trigger form): input, config, out, sets (list of key=value).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

HOME = Path(os.environ.get("WALKRANK_HOME", Path(__file__).resolve().parents[1]))
PYTHON = os.environ.get("WALKRANK_PYTHON", str(HOME / ".venv" / "bin" / "python"))
MASTER = os.environ.get("WALKRANK_SPARK_MASTER", "local[*]")
PY_FILES = os.environ.get("WALKRANK_PY_FILES", "")

# stage -> (engine, upstream stages): the order of WalkRank's stage registry
# (pipelines/stages); tests/test_airflow_dag.py checks the two agree.
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ingest": ("spark", ()),
    "split": ("spark", ("ingest",)),
    "graph": ("spark", ("split",)),
    "ppr": ("spark", ("graph",)),
    "neighbors": ("spark", ("split",)),
    "candidates": ("spark", ("ppr", "neighbors")),
    "summaries": ("ray", ("candidates",)),
    "llm_scores": ("ray", ("summaries",)),
    "rank": ("local", ("llm_scores",)),
    "evaluate": ("local", ("rank",)),
}

RUN_ARGS = (
    "--run-dir {{ params.out }}/{{ ds }}"
    "{% if params.config %} --config {{ params.config }}{% endif %}"
    "{% for s in params.sets %} --set '{{ s }}'{% endfor %}"
)


def command(stage: str, engine: str) -> str:
    job = f"{HOME}/jobs/{stage}.py"
    extra = " --input {{ params.input }}" if stage == "ingest" else ""
    if engine == "spark":
        py_files = f" --py-files {PY_FILES}" if PY_FILES else ""
        launch = (
            f"PYSPARK_PYTHON={PYTHON} PYSPARK_DRIVER_PYTHON={PYTHON} "
            f"{Path(PYTHON).parent}/spark-submit --master '{MASTER}'{py_files} {job}"
        )
    else:
        launch = f"{PYTHON} {job}"
    return f"cd {HOME} && {launch} {RUN_ARGS}{extra}"


with DAG(
    dag_id="walkrank_daily",
    description="WalkRank: ingest -> graph/PPR/neighbors -> candidates -> LLM -> rank -> evaluate",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=12),
    default_args={
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=10),
        "execution_timeout": dt.timedelta(hours=3),
    },
    params={
        "input": Param(str(HOME / "data" / "events"), type="string"),
        "config": Param("", type="string", description="TOML profile; empty for defaults"),
        "out": Param(str(HOME / "runs" / "airflow"), type="string"),
        "sets": Param([], type="array", description="config overrides, key=value"),
    },
    tags=["walkrank"],
) as dag:
    tasks = {
        stage: BashOperator(task_id=stage, bash_command=command(stage, engine))
        for stage, (engine, _) in STAGES.items()
    }
    for stage, (_, upstream) in STAGES.items():
        for up in upstream:
            tasks[up] >> tasks[stage]
