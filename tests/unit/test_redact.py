"""Secret-looking settings (pipelines/redact.py) stay out of what a run writes: config.toml
keeps every other setting and names the left-out ones; a manifest's config shows
<redacted>; a log's `key=value` and the environment's secrets are replaced, the rest of the
text untouched."""

from __future__ import annotations

import json
import tomllib

import polars as pl
import pytest

from pipelines import tableio
from pipelines.config import config_to_toml, load_config
from pipelines.redact import (
    REDACTED,
    is_secret_key,
    redact_mapping,
    redact_text,
    secret_values,
)
from pipelines.trigger_fence import config_keys

SECRETS = [
    "spark.hadoop.fs.s3a.access.key",
    "spark.hadoop.fs.s3a.secret.key",
    "spark.hadoop.fs.s3a.session.token",
    "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net",
    "spark.ssl.keyStorePassword",
    "spark.authenticate.secret",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "RAY_AUTH_TOKEN",
    "api_key",
    "db.passwd",
]
NOT_SECRETS = [
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "spark.hadoop.fs.s3a.aws.credentials.provider",
    "spark.hadoop.fs.s3a.endpoint",
    "RAY_AUTH_MODE",
    "summaries.max_new_tokens",
    "tokenizer",
    "keyboard",
]


@pytest.mark.parametrize("key", SECRETS)
def test_credential_keys_are_secret(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", NOT_SECRETS)
def test_settings_are_not_secret(key):
    assert not is_secret_key(key)


def test_no_config_key_looks_secret():
    """Every key of the config's own is kept in config.toml and manifests (a false positive
    would lose a setting a run is read back with)."""
    assert [k for k in config_keys() if is_secret_key(k)] == []


def _secret_config():
    return load_config(
        None,
        [
            "spark.conf.spark.hadoop.fs.s3a.secret.key=s3cr3t-marker-1",
            "spark.conf.spark.hadoop.fs.s3a.access.key=AKIA-marker-2",
            "spark.conf.spark.sql.session.timeZone=UTC",
            "ppr.alpha=0.25",
        ],
    )


def test_config_toml_leaves_secrets_out_and_names_them(tmp_path):
    text = config_to_toml(_secret_config())
    assert "marker-1" not in text and "marker-2" not in text
    assert f'# conf."spark.hadoop.fs.s3a.secret.key" = {REDACTED}' in text.splitlines()
    assert f'# conf."spark.hadoop.fs.s3a.access.key" = {REDACTED}' in text.splitlines()
    parsed = tomllib.loads(text)
    assert parsed["spark"]["conf"] == {"spark.sql.session.timeZone": "UTC"}
    # Read back (evaluate --against does), the secret is unset, not a placeholder: Spark then
    # takes the credentials from the environment again.
    (tmp_path / "config.toml").write_text(text)
    back = load_config(tmp_path / "config.toml")
    assert back.spark.conf == {"spark.sql.session.timeZone": "UTC"} and back.ppr.alpha == 0.25


def test_a_manifest_keeps_no_secret_of_its_extra(tmp_path):
    rankings = pl.DataFrame(
        {"user_id": ["u"], "item_id": ["i"], "rank": [1], "score": [1.0]},
        schema_overrides={"rank": pl.Int32},
    )
    extra = {"config": {"spark": {"conf": {"fs.s3a.secret.key": "s3cr3t-marker-3"}}}, "n": 1}
    m = tableio.write_table(tmp_path, "rankings", rankings, stage="t", stage_key="k", extra=extra)
    on_disk = (tmp_path / "rankings" / "_manifest.json").read_text()
    assert "marker-3" not in on_disk
    assert json.loads(on_disk)["extra"] == {
        "config": {"spark": {"conf": {"fs.s3a.secret.key": REDACTED}}},
        "n": 1,
    }
    assert m["extra"] == json.loads(on_disk)["extra"]


def test_redact_mapping_nested_and_empty():
    data = {"a": [{"password": "p4ss"}, {"token": ""}], "aws_session_token": {"x": 1}, "k": 2}
    assert redact_mapping(data) == {
        "a": [{"password": REDACTED}, {"token": ""}],  # an unset one says so
        "aws_session_token": REDACTED,
        "k": 2,
    }


LOG = """\
[rank] running: rank
--conf spark.hadoop.fs.s3a.secret.key=abcSECRET1 --conf spark.sql.shuffle.partitions=8
{"fs.s3a.session.token": "tokSECRET2", "rows": 3}
password: hunter2SECRET3, user: me
fs.azure.account.key.acct='with space SECRET4'
env AWS_SECRET_ACCESS_KEY is envSECRET5 and envSECRET5 again; max_new_tokens=48
"""


def test_redact_text_replaces_values_only():
    out = redact_text(LOG, secret_values({"AWS_SECRET_ACCESS_KEY": "envSECRET5"}))
    assert [n for n in range(1, 6) if f"SECRET{n}" in out] == []
    assert out.splitlines() == [
        "[rank] running: rank",
        f"--conf spark.hadoop.fs.s3a.secret.key={REDACTED} --conf spark.sql.shuffle.partitions=8",
        f'{{"fs.s3a.session.token": {REDACTED}, "rows": 3}}',
        f"password: {REDACTED}, user: me",
        f"fs.azure.account.key.acct={REDACTED}",
        f"env AWS_SECRET_ACCESS_KEY is {REDACTED} and {REDACTED} again; max_new_tokens=48",
    ]


def test_short_secret_values_are_not_replaced_everywhere():
    # A secret-looking variable set to "true" must not blank every "true" of a log.
    assert secret_values({"AWS_SESSION_TOKEN": "true", "RAY_AUTH_TOKEN": "0123456789"}) == [
        "0123456789"
    ]
    assert redact_text("enabled: true\n", ["true"]) == "enabled: true\n"
