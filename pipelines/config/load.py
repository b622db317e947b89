"""Loading a config: defaults, then a profile (a TOML file or a shipped profile's name), then
`--set key=value` overrides, then validation; and the TOML rendering written into each run.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

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
        return value if isinstance(value, str) else str(value)
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


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the TOML profile (a file, or a shipped profile's name), then `key=value`
    overrides; then every field is validated. All problems come back in one ConfigError."""
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
    raise_problems(problems + field_problems(cfg) + cross_field_problems(cfg))
    return cfg


def config_to_toml(cfg: Config) -> str:
    """A TOML rendering of the whole config (written into each run as config.toml)."""
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
            else:
                lines.append(f"{f} = {lit(v)}")
        lines.append("")
        for v, sub in nested:
            table(v, sub)

    for section in field_names(cfg):
        table(getattr(cfg, section), section)
    return "\n".join(lines)
