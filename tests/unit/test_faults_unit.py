"""WALKRANK_FAULT at the table writer: where it fires, what it leaves, what it raises."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipelines import tableio
from pipelines.errors import ConfigError, DiskFullError, InjectedFaultError
from pipelines.faults import FAULT_ENV


def _rankings() -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": ["u"], "item_id": ["i"], "rank": [1], "score": [1.0]},
        schema_overrides={"rank": pl.Int32},
    )


def _write(run, key="k", stage="t"):
    return tableio.write_table(run, "rankings", _rankings(), stage=stage, stage_key=key)


def test_off_unless_set_and_only_at_its_point(tmp_path, monkeypatch):
    monkeypatch.delenv(FAULT_ENV, raising=False)
    _write(tmp_path)
    monkeypatch.setenv(FAULT_ENV, "metrics:raise")
    _write(tmp_path, "k2")  # another table: no fault
    monkeypatch.setenv(FAULT_ENV, "rank/rankings:raise")
    _write(tmp_path, "k3", stage="candidates")  # the same table from another stage: none
    assert tableio.read_manifest(tmp_path, "rankings")["stage_key"] == "k3"


@pytest.mark.parametrize("kind", ["raise", "enospc"])
def test_raise_and_enospc_leave_the_committed_table(tmp_path, monkeypatch, capsys, kind):
    _write(tmp_path)
    monkeypatch.setenv(FAULT_ENV, f"rankings:{kind}")
    with pytest.raises(InjectedFaultError if kind == "raise" else DiskFullError) as exc:
        _write(tmp_path, "k2")
    if kind == "enospc":
        assert "while writing table 'rankings'" in str(exc.value)
        assert exc.value.__cause__.errno == errno.ENOSPC
    err = capsys.readouterr().err
    assert f"[fault] {kind} at rankings: rankings v-" in err
    assert "holds 1 data file(s), its manifest absent" in err
    m = tableio.read_manifest(tmp_path, "rankings")
    assert m["stage_key"] == "k"
    # The writer removed its new version folder: only the committed one is left.
    assert sorted(p.name for p in (tmp_path / "rankings").iterdir()) == [
        "_manifest.json",
        m["version"],
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_kill_leaves_data_without_a_manifest(tmp_path):
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, '.');"
        "from tests.unit.test_faults_unit import _write; _write(Path(sys.argv[1]))"
    )
    env = {FAULT_ENV: "rankings:kill", "PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, cwd=root
    )
    assert res.returncode == -9
    (version,) = (tmp_path / "rankings").iterdir()  # data, and no manifest naming it
    assert version.name.startswith("v-") and (version / "part-00000.parquet").is_file()
    assert not tableio.is_committed(tmp_path, "rankings")
    assert tableio.clean_uncommitted(tmp_path) == [f"rankings/{version.name}"]
    assert not version.exists()


def test_a_malformed_setting_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "rankings:explode")
    with pytest.raises(ConfigError, match="kind is one of kill, raise, enospc"):
        _write(tmp_path)
