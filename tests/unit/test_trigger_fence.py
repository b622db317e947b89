"""The trigger fence the DAG reads (airflow_dags/walkrank_fence.json) is current, lists the
keys `--set` takes and no other, and fences every path and endpoint among them; the DAG side
(its schemas in Airflow) is tested in tests/test_airflow_dag.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipelines.config import Config, get_path, set_value
from pipelines.config.validate import strip_annotation, type_hints
from pipelines.errors import ConfigError
from pipelines.trigger_fence import FENCED, config_keys, fence_json, fence_spec, main

ROOT = Path(__file__).resolve().parents[2]
FENCE_FILE = ROOT / "airflow_dags" / "walkrank_fence.json"
# The string settings that name no path and no endpoint: a new string setting fails
# test_every_string_setting_is_classified until it is fenced or listed here.
NOT_PATHS = {
    "spark.app_name",
    "spark.driver_memory",
    "ingest.min_ts",
    "ingest.max_ts",
    "split.valid_cutoff",
    "split.test_cutoff",
}


def test_the_committed_fence_is_current():
    """When it fails, regenerate it with `make dag-spec`."""
    assert FENCE_FILE.read_text() == fence_json(), "stale: run `make dag-spec`"


def test_main_writes_the_fence(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "f.json")]) == 0
    assert json.loads((tmp_path / "f.json").read_text()) == fence_spec()
    assert main([]) == 0 and json.loads(capsys.readouterr().out) == fence_spec()


def test_every_listed_key_is_one_set_value_takes():
    cfg = Config()
    for key in config_keys():
        if key.endswith(".*"):
            field = key.removesuffix(".*")
            assert isinstance(get_path(cfg, field), dict), key
            set_value(cfg, f"{field}.some_entry", "1")  # one more level, any name
        else:
            set_value(cfg, key, get_path(cfg, key))  # its own value, of its own type


def test_no_other_key_is_listed():
    """Every leaf of the config is listed; a section or an unknown key is not, and set_value
    refuses the unknown one."""
    leaves = []

    def walk(obj, prefix):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                leaves.append(prefix + f.name)

    walk(Config(), "")
    keys = config_keys()
    assert [k for k in keys if not k.endswith(".*")] == leaves
    assert {k.removesuffix(".*") for k in keys if k.endswith(".*")} == {
        "spark.conf",
        "ingest.columns",
        "candidates.weights",
    }
    assert "candidates.ppr" not in keys and "ppr.no_such" not in keys
    with pytest.raises(ConfigError, match="unknown config key 'ppr.no_such'"):
        set_value(Config(), "ppr.no_such", 1)


def test_every_string_setting_is_classified():
    """A string setting names a path or an endpoint (fenced: a trigger may not set it by
    default) or is listed in NOT_PATHS."""
    strings = set()

    def walk(obj, prefix):
        hints = type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            elif strip_annotation(hints[f.name])[0] is str:  # free text, not a Literal's choice
                strings.add(prefix + f.name)

    walk(Config(), "")
    fenced = set(FENCED)
    assert strings - fenced - NOT_PATHS == set()
    assert strings >= NOT_PATHS and not NOT_PATHS & fenced
    # The paths looked up at load (pipelines/config/paths.py) and the JVM's settings.
    assert {"ingest.input", "ingest.items", "rank.model", "llm.model", "embeddings.model"} <= fenced
    assert {"spark.conf", "spark.conf.*", "spark.master", "ray.address"} <= fenced
    assert set(FENCED) <= set(config_keys())
