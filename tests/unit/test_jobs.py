"""jobs/stage_job.py: how a scheduler's arguments reach a stage without a shell."""

from __future__ import annotations

import json
import sys

import pytest

from jobs.stage_job import ARGS_ENV, job_argv, main

HOSTILE = "x'; $(touch /tmp/walkrank-pwned) `id`"


def test_a_ray_jobs_arguments_come_from_its_environment(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jobs/summaries.py"])
    monkeypatch.setenv(ARGS_ENV, json.dumps(["--run-dir", HOSTILE]))
    assert job_argv(None) == ["--run-dir", HOSTILE]
    # A command line, when given, wins; an explicit argv wins over both.
    monkeypatch.setattr(sys, "argv", ["jobs/summaries.py", "--run-dir", "r"])
    assert job_argv(None) == ["--run-dir", "r"]
    assert job_argv(["--run-dir", "s"]) == ["--run-dir", "s"]


def test_job_args_env_must_be_a_list_of_strings(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jobs/summaries.py"])
    monkeypatch.setenv(ARGS_ENV, json.dumps({"run-dir": "r"}))
    with pytest.raises(SystemExit, match="JSON list of strings"):
        job_argv(None)


def test_sets_json_takes_a_list(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main("split", ["--run-dir", str(tmp_path / "r"), "--sets-json", '"ppr.alpha=0.3"'])
    assert exc.value.code == 2


def test_evaluate_against_a_run_without_rankings_has_nothing_to_score(tmp_path, capsys):
    code = main("evaluate", ["--run-dir", str(tmp_path / "2026-11-19"), f"--against={HOSTILE}"])
    assert code == 0
    assert "nothing to score" in capsys.readouterr().err
