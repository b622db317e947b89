"""Which events of a new log `evaluate --against` may score a serve run's rankings on.

Two filters, in this order, each counted:
* `--since T`: events before T are dropped, because the user asked for a window.
* staleness: events at or before the run's last event (its data end) are not new to the
  run. A re-sent or overlapping log repeats history, and an older event would become a
  user's "first" new one: scored, it would be a target the run was never asked to predict
  (an item the user already has is never recommended, so it counts as a miss) and would
  hide the user's real next event. They are counted as stale, not scored.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipelines.errors import ConfigError

SINCE_FORMATS = (
    "ISO 8601: a date (2026-11-30) or a date and time (2026-11-30T06:00:00, "
    "2026-11-30 06:00), with Z or +HH:MM, or no zone for UTC"
)


def parse_since(text: str) -> dt.datetime:
    """The --since time (UTC when it names no zone), or a ConfigError naming the value."""
    from pipelines.config.validate import parse_timestamp

    t = parse_timestamp(text) if text.strip() else None
    if t is None:
        raise ConfigError(f"--since {text!r} is not a time; accepted: {SINCE_FORMATS}")
    return t


def _micros(t: dt.datetime | float) -> int:
    seconds = t.timestamp() if isinstance(t, dt.datetime) else t
    return round(seconds * 1_000_000)


def events_to_score(
    events: pl.DataFrame, since: dt.datetime | None, data_end: float
) -> tuple[pl.DataFrame, dict[str, int]]:
    """(the events at or after `since` and after `data_end` (epoch seconds of the run's last
    event), counts: events_before_since, stale_events). `events` needs a `ts` column;
    a naive ts is UTC, as ingest writes it."""
    ts = pl.col("ts").dt.epoch("us")
    kept = events if since is None else events.filter(ts >= _micros(since))
    fresh = kept.filter(ts > _micros(data_end))
    counts = {
        "events_before_since": events.height - kept.height,
        "stale_events": kept.height - fresh.height,
    }
    return fresh, counts


def stale_note(n_stale: int, data_end: str) -> str:
    """Why the stale events were not scored, for the printed summary and the manifest."""
    return (
        f"{n_stale:,} new events at or before the run's last event ({data_end}) are stale: "
        "counted, not scored (the run had that time's data; a repeat of its history or an "
        "older event is not an event that arrived after it)"
    )
