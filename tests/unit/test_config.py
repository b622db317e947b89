import pytest

from pipelines.config import Config, config_to_toml, load_config
from pipelines.errors import ConfigError


def test_defaults_run_on_a_laptop():
    cfg = Config()
    assert cfg.spark.master == "local[*]"
    assert cfg.eval.target == "test"
    assert cfg.candidates.sources == ["popular"]


def test_set_overrides_every_kind_of_field():
    cfg = load_config(
        None,
        [
            "ingest.columns.user_id=uid",
            "eval.ks=[5,10]",
            "candidates.sources=popular,ppr",
            "spark.shuffle_partitions=4",
            "candidates.exclude_seen=false",
            "popular.window_days=7",
            "candidates.weights.popular=0.5",
        ],
    )
    assert cfg.ingest.columns == {"user_id": "uid"}
    assert cfg.eval.ks == [5, 10]
    assert cfg.candidates.sources == ["popular", "ppr"]
    assert cfg.spark.shuffle_partitions == 4
    assert cfg.candidates.exclude_seen is False
    assert cfg.popular.window_days == 7.0
    assert cfg.candidates.weights == {"popular": 0.5}


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["split.min_event=3"])
    assert "split.min_event" in str(err.value)
    assert "split.min_events" in str(err.value)


def test_bad_type_and_bad_choice_are_errors():
    with pytest.raises(ConfigError, match="spark.shuffle_partitions"):
        load_config(None, ["spark.shuffle_partitions=many"])
    with pytest.raises(ConfigError, match="one of: test, valid"):
        load_config(None, ["eval.target=train"])


def test_profiles_load_and_round_trip(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for profile in ("local.toml", "cluster.toml"):
        cfg = load_config(root / "conf" / profile)
        p = tmp_path / profile
        p.write_text(config_to_toml(cfg))
        assert load_config(p) == cfg


def test_section_hash_tracks_only_named_sections():
    a, b = Config(), load_config(None, ["eval.ks=[5]"])
    assert a.section_hash("split", "eval.target") == b.section_hash("split", "eval.target")
    assert a.section_hash("eval") != b.section_hash("eval")


def test_missing_profile_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
