"""Stage keys carry the package version and a hash of the code each stage runs: a change to a
kernel re-runs the stages that call it and no other; a comment changes nothing."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from pipelines import __version__
from pipelines.code_hash import code_modules
from pipelines.config import Config
from pipelines.runner import run_stages
from pipelines.stage import Stage
from pipelines.stage_registry import STAGES

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json; from pipelines.stage_registry import STAGES; "
    "print(json.dumps({n: s.code_version() for n, s in STAGES.items()}))"
)


def _versions(tree: Path) -> dict[str, str]:
    """Every stage's code version, computed by a fresh interpreter importing `tree`'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tree, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def _edit(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_kernel_change_changes_exactly_the_stages_that_run_it(tmp_path):
    tree = tmp_path / "code"
    for pkg in ("pipelines", "udfs", "schemas"):
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = _versions(tree)
    # The copy is the same code: same hashes as this checkout's (the location does not count).
    assert before == {n: s.code_version() for n, s in STAGES.items()}
    assert all(v.startswith(f"{__version__}+") for v in before.values())
    assert len(set(before.values())) == len(before)  # each stage runs its own code

    # A comment is no code change (the hash is over the syntax tree).
    _edit(tree / "udfs" / "walk_numba.py", "\n\n# a note for readers\n")
    assert _versions(tree) == before

    # The PPR walk kernel: only `ppr` runs it (fit_ranker reads the fit pass's tables, which
    # its own ppr stage rewrites: their fingerprints re-key fit_ranker, not its code).
    _edit(tree / "udfs" / "walk_numba.py", "\n\ndef _added():\n    return 1\n")
    after = _versions(tree)
    assert {n for n in before if before[n] != after[n]} == {"ppr"}

    # One candidate source (loaded by name from the registry): `candidates`.
    _edit(tree / "pipelines" / "candidates" / "sources" / "item_cf.py", "\nLIMIT = 3\n")
    again = _versions(tree)
    assert {n for n in after if after[n] != again[n]} == {"candidates"}

    # The table writer runs in every stage: all of them.
    _edit(tree / "pipelines" / "tableio.py", "\nLIMIT = 3\n")
    last = _versions(tree)
    assert all(last[n] != again[n] for n in again)


def test_the_modules_of_a_stage_include_its_kernels_not_other_stages():
    ppr = code_modules(STAGES["ppr"].fn.__module__)
    assert {"udfs.walk_batch", "udfs.walk_numba", "pipelines.ppr.broadcast"} <= set(ppr)
    assert not any(m.startswith(("pipelines.neighbors", "pipelines.llm")) for m in ppr)
    # The runner's machinery decides whether a stage runs, not what it writes.
    assert "pipelines.runner" not in ppr and "pipelines.config" not in ppr
    # The candidate sources are imported by name (importlib): all of them count.
    candidates = code_modules(STAGES["candidates"].fn.__module__)
    assert {f"pipelines.candidates.sources.{s}" for s in ("ppr", "item_cf", "popular")} <= set(
        candidates
    )


STAGE_MODULE = """
import polars as pl


def fn(ctx):
    ctx.write(
        "metrics",
        pl.DataFrame(
            {{"table": ["rankings"], "metric": ["hr"], "k": [10], "segment": ["all"],
              "value": [{value}], "n_users": [3]}},
            schema_overrides={{"k": pl.Int32}},
        ),
    )
"""


def test_the_runner_reruns_a_stage_whose_code_changed(tmp_path, monkeypatch):
    mod_dir = tmp_path / "plugin"
    mod_dir.mkdir()
    module = mod_dir / "walkrank_test_stage.py"
    module.write_text(textwrap.dedent(STAGE_MODULE.format(value=0.5)))
    monkeypatch.syspath_prepend(str(mod_dir))
    import walkrank_test_stage

    stage = Stage(
        name="m", fn=walkrank_test_stage.fn, outputs=("metrics",), config_keys=("eval",),
        engine="local",
    )  # fmt: skip
    run = tmp_path / "run"
    assert run_stages(run, Config(), [stage]) == {"m": "ran"}
    assert run_stages(run, Config(), [stage]) == {"m": "skipped"}
    first = json.loads((run / "metrics" / "_manifest.json").read_text())
    assert first["code_version"] == f"walkrank-{stage.code_version()}"

    # A fix to the stage's code: the committed table is stale, the same command re-runs it.
    module.write_text(textwrap.dedent(STAGE_MODULE.format(value=0.25)))
    stage = replace(stage, fn=importlib.reload(walkrank_test_stage).fn)
    assert run_stages(run, Config(), [stage]) == {"m": "ran"}
    assert run_stages(run, Config(), [stage]) == {"m": "skipped"}
    second = json.loads((run / "metrics" / "_manifest.json").read_text())
    assert second["stage_key"] != first["stage_key"]
    assert second["code_version"] != first["code_version"]
    from pipelines import tableio

    assert tableio.read_polars(run, "metrics")["value"].to_list() == [0.25]
