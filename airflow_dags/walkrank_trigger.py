"""What a trigger of walkrank_daily may set, and its copied logs redacted: the params' JSON
schemas (Airflow checks them when it creates a run, so a refused trigger creates none, and
again as each task starts) and the redaction of a log copied into a task's. Beside the DAG
file, which imports it (Airflow puts the DAG folder, or the bundle, on sys.path). Nothing of
WalkRank is imported: the fence (walkrank_fence.json) is data, written from WalkRank's config
by `make dag-spec` (pipelines/trigger_fence.py).

WALKRANK_TRIGGER_SETTABLE, comma-separated patterns: a dotted glob (`ppr.*`, `gate.min_*`)
lets a trigger's `sets` name the config keys it matches, `!glob` refuses them whatever else
matches; a bare name (`history`, `new_events`, `out`, `config`) lets a trigger change that path
param. Unset: `*.*` and a `!key` for each of the fence's `fenced` keys, no path param.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import Param

REDACTED = "<redacted>"
PATH_PARAMS = {  # what a run reads and where it writes
    "history": "<history>/<day>: every event up to the day",
    "new_events": "<new_events>/<day>: the day's events",
    "out": "<out>/<day>: the day's run",
    "config": "the TOML profile of every run (empty: the defaults)",
}


def fence(path: Path, env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """(The fence at `path`, walkrank_fence.json of the WalkRank the jobs run: the config's
    keys, the fenced ones, the secret patterns; the patterns of what a trigger may set: the
    deployment's, WALKRANK_TRIGGER_SETTABLE, else the fence's default)."""
    data = json.loads(path.read_text())
    default = ",".join(["*.*", *(f"!{key}" for key in data["fenced"])])
    text = env.get("WALKRANK_TRIGGER_SETTABLE", default)
    return data, [p.strip() for p in text.split(",") if p.strip()]


def path_param(name: str, default: Any, patterns: list[str], pattern: str) -> Param:
    """The path param `name`: the deployment's value (WALKRANK_<NAME>, else `default`), the
    only one a trigger may give unless `patterns` name the param."""
    value = os.environ.get(f"WALKRANK_{name.upper()}", str(default))
    fixed = {} if name in patterns else {"enum": [value]}
    return Param(value, type="string", pattern=pattern, description=PATH_PARAMS[name], **fixed)


def key_pattern(glob: str) -> str:
    """A JSON-schema pattern (Python's and the browser's regex alike): a `sets` item whose key
    matches `glob`, where `*` is any run of key text."""
    return "^" + "[^=]*".join(re.escape(part) for part in glob.split("*")) + "="


def sets_item(fence: dict[str, Any], patterns: list[str], shape: str) -> dict[str, Any]:
    """The JSON schema of one `sets` item: of `shape` (`section.key=value`), naming a key of
    the config (`fence["keys"]`) that `patterns` allow. A refusal by a `!` pattern names the
    pattern and why it is fenced, on the error's first line."""
    allow = [p for p in patterns if "." in p and not p.startswith("!")]
    refused = [
        {
            "pattern": key_pattern(p[1:]),
            "description": f"{p[1:]} is not settable from a trigger "
            f"({fence['fenced'].get(p[1:], 'WALKRANK_TRIGGER_SETTABLE')})",
        }
        for p in patterns
        if p.startswith("!")
    ]
    return {
        "type": "string",
        "pattern": shape,
        "allOf": [
            {
                "description": "a key of WalkRank's config (walkrank_fence.json)",
                "anyOf": [{"pattern": key_pattern(k)} for k in fence["keys"]],
            },
            {
                "description": "a key WALKRANK_TRIGGER_SETTABLE allows",
                "anyOf": [{"pattern": key_pattern(p)} for p in allow] or [{"not": {}}],
            },
            *({"not": r} for r in refused),
        ],
    }


def redacted(text: str, fence: dict[str, Any], env: Mapping[str, str] | None = None) -> str:
    """`text`, a log copied into a task's log, without the secrets of `env` (the worker's
    environment: the values of its secret-looking variables) and without the value of any
    secret-looking `key=value` in it: pipelines/redact.py's redact_text, by the fence's
    patterns."""
    secret_key = re.compile(fence["secret_key"], re.IGNORECASE)
    assignment = re.compile(fence["secret_assignment"], re.IGNORECASE)
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if secret_key.search(k)}
    for v in sorted(values, key=len, reverse=True):  # the longest first: one may hold another
        if len(v) >= fence["min_secret_value"]:
            text = text.replace(v, REDACTED)
    return "".join(
        assignment.sub(lambda m: m.group(0)[: m.start("value") - m.start()] + REDACTED, line)
        if secret_key.search(line)
        else line
        for line in text.splitlines(keepends=True)
    )
