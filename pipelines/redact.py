"""Which settings are secrets, and their values kept out of what a run writes and what the DAG
copies into its logs: config.toml (pipelines/config/load.py), manifests (pipelines/tableio.py)
and the Ray job logs (airflow_dags/walkrank_daily.py, through the patterns in
airflow_dags/walkrank_fence.json).

A key is secret-looking when it names a secret, a password or a token (not "tokens", a count),
or an access, account, API, encryption or private key: Hadoop's `fs.s3a.access.key`,
`fs.s3a.secret.key`, `fs.s3a.session.token`, `fs.azure.account.key.<account>`, Spark's
`spark.ssl.keyStorePassword`, AWS's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN, Ray's RAY_AUTH_TOKEN. AWS_REGION, AWS_PROFILE or an endpoint are settings,
not secrets: they stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "<redacted>"

SECRET_KEY = re.compile(
    r"secret|passw(?:or)?d|token(?!s|iz)|(?:access|account|api|encryption|private)[._-]?key",
    re.IGNORECASE,
)
# A `key=value`, `key: value`, `"key": "value"` or `--conf key=value` whose key is
# secret-looking; `value` is what a log must not show. Case-insensitive (SECRET_KEY's flag).
SECRET_ASSIGNMENT = re.compile(
    r"(?P<key>[\w.\-]*(?:" + SECRET_KEY.pattern + r")[\w.\-]*)[\"']?\s*[=:]\s*"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;}\]]+)",
    re.IGNORECASE,
)
# Known secret values shorter than this are not replaced wherever they occur in a text: a
# "true" or "1" of a secret-looking variable would otherwise blank every such word.
MIN_SECRET_VALUE = 8


def is_secret_key(key: str) -> bool:
    """Whether a setting (a config key, a Spark or Hadoop key, an environment variable) holds
    a secret."""
    return SECRET_KEY.search(key) is not None


def redact_mapping(value: Any) -> Any:
    """A copy of `value` (dicts and lists, nested) with the value of every secret-looking key
    replaced by REDACTED."""
    if isinstance(value, dict):
        return {
            k: REDACTED if is_secret_key(str(k)) and value[k] else redact_mapping(value[k])
            for k in value
        }
    if isinstance(value, list):
        return [redact_mapping(v) for v in value]
    return value


def secret_values(env: dict[str, str]) -> list[str]:
    """The values of the secret-looking variables of `env` (long enough to be told apart)."""
    return sorted(
        {v for k, v in env.items() if is_secret_key(k) and len(v) >= MIN_SECRET_VALUE},
        key=len,
        reverse=True,
    )


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """`text` with the value of every secret assignment in it, and every occurrence of one of
    `values` (secrets known by value: the environment's), replaced by REDACTED."""
    for v in sorted(values, key=len, reverse=True):  # the longest first: one may hold another
        if len(v) >= MIN_SECRET_VALUE:
            text = text.replace(v, REDACTED)
    return "".join(
        SECRET_ASSIGNMENT.sub(lambda m: m.group(0)[: m.start("value") - m.start()] + REDACTED, ln)
        if SECRET_KEY.search(ln)  # most lines name no secret: the cheap test first
        else ln
        for ln in text.splitlines(keepends=True)
    )
