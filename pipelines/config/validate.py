"""Validation at load, in one place: every field against its annotation (type, choices,
range, finiteness), then the rules that involve several fields. All problems are reported
together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import typing
from typing import Annotated, Any, Literal

from pipelines.bounds import NonFinite
from pipelines.config.sections import Config, Range
from pipelines.errors import ConfigError


def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def strip_annotation(tp: Any) -> tuple[Any, Range | None]:
    """(the type without Annotated, its Range if any)."""
    if typing.get_origin(tp) is Annotated:
        base, *meta = typing.get_args(tp)
        return base, next((m for m in meta if isinstance(m, Range)), None)
    return tp, None


def non_finite_allowed(tp: Any) -> NonFinite | None:
    """The NonFinite opt-in of an annotated type, if it has one."""
    if typing.get_origin(tp) is Annotated:
        return next((m for m in typing.get_args(tp)[1:] if isinstance(m, NonFinite)), None)
    return None


def finite_problem(value: Any, allowed: NonFinite | None) -> str | None:
    """Why a NaN or +-inf may not stand here; None for any other value, or one the field's
    NonFinite lets in."""
    if not isinstance(value, float) or math.isfinite(value):
        return None
    if allowed is not None and (allowed.nan if math.isnan(value) else allowed.inf):
        return None
    return "must be a finite number"


def _field_types(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> annotated type of every leaf field of a config dataclass."""
    out: dict[str, Any] = {}
    for name, tp in type_hints(cls).items():
        base, _ = strip_annotation(tp)
        if dataclasses.is_dataclass(base):
            out.update(_field_types(base, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = tp
    return out


def choices_in(tp: Any) -> tuple[Any, ...] | None:
    """The Literal values a field (or each element of a list field) may take."""
    base, _ = strip_annotation(tp)
    if typing.get_origin(base) is Literal:
        return typing.get_args(base)
    if typing.get_origin(base) is list:
        return choices_in(typing.get_args(base)[0])
    return None


# Allowed values per key, derived from the Literal annotations (the one source of truth).
CHOICES: dict[str, tuple[Any, ...]] = {
    k: c for k, tp in _field_types(Config).items() if (c := choices_in(tp))
}


def field_problems(obj: Any, prefix: str = "") -> list[str]:
    """Every field outside its Range or its Literal choices, and every float that is NaN or
    +-inf where the field does not opt in (lists and dicts element-wise): what a section built
    in code, rather than loaded, can still get wrong."""
    problems = []
    for name, tp in type_hints(type(obj)).items():
        key, value = f"{prefix}{name}", getattr(obj, name)
        base, rng = strip_annotation(tp)
        if dataclasses.is_dataclass(value):
            problems += field_problems(value, key + ".")
            continue
        checks = [(key, value, rng, non_finite_allowed(tp))]
        origin = typing.get_origin(base)
        if origin is list:
            item_tp = typing.get_args(base)[0]
            item = strip_annotation(item_tp)[1], non_finite_allowed(item_tp)
            checks = [(f"{key}[{i}]", v, *item) for i, v in enumerate(value)]
        elif origin is dict:
            val_tp = typing.get_args(base)[1]
            val = strip_annotation(val_tp)[1], non_finite_allowed(val_tp)
            checks = [(f"{key}.{k}", v, *val) for k, v in value.items()]
        choices = choices_in(tp)
        for k, v, r, allowed in checks:
            if why := finite_problem(v, allowed):
                problems.append(f"{k} = {v!r}: {why}")
                continue
            # A NaN the field lets in has no order for its Range to check.
            ordered = isinstance(v, int | float) and v == v
            if r is not None and ordered and (why := r.problem(v)):
                problems.append(f"{k} = {v!r}: {why}")
            if choices and v not in choices:
                problems.append(f"{k} = {v!r}: one of {', '.join(map(str, choices))}")
    return problems


_MEMORY = re.compile(r"^\d+[kmgtp]?b?$", re.IGNORECASE)


def parse_timestamp(text: str) -> dt.datetime | None:
    """An ISO 8601 time (Z allowed; naive means UTC), or None when it is not one."""
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def cross_field_problems(cfg: Config) -> list[str]:
    """Rules that involve more than one field, or a format a type cannot express."""
    problems = []
    from pipelines.candidates.registry import SOURCES  # declarations only, no Spark code

    c = cfg.candidates
    known = ", ".join(SOURCES)
    for key, names in (("candidates.sources", c.sources), ("candidates.weights", list(c.weights))):
        if unknown := [n for n in names if n not in SOURCES]:
            problems.append(f"{key} has unknown source(s) {unknown}: one of {known}")
    if len(set(c.sources)) != len(c.sources):
        problems.append(f"candidates.sources = {c.sources}: each source at most once")
    if "ppr" in c.sources and cfg.ppr.seeds == "needed" and cfg.ppr.needed_history < c.ppr.history:
        problems.append(
            f"ppr.needed_history = {cfg.ppr.needed_history} < candidates.ppr.history = "
            f"{c.ppr.history}: with ppr.seeds = needed, PPR must cover every item the ppr "
            "source reads (raise ppr.needed_history, or set ppr.seeds = all)"
        )
    if cfg.rank.model == "latest" and cfg.eval.target != "serve":
        problems.append(
            f'rank.model = "latest" in an evaluation run (eval.target = {cfg.eval.target}): the '
            "newest model may have been fitted on the labels this run holds out; point "
            "rank.model at a model folder (a warning says when its data overlap the holdout)"
        )
    if cfg.run.user_sample and cfg.eval.target == "serve":
        problems.append(
            "run.user_sample samples users with a held-out event: set eval.target = test or "
            "valid, or run.user_sample = 0 (a serve run holds nothing out)"
        )
    if not cfg.eval.ks:
        problems.append("eval.ks is empty: give at least one cut-off, e.g. [10]")
    if not cfg.eval.tables:
        problems.append("eval.tables is empty: evaluate rankings, candidates or both")
    if not _MEMORY.match(cfg.spark.driver_memory):
        problems.append(
            f"spark.driver_memory = {cfg.spark.driver_memory!r}: a JVM size such as 4g or 512m"
        )
    lo, hi = parse_timestamp(cfg.ingest.min_ts), parse_timestamp(cfg.ingest.max_ts)
    for key, raw, t in (
        ("ingest.min_ts", cfg.ingest.min_ts, lo),
        ("ingest.max_ts", cfg.ingest.max_ts, hi),
    ):
        if t is None:
            problems.append(f"{key} = {raw!r}: an ISO 8601 timestamp, e.g. 2024-01-01T00:00:00Z")
    if lo and hi and lo >= hi:
        problems.append(f"ingest.min_ts = {cfg.ingest.min_ts!r} must be before ingest.max_ts")
    s = cfg.split
    if s.method == "time_cutoff":
        cuts = {
            k: v
            for k, v in (
                ("split.valid_cutoff", s.valid_cutoff),
                ("split.test_cutoff", s.test_cutoff),
            )
            if v
        }
        parsed = {k: parse_timestamp(v) for k, v in cuts.items()}
        problems += [
            f"{k} = {cuts[k]!r}: an ISO 8601 timestamp" for k, t in parsed.items() if t is None
        ]
        if len(cuts) == 1:
            problems.append("split.valid_cutoff and split.test_cutoff: give both or neither")
        elif (
            len(cuts) == 2
            and None not in parsed.values()
            and parsed["split.valid_cutoff"] > parsed["split.test_cutoff"]
        ):
            problems.append("split.valid_cutoff must not be after split.test_cutoff")
        if s.valid_fraction + s.test_fraction >= 1:
            problems.append(
                f"split.valid_fraction + split.test_fraction = {s.valid_fraction + s.test_fraction}: "
                "must be < 1 (something has to stay in train)"
            )
    if not cfg.rank.grid:
        problems.append("rank.grid is empty: give the LLM weights to try, e.g. [0.0, 0.5, 1.0]")
    return problems


def validate(cfg: Config) -> None:
    """Raise one ConfigError listing every problem of `cfg` (ranges and cross-field rules)."""
    raise_problems(field_problems(cfg) + cross_field_problems(cfg))


def check_section(section: Any, name: str) -> None:
    """Raise one ConfigError for the out-of-range fields of one section (e.g. a GraphConfig
    built in code rather than loaded), named `name.<field>`."""
    raise_problems(field_problems(section, f"{name}."))


def raise_problems(problems: list[str]) -> None:
    if not problems:
        return
    lines = "\n".join(f"  - {p}" for p in problems)
    noun = "problem" if len(problems) == 1 else "problems"
    raise ConfigError(
        f"invalid config ({len(problems)} {noun}):\n{lines}",
        hint="fix them in the profile or with --set key=value; defaults are in pipelines/config/sections.py",
    )
