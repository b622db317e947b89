"""The one job entry point (jobs/stage_job.py) and the stage spec (`walkrank plan --json`) that
the Airflow DAG reads: both derive from the stage registry, so no list of stage names is kept
anywhere else; and a scheduler's arguments reach a stage without a shell."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.stage_job import ARGS_ENV, job_argv, main
from pipelines import api
from pipelines.cli import main as cli_main
from pipelines.stage_registry import STAGES

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = ROOT / "airflow_dags" / "walkrank_stages.json"
HOSTILE = "x'; $(touch /tmp/walkrank-pwned) `id`"


def _writer(table: str) -> str:
    return [s.name for s in STAGES.values() if table in s.outputs][-1]


def test_a_ray_jobs_arguments_come_from_its_environment(monkeypatch):
    # The entrypoint names the stage; the arguments follow from the job's environment.
    monkeypatch.setattr(sys, "argv", ["jobs/stage_job.py", "summaries"])
    monkeypatch.setenv(ARGS_ENV, json.dumps(["--run-dir", HOSTILE]))
    assert job_argv(None) == ["summaries", "--run-dir", HOSTILE]
    # More on the command line wins; an explicit argv wins over both.
    monkeypatch.setattr(sys, "argv", ["jobs/stage_job.py", "summaries", "--run-dir", "r"])
    assert job_argv(None) == ["summaries", "--run-dir", "r"]
    assert job_argv(["split", "--run-dir", "s"]) == ["split", "--run-dir", "s"]


def test_job_args_env_must_be_a_list_of_strings(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jobs/stage_job.py", "summaries"])
    monkeypatch.setenv(ARGS_ENV, json.dumps({"run-dir": "r"}))
    with pytest.raises(SystemExit, match="JSON list of strings"):
        job_argv(None)


def test_sets_json_takes_a_list(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["split", "--run-dir", str(tmp_path / "r"), "--sets-json", '"ppr.alpha=0.3"'])
    assert exc.value.code == 2


@pytest.mark.parametrize("argv", [["nope", "--run-dir", "r"], ["--run-dir", "r"]])
def test_an_unknown_or_missing_stage_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "STAGE" in err and (argv[0] != "nope" or "invalid choice: 'nope'" in err)


def test_every_registry_stage_runs_through_the_one_job(tmp_path, monkeypatch):
    """Each stage name reaches `walkrank run --stages <stage>` with the job's config."""
    ran = []
    monkeypatch.setattr(api, "run", lambda cfg, run_dir, stages, force: ran.append((cfg, stages)))
    sets = json.dumps(["ppr.alpha=0.3"])
    for name in STAGES:
        assert main([name, "--run-dir", str(tmp_path / "r"), "--sets-json", sets]) == 0
    assert [stages for _, stages in ran] == [[name] for name in STAGES]
    assert {cfg.ppr.alpha for cfg, _ in ran} == {0.3}


def test_stages_joined_by_commas_run_in_one_job(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(api, "run", lambda cfg, run_dir, stages, force: ran.append(stages))
    names = list(STAGES)[1:4]
    assert main([",".join(names), "--run-dir", str(tmp_path / "r")]) == 0
    assert ran == [names]
    for bad, says in [(f"{names[0]},nope", "invalid choice: 'nope'"), (f"{names[0]},", "''"),
                      (f"{names[0]},{names[0]}", "a stage named twice")]:  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main([bad, "--run-dir", str(tmp_path / "r")])
        assert exc.value.code == 2 and says in capsys.readouterr().err
    assert len(ran) == 1


def test_evaluate_against_a_run_without_rankings_has_nothing_to_score(tmp_path, capsys):
    stage = _writer("metrics")
    code = main([stage, "--run-dir", str(tmp_path / "2026-11-19"), f"--against={HOSTILE}"])
    assert code == 0
    assert "nothing to score" in capsys.readouterr().err


def test_against_belongs_to_the_stage_that_writes_metrics(tmp_path):
    other = next(n for n, s in STAGES.items() if "metrics" not in s.outputs)
    for stages in (other, f"{other},{_writer('metrics')}"):
        with pytest.raises(SystemExit) as exc:
            main([stages, "--run-dir", str(tmp_path / "r"), "--against", "events"])
        assert exc.value.code == 2


def test_the_job_runs_as_spark_submit_and_ray_start_it():
    """`python jobs/stage_job.py` (spark-submit's application) and `python -m jobs.stage_job`
    (a Ray job's entrypoint): --help lists the registry's stages; an unknown one exits 2."""
    for cmd in ([sys.executable, "jobs/stage_job.py"], [sys.executable, "-m", "jobs.stage_job"]):
        res = subprocess.run([*cmd, "--help"], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        assert ", ".join(STAGES) in " ".join(res.stdout.split())
        res = subprocess.run(
            [*cmd, "no_such_stage", "--run-dir", "r"], cwd=ROOT, capture_output=True, text=True
        )
        assert res.returncode == 2 and "invalid choice: 'no_such_stage'" in res.stderr


def test_jobs_hold_one_entry_point_and_no_stage_names():
    """No per-stage job files, and no stage name spelled in jobs/ or the DAG: they take the
    names from the registry (the job) or the spec (the DAG)."""
    assert sorted(p.name for p in (ROOT / "jobs").glob("*.py")) == ["__init__.py", "stage_job.py"]
    files = [*(ROOT / "jobs").glob("*.py"), *(ROOT / "airflow_dags").glob("*.py")]
    for path in files:
        strings = {
            n.value
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        assert not strings & set(STAGES), (path.name, strings & set(STAGES))


def _plan_json(capsys, *args: str) -> dict:
    assert cli_main(["plan", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_json_is_the_registry(capsys):
    spec = _plan_json(capsys)
    assert [s["name"] for s in spec["stages"]] == list(STAGES)
    assert "plan" not in spec  # no config given: the registry alone
    for row in spec["stages"]:
        stage = STAGES[row["name"]]
        reads = set(stage.inputs_for(None))
        producers = {s.name for s in STAGES.values() if reads & set(s.outputs)} - {stage.name}
        assert set(row["upstream"]) == producers, row["name"]
        assert row["engine"] == stage.engine and row["writes"] == list(stage.outputs)
    # One stage takes the run's input (the job's --input/--format).
    assert [s["name"] for s in spec["stages"] if s["reads_input"]] == [
        n for n, s in STAGES.items() if "ingest" in s.config_keys
    ]


def test_plan_json_with_a_config_says_what_it_plans(capsys):
    spec = _plan_json(capsys, "--set", "llm.enabled=false")
    rows = {r["name"]: r for r in spec["plan"]["stages"]}
    assert set(rows) == set(STAGES)
    assert all(r["reason"] for r in rows.values() if not r["planned"])
    assert rows[_writer("metrics")]["planned"]


def test_the_dags_plan_call_says_what_a_serve_run_skips(tmp_path, capsys):
    """What the DAG's `plan` task runs (airflow_dags/walkrank_daily.py): every registry stage,
    planned or with its reason; by default a serve run plans no Ray stage. Planning writes
    nothing into the run."""
    run_dir = tmp_path / "runs" / "2026-11-21"
    spec = _plan_json(capsys, f"--run-dir={run_dir}", "--config=", "--set=eval.target=serve")
    rows = {r["name"]: r for r in spec["plan"]["stages"]}
    assert set(rows) == set(STAGES)
    ray = [n for n, s in STAGES.items() if s.engine == "ray"]
    assert ray and all(not rows[n]["planned"] and rows[n]["reason"] for n in ray)
    assert rows[_writer("rankings")]["planned"] and rows[_writer("metrics")]["planned"]
    assert not run_dir.exists()


def test_the_committed_spec_is_current(capsys):
    """airflow_dags/walkrank_stages.json is what `walkrank plan --json` prints now; when it
    fails, regenerate it with `make dag-spec`."""
    assert cli_main(["plan", "--json"]) == 0
    assert SPEC_FILE.read_text() == capsys.readouterr().out, "stale: run `make dag-spec`"


def test_plan_out_writes_the_spec(tmp_path, capsys):
    out = tmp_path / "spec.json"
    assert cli_main(["plan", "--json", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == api.stage_spec()
    assert cli_main(["plan", "--out", str(out)]) == 2  # --out is for the JSON
