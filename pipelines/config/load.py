"""Loading a config: defaults, then a profile (a TOML file or a shipped profile's name), then
`--set key=value` overrides, then validation; and the TOML rendering written into each run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tomllib
import types
import typing
from collections.abc import Collection
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pipelines.config.paths import path_problems
from pipelines.config.sections import Config, field_names, get_path
from pipelines.config.validate import (
    cross_field_problems,
    field_problems,
    raise_problems,
    strip_annotation,
    type_hints,
)
from pipelines.errors import ConfigError


def _type_name(tp: Any) -> str:
    base, _ = strip_annotation(tp)
    if typing.get_origin(base) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(base)))
    return getattr(base, "__name__", str(base))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """`value` (from TOML or a --set string) as type `tp`; ConfigError naming `key` if not."""
    tp, _ = strip_annotation(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else coerce(value, args[0], key)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise ConfigError(
            f"config key '{key}' = {value!r} is not a valid choice",
            hint=f"one of: {', '.join(map(str, choices))}",
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
    elif tp in (int, float):
        # An int where a float is wanted is fine; a float (or bool) where an int is, is not.
        numeric = (int,) if tp is int else (int, float)
        if isinstance(value, numeric) and not isinstance(value, bool):
            return tp(value)
        if isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        # TOML reads an unquoted date or time as one: `--set ingest.max_ts=1998-03-01T00:00:00Z`
        # (README) or a run named by its day, `--set reuse.run=2026-11-25`, mean their text.
        # Anything else (a number, a bool, a list) is refused: str() of it is never meant.
        if isinstance(value, dt.date | dt.time):
            return str(value)
        raise ConfigError(
            f"config key '{key}': cannot use {value!r} as str",
            hint=f"give a string (on the command line, a TOML string: --set \"{key}='...'\")",
        )
    elif origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [coerce(v, item_tp, key) for v in value]
    elif origin is dict:
        _, val_tp = typing.get_args(tp)
        if isinstance(value, dict):
            return {str(k): coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(
        f"config key '{key}': cannot use {value!r} as {_type_name(tp)}",
        hint=f"give '{key}' a value of type {_type_name(tp)}",
    )


def parse_literal(text: str) -> Any:
    """A --set value: a TOML literal when it parses as one (1, 0.5, true, [1,2]), else the raw string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Set a dotted key; dict fields take one more level (`ingest.columns.user_id=uid`)."""
    parts = key.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        names = field_names(obj)
        if part not in names:
            prefix = ".".join(parts[:i])
            valid = ", ".join(f"{prefix}.{n}" if prefix else n for n in names)
            raise ConfigError(f"unknown config key '{key}'", hint=f"valid keys here: {valid}")
        tp = type_hints(type(obj))[part]
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(obj, part)):
                if not isinstance(value, dict):
                    raise ConfigError(
                        f"config key '{key}' is a section",
                        hint=f"set one of its fields: {key}.<field>",
                    )
                for k, v in value.items():
                    set_value(cfg, f"{key}.{k}", v)
                return
            setattr(obj, part, coerce(value, tp, key))
            return
        child = getattr(obj, part)
        base, _ = strip_annotation(tp)
        if isinstance(child, dict) and typing.get_origin(base) is dict:
            _, val_tp = typing.get_args(base)
            child[".".join(parts[i + 1 :])] = coerce(value, val_tp, key)
            return
        obj = child


def _apply_mapping(
    cfg: Config, data: dict[str, Any], problems: list[str], prefix: str = ""
) -> None:
    for k, v in data.items():
        key = f"{prefix}{k}"
        try:
            target = get_path(cfg, key)
        except (AttributeError, KeyError):
            target = None
        if isinstance(v, dict) and dataclasses.is_dataclass(target):
            _apply_mapping(cfg, v, problems, key + ".")
        else:
            _collect(problems, set_value, cfg, key, v)


def _collect(problems: list[str], fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except ConfigError as exc:
        msg = exc.args[0]
        problems.append(f"{msg}; {exc.hint}" if exc.hint else msg)


PROFILES = "pipelines.profiles"


def profile_names() -> list[str]:
    """The profiles shipped inside the package (`--config NAME`)."""
    return sorted(
        p.name.removesuffix(".toml")
        for p in resources.files(PROFILES).iterdir()
        if p.name.endswith(".toml")
    )


def _read_profile(path: str | Path) -> tuple[str, str]:
    """(where it came from, TOML text) of a profile file (a local path or a URI: a run's
    config.toml on S3), or of a shipped profile by name."""
    from pipelines.storage import Location

    p = Location(path)
    if p.is_file():
        return str(p), p.read_text()
    name = str(path).removesuffix(".toml")
    if "/" not in name and name in profile_names():
        res = resources.files(PROFILES) / f"{name}.toml"
        return f"profile '{name}'", res.read_text()
    raise ConfigError(
        f"config file not found: {p}",
        hint=f"give a TOML file, or a shipped profile: {', '.join(profile_names())}",
    )


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    check_paths: bool | Collection[str] = True,
) -> Config:
    """Defaults, then the TOML profile (a file, or a shipped profile's name), then `key=value`
    overrides; then every field is validated and (`check_paths`) every input and model path
    looked up (pipelines/config/paths.py). All problems come back in one ConfigError.

    check_paths=False is for reading back a run's config.toml to evaluate or gate the run:
    nothing is read through its paths then, and its input or model may have moved since. A
    collection of config keys (a stage's `config_keys`: jobs/stage_job.py) checks only the
    path settings they cover."""
    cfg = Config()
    problems: list[str] = []
    if path:
        where, text = _read_profile(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: invalid TOML: {exc}") from None
        _apply_mapping(cfg, data, problems)
    for item in overrides or []:
        if "=" not in item:
            problems.append(f"--set {item!r} has no '=': write --set section.key=value")
            continue
        key, raw = item.split("=", 1)
        _collect(problems, set_value, cfg, key.strip(), parse_literal(raw.strip()))
    problems += field_problems(cfg) + cross_field_problems(cfg)
    if check_paths:
        problems += path_problems(cfg, None if check_paths is True else check_paths)
    raise_problems(problems)
    return cfg


def config_to_toml(cfg: Config) -> str:
    """A TOML rendering of the whole config (written into each run as config.toml). A
    secret-looking key (pipelines/redact.py: a Spark or Hadoop credential in spark.conf) is
    left out and named in a comment: a run's files hold no credential, and a config read back
    from them (evaluate --against) takes it from the environment again, not a placeholder."""
    from pipelines.redact import REDACTED, is_secret_key

    lines: list[str] = []

    def lit(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {lit(x)}" for k, x in v.items()) + " }"
        return repr(v)

    def table(obj: Any, name: str) -> None:
        lines.append(f"[{name}]")
        nested = []
        for f in field_names(obj):
            v = getattr(obj, f)
            if dataclasses.is_dataclass(v):
                nested.append((v, f"{name}.{f}"))
            elif is_secret_key(f) and v:
                lines.append(f"# {f} = {REDACTED}")
            elif isinstance(v, dict):
                secret = [k for k in v if is_secret_key(str(k)) and v[k]]
                lines.append(f"{f} = {lit({k: x for k, x in v.items() if k not in secret})}")
                lines.extend(f"# {f}.{json.dumps(k)} = {REDACTED}" for k in secret)
            else:
                lines.append(f"{f} = {lit(v)}")
        lines.append("")
        for v, sub in nested:
            table(v, sub)

    for section in field_names(cfg):
        table(getattr(cfg, section), section)
    return "\n".join(lines)
