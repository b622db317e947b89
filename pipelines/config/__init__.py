"""Typed configuration: dataclass sections, TOML profiles, `--set a.b=value` overrides.

Modules: `sections` (the dataclasses and defaults), `validate` (the one home of every check
of values), `paths` (the input and model paths looked up at load), `load` (profiles,
overrides, TOML).

The built-in defaults are the best profile we know (tuned on the validation split of Amazon
Toys, `benchmarks/tune_candidates.py`) and run on a laptop; profiles (`local`, `cluster`)
change engine settings only. Every field is validated at load, in one place: its type and
allowed values come from its annotation (`Literal[...]` for choices, `Annotated[..., Range]`
for bounds; floats are finite unless annotated `NonFinite`), cross-field rules from
`cross_field_problems`; a value keeps its declared type (no number or list becomes a string).
Every problem, the missing paths included, is listed in one `ConfigError` before any engine
starts.
"""

from pipelines.bounds import NonFinite
from pipelines.config.load import (
    PROFILES,
    coerce,
    config_to_toml,
    load_config,
    parse_literal,
    profile_names,
    set_value,
)
from pipelines.config.paths import path_problems
from pipelines.config.sections import (
    CandidatesConfig,
    Config,
    EmbeddingsConfig,
    EvalConfig,
    GateConfig,
    GraphConfig,
    IngestConfig,
    LlmConfig,
    NeighborsConfig,
    PprConfig,
    Range,
    RankConfig,
    RayConfig,
    ReuseConfig,
    RunConfig,
    SparkConfig,
    SplitConfig,
    SummariesConfig,
    get_path,
)
from pipelines.config.validate import CHOICES, check_section, validate

__all__ = [
    "CHOICES",
    "PROFILES",
    "CandidatesConfig",
    "Config",
    "EmbeddingsConfig",
    "EvalConfig",
    "GateConfig",
    "GraphConfig",
    "IngestConfig",
    "LlmConfig",
    "NeighborsConfig",
    "NonFinite",
    "PprConfig",
    "RankConfig",
    "RayConfig",
    "ReuseConfig",
    "RunConfig",
    "SparkConfig",
    "SplitConfig",
    "SummariesConfig",
    "Range",
    "check_section",
    "coerce",
    "config_to_toml",
    "get_path",
    "load_config",
    "parse_literal",
    "path_problems",
    "profile_names",
    "set_value",
    "validate",
]
