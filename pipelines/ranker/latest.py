"""`rank.model = "latest"`: rank with the newest model a serve run under the same --out fitted.

A daily schedule refits weekly and ranks daily: on the other days the run takes the newest
committed model (`<out>/<run>/models/ranker/meta.json`) that
- was fitted in a serve run (its labels are events that run had, never a holdout's),
- on data ending no later than this run's (a backfill never ranks with a model of later days),
- uses only features this config produces (its sources, text, LLM and summary features);
and, when none qualifies, fits one as `rank.model = ""` would. The choice and its reason are
logged, printed with the plan, and recorded in the rankings' manifest (`model_choice`).

An evaluation run (eval.target test or valid) refuses `latest` at load (pipelines/config/
validate.py): a model fitted on later labels would leak them. An explicit path is allowed
there; `holdout_overlap` says whether the model's data reach into the holdout.

What a fitted model records for this (meta.json, written by the fit_ranker stage):
`run` (its run's URI), `run_target` (that run's eval.target) and `data_end` (epoch seconds of
that run's last event).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines import tableio
from pipelines.config import Config
from pipelines.storage import Location, as_location

LATEST = "latest"


@dataclass(frozen=True)
class Choice:
    model: str  # the model folder, or "" (fit one in this run)
    why: str


def data_end(run_dir: Location) -> float | None:
    """Epoch seconds of the run's last event (its committed `events`), or None before ingest.
    Reads one column with Arrow: no engine."""
    if not tableio.is_committed(run_dir, "events"):
        return None
    return ts_bound(tableio.read_arrow(run_dir, "events", ["ts"]).column("ts"), "max")


def ts_bound(ts, which: str) -> float | None:
    """The min or max of an Arrow timestamp column in epoch seconds (naive = UTC); None if empty."""
    import pyarrow.compute as pc

    value = (pc.max if which == "max" else pc.min)(ts).as_py()
    if value is None:
        return None
    return value.replace(tzinfo=value.tzinfo or dt.UTC).timestamp()


def when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _model_metas(out: Location, own: str) -> Iterable[tuple[Location, dict]]:
    """(folder, meta) of every committed model of a run under `out` other than `own`."""
    for entry in out.list():
        if not entry.is_dir or entry.rel == own:
            continue
        folder = out / entry.rel / "models" / "ranker"
        try:
            yield folder, json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue  # no model there, or a damaged one: not a candidate


def choose_latest(run_dir: Location, features: set[str]) -> Choice:
    """The newest qualifying model under the run's --out (module docstring), or why none."""
    end = data_end(run_dir)
    if end is None:
        return Choice("", "this run has no committed events yet, so no model can be checked")
    best: tuple[float, str, Location] | None = None
    seen = 0
    for folder, meta in _model_metas(run_dir.parent, run_dir.name):
        seen += 1
        model_end = meta.get("data_end")
        if meta.get("run_target") != "serve" or model_end is None or model_end > end:
            continue
        if not set(meta.get("features", ())) <= features:
            continue
        key = (float(model_end), folder.uri)
        if best is None or key[:2] > best[:2]:
            best = (key[0], key[1], folder)
    if best is None:
        return Choice(
            "",
            f"none of the {seen} committed model(s) under {run_dir.parent.uri} was fitted in a "
            f"serve run on data ending by {when(end)} with features this config produces: "
            "the ranker is fitted in this run",
        )
    return Choice(
        best[2].uri,
        f"the newest model under {run_dir.parent.uri} fitted in a serve run on data ending by "
        f"this run's ({when(best[0])} <= {when(end)}) with features this config produces",
    )


def resolve_latest(cfg: Config, run_dir: Location, features: set[str]) -> tuple[Config, str]:
    """`cfg` with rank.model = "latest" replaced by the chosen folder (or "": fit), and the
    note saying which and why ("" when rank.model is not "latest")."""
    if cfg.rank.model != LATEST:
        return cfg, ""
    choice = choose_latest(as_location(run_dir), features)
    out = copy.deepcopy(cfg)
    out.rank.model = choice.model
    note = f"rank.model = latest -> {choice.model or 'fit'}: {choice.why}"
    return out, note


def holdout_overlap(meta: dict, holdout_start: float | None) -> str | None:
    """A warning when a model's data reach into an evaluation run's holdout, else None."""
    end = meta.get("data_end")
    if end is None or holdout_start is None or end < holdout_start:
        return None
    return (
        f"the model's fit data end at {when(end)}, after this run's holdout starts "
        f"({when(holdout_start)}): its metrics may be inflated by labels it was fitted on"
    )
