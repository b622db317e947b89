"""A candidate source's registry entry is its config: `CandidatesConfig` has one section per
registered source with settings (its settings class, validated by its annotations) and a
default weight per source; a source registered later (here, a test's) gets both."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import pytest

from pipelines.bounds import Count
from pipelines.candidates.registry import FALLBACK, SOURCES, Source
from pipelines.config import Config, config_to_toml, load_config
from pipelines.config.sections import CandidatesBase, candidates_config_class
from pipelines.errors import ConfigError


@dataclass
class ToySettings:
    size: Count = 3
    order: Literal["asc", "desc"] = "asc"


def test_one_section_per_source_with_settings_and_one_weight_per_source():
    cfg = Config().candidates
    common = [f.name for f in dataclasses.fields(CandidatesBase)]
    with_settings = [n for n, s in SOURCES.items() if s.settings is not None]
    assert [f.name for f in dataclasses.fields(cfg)] == common + with_settings
    for name in with_settings:
        assert type(getattr(cfg, name)) is SOURCES[name].settings
    assert cfg.weights == {n: s.weight for n, s in SOURCES.items()}
    assert list(cfg.weights)[-1] == FALLBACK
    assert cfg.user_cf.decay == 0.8 and cfg.ppr.decay == cfg.item_cf.decay == 0.7


def test_a_registered_source_gets_its_section_and_weight(monkeypatch):
    before = candidates_config_class()
    monkeypatch.setitem(SOURCES, "toy", Source("toy", "x:toy", settings=ToySettings, weight=0.3))
    monkeypatch.setitem(SOURCES, "bare", Source("bare", "x:bare"))
    cfg = Config()
    assert cfg.candidates.toy == ToySettings()
    assert not hasattr(cfg.candidates, "bare")  # no settings, no section
    assert cfg.candidates.weights["toy"] == 0.3 and cfg.candidates.weights["bare"] == 1.0
    assert '[candidates.toy]\nsize = 3\norder = "asc"\n' in config_to_toml(cfg)
    assert Config() == cfg  # one class per registry: configs still compare

    loaded = load_config(None, ["candidates.toy.size=5", "candidates.toy.order=desc"])
    assert loaded.candidates.toy == ToySettings(size=5, order="desc")
    with pytest.raises(ConfigError) as err:
        load_config(None, ["candidates.toy.size=0", "candidates.toy.order=up"])
    assert "candidates.toy.size = 0: must be >= 1" in str(err.value)
    assert "'candidates.toy.order' = 'up' is not a valid choice" in str(err.value)
    with pytest.raises(ConfigError, match="unknown config key 'candidates.toy.sise'"):
        load_config(None, ["candidates.toy.sise=2"])

    monkeypatch.undo()
    assert candidates_config_class() is before
    assert not hasattr(Config().candidates, "toy")


def test_the_contract_names_the_score_columns_and_reads_them_back(tmp_path):
    import polars as pl

    from pipelines import tableio
    from schemas import score_column, sources_of

    assert score_column("item_cf") == "score_item_cf"
    cands = pl.DataFrame(
        {
            "user_id": ["a"],
            "item_id": ["i"],
            "rank": pl.Series([1], dtype=pl.Int32),
            "score": [1.0],
            "sources": [["b_src"]],
            score_column("b_src"): [1.0],
            score_column("a_src"): [None],
        },
        schema_overrides={score_column("a_src"): pl.Float64},
    )
    assert sources_of(cands.to_arrow().schema) == ["b_src", "a_src"]  # column order, not sorted
    # As the writer recorded them, or from the files when it did not.
    tableio.write_table(tmp_path, "candidates", cands, stage="t", stage_key="t")
    assert tableio.candidate_sources(tmp_path) == ["b_src", "a_src"]
    extra = {"sources": ["b_src", "a_src"]}
    tableio.write_table(
        tmp_path, "rankings", cands.drop("sources"), stage="t", stage_key="t", extra=extra
    )
    assert tableio.candidate_sources(tmp_path, "rankings") == ["b_src", "a_src"]
