"""What the walkrank_daily DAG lets a trigger set, as data for a scheduler that imports nothing
of WalkRank: airflow_dags/walkrank_fence.json (`make dag-spec`; a unit test says when it is
stale). The DAG turns it into its params' JSON schemas, which Airflow checks when a run is
created (and again when each task starts): a refused trigger creates no run.

- `keys`: every key `--set` takes (a dict field's entries as `<field>.*`): a trigger's `sets`
  item must name one.
- `fenced`: the keys a trigger may not set unless the deployment's WALKRANK_TRIGGER_SETTABLE
  names them, and why: the JVM's settings (`spark.conf.*`: spark.jars or spark.plugins load
  code of the triggerer's choosing), where the work and its data are sent, and every path a run
  reads or writes (a model folder is code too: pickled weights).
- the secret patterns (pipelines/redact.py) the DAG redacts the logs it copies with.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from pipelines.config import Config
from pipelines.redact import MIN_SECRET_VALUE, SECRET_ASSIGNMENT, SECRET_KEY

FENCE_FORMAT = 1  # bumped when a field of the JSON changes meaning

_ENDPOINT = "an endpoint: where the work, and the data it reads, is sent"
_PATH = "a path a run reads or writes"
FENCED: dict[str, str] = {
    "spark.conf": "Spark settings: spark.jars, spark.plugins and the like load code",
    "spark.conf.*": "a Spark setting: spark.jars, spark.plugins and the like load code",
    "spark.master": _ENDPOINT,
    "ray.address": _ENDPOINT,
    "ingest.input": _PATH,
    "ingest.items": _PATH,
    "llm.model": _PATH + " (a model folder: its weights are code)",
    "llm.cache_dir": _PATH + " (where the default model is converted to and read from)",
    "embeddings.model": _PATH + " (a model folder: its weights are code)",
    "rank.model": _PATH,
    "reuse.run": _PATH + " (a run whose tables this run takes rows from)",
}


def config_keys(cfg: Config | None = None) -> list[str]:
    """Every key `--set` takes, in the config's order: each field, and for a dict field (one
    more level: `spark.conf.spark.sql.x`) also `<field>.*`."""
    keys: list[str] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
                continue
            keys.append(prefix + f.name)
            if isinstance(value, dict):
                keys.append(f"{prefix}{f.name}.*")

    walk(cfg or Config(), "")
    return keys


def fence_spec() -> dict[str, Any]:
    """airflow_dags/walkrank_fence.json's content."""
    return {
        "format": FENCE_FORMAT,
        "keys": config_keys(),
        "fenced": FENCED,
        "secret_key": SECRET_KEY.pattern,
        "secret_assignment": SECRET_ASSIGNMENT.pattern,
        "min_secret_value": MIN_SECRET_VALUE,
    }


def fence_json() -> str:
    return json.dumps(fence_spec(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.trigger_fence",
        description="the keys a DAG trigger may set, as JSON (airflow_dags/walkrank_fence.json)",
    )
    parser.add_argument("--out", metavar="FILE", help="write it here (default: stdout)")
    args = parser.parse_args(argv)
    if args.out:
        Path(args.out).write_text(fence_json())
    else:
        sys.stdout.write(fence_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
