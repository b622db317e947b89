from pathlib import Path

import pytest

from pipelines.config import Config, config_to_toml, load_config
from pipelines.errors import ConfigError


def test_defaults_are_the_tuned_profile_on_a_laptop():
    cfg = Config()
    assert cfg.spark.master == "local[*]"
    assert cfg.eval.target == "test"
    assert cfg.candidates.sources == ["transition", "ppr", "item_cf", "user_cf"]
    assert cfg.candidates.weights["popular"] == 0.25 and cfg.candidates.per_source == 100
    assert cfg.ppr.seeds == "needed" and cfg.graph.reverse_weight == 0.2
    # The tuned values are what benchmarks/tune_candidates.py chose on the valid split.
    tuned = load_config(Path(__file__).resolve().parents[2] / "benchmarks/results/tuned_toys.toml")
    assert tuned == cfg


def test_set_overrides_every_kind_of_field():
    cfg = load_config(
        None,
        [
            "ingest.columns.user_id=uid",
            "eval.ks=[5,10]",
            "candidates.sources=popular,ppr",
            "spark.shuffle_partitions=4",
            "candidates.exclude_seen=false",
            "candidates.popular.window_days=7",
            "candidates.transition.hops=2",
            "candidates.weights.popular=0.5",
        ],
    )
    assert cfg.ingest.columns == {"user_id": "uid"}
    assert cfg.eval.ks == [5, 10]
    assert cfg.candidates.sources == ["popular", "ppr"]
    assert cfg.spark.shuffle_partitions == 4
    assert cfg.candidates.exclude_seen is False
    assert cfg.candidates.popular.window_days == 7.0
    assert cfg.candidates.transition.hops == 2
    assert cfg.candidates.weights["popular"] == 0.5  # merged into the tuned weights
    assert cfg.candidates.weights["transition"] == Config().candidates.weights["transition"]


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["split.min_event=3"])
    assert "split.min_event" in str(err.value)
    assert "split.min_events" in str(err.value)


def test_bad_type_and_bad_choice_are_errors():
    with pytest.raises(ConfigError, match="spark.shuffle_partitions"):
        load_config(None, ["spark.shuffle_partitions=many"])
    with pytest.raises(ConfigError, match="one of: test, valid, serve"):
        load_config(None, ["eval.target=train"])


def test_every_problem_is_listed_in_one_error_with_its_range():
    with pytest.raises(ConfigError) as err:
        load_config(
            None,
            [
                "ppr.alpha=1.5",
                "candidates.top_n=0",
                "candidates.weights.ppr=-1",
                "eval.ks=[10,0]",
                "split.min_event=3",
                "neighbors.ivf_train_per_list=10",
            ],
        )
    text = str(err.value)
    assert "6 problems" in text
    assert "ppr.alpha = 1.5: must be > 0 and < 1" in text
    assert "candidates.top_n = 0: must be >= 1" in text
    assert "candidates.weights.ppr = -1.0: must be >= 0" in text
    assert "eval.ks[1] = 0: must be >= 1" in text
    assert "unknown config key 'split.min_event'" in text
    assert "neighbors.ivf_train_per_list = 10: must be >= 39" in text


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="ppr.needed_history = 5 < candidates.ppr.history = 10"):
        load_config(None, ["ppr.needed_history=5"])
    # The rule only binds when the ppr source reads needed-only PPR rows.
    load_config(None, ["ppr.needed_history=5", "ppr.seeds=all"])
    load_config(None, ["ppr.needed_history=5", 'candidates.sources=["item_cf"]'])
    with pytest.raises(ConfigError, match="unknown source"):
        load_config(None, ["candidates.weights.bogus=1"])
    with pytest.raises(ConfigError, match="spark.driver_memory"):
        load_config(None, ["spark.driver_memory=lots"])
    with pytest.raises(ConfigError, match="valid_fraction"):
        load_config(
            None,
            ["split.method=time_cutoff", "split.valid_fraction=0.5", "split.test_fraction=0.5"],
        )


def test_choices_come_from_the_field_types():
    from pipelines.config import CHOICES
    from pipelines.ingest.formats import FORMATS

    assert CHOICES["eval.target"] == ("test", "valid", "serve")
    assert CHOICES["candidates.fusion"] == ("weighted", "rrf")
    assert "sequences" in FORMATS and "auto" not in FORMATS


def test_sources_choices_match_the_source_registry():
    from pipelines.candidates.registry import SOURCES
    from pipelines.config import CHOICES

    # The registry is the one list of sources: the config accepts exactly its names.
    assert "candidates.sources" not in CHOICES
    load_config(None, [f"candidates.sources={list(SOURCES)!r}".replace("'", '"')])
    with pytest.raises(ConfigError, match="unknown source"):
        load_config(None, ['candidates.sources=["nope"]'])


def test_profiles_load_and_round_trip(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for profile in ("local", "cluster"):
        cfg = load_config(root / "conf" / f"{profile}.toml")
        assert load_config(profile) == cfg  # the shipped profile by name, as from a wheel
        p = tmp_path / f"{profile}.toml"
        p.write_text(config_to_toml(cfg))
        assert load_config(p) == cfg


def test_profiles_change_engine_settings_only():
    import tomllib

    from pipelines.config import profile_names

    root = Path(__file__).resolve().parents[2]
    assert {"local", "cluster"} <= set(profile_names())
    for name in profile_names():
        sections = tomllib.loads((root / "pipelines/profiles" / f"{name}.toml").read_text())
        assert set(sections) <= {"spark", "ray", "llm", "run"}, name
        assert set(sections.get("llm", {})) <= {
            "actors",
            "actor_cpus",
            "user_batch",
            "max_users",
            "device",
            "dtype",
            "torch_threads",
        }, name


def test_section_hash_tracks_only_named_sections():
    a, b = Config(), load_config(None, ["eval.ks=[5]"])
    assert a.section_hash("split", "eval.target") == b.section_hash("split", "eval.target")
    assert a.section_hash("eval") != b.section_hash("eval")


def test_missing_profile_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
