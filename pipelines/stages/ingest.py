"""ingest: raw events (+ item catalog) -> events, items, quarantine."""

from __future__ import annotations

from pipelines.config import Config
from pipelines.errors import ConfigError, InputFormatError
from pipelines.stage import Stage, StageContext
from pipelines.storage import Location


def _raw_inputs(cfg: Config) -> list[str]:
    if not cfg.ingest.input:
        raise ConfigError("no input given", hint="pass --input PATH (or set ingest.input)")
    paths = [cfg.ingest.input] + ([cfg.ingest.items] if cfg.ingest.items else [])
    for p in paths:
        if not Location(p).exists():
            raise InputFormatError(f"input not found: {p}", hint="check the --input/--items path")
    return paths


def run(ctx: StageContext) -> None:
    from pipelines.ingest import run_ingest

    result = run_ingest(ctx.spark, ctx.config.ingest)
    counts = dict(result.counts)
    extra = {"format": result.format, "counts": counts}
    ctx.write("quarantine", result.quarantine, extra=extra)
    ctx.write("items", result.items, extra=extra)
    ctx.write("events", result.events, extra=extra)
    ctx.log(
        f"rows_in {counts['rows_in']:,} = accepted {counts['rows_accepted']:,}"
        f" + quarantined {counts['rows_quarantined']:,}"
        f" + duplicates {counts['duplicates_collapsed']:,}"
    )


STAGE = Stage(
    name="ingest",
    fn=run,
    outputs=("quarantine", "items", "events"),
    config_keys=("ingest",),
    raw_inputs=_raw_inputs,
    description="validate, deduplicate and index raw events; bad rows go to quarantine",
)
