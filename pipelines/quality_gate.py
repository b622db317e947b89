"""The quality gate a committed run passes before its rankings are announced (`walkrank gate
RUN`; the DAG's `quality_gate` task, which carries the rankings' Asset event).

Three checks, bounds from the `gate` config section:
- ranked share: the active users (users of the run's `events`) with at least one `rankings`
  row, over all active users, at least `gate.min_ranked_share`;
- coverage@10: the distinct items of the users' top 10s over the items of `items`, at least
  `gate.min_coverage_ratio` x the previous run's (a run given explicitly; none, or one without
  committed rankings: not compared, and said);
- scores: no null or NaN `score` in `rankings`.

Tables are scanned lazily with only the columns a check needs (local paths and URIs alike):
one pass over each of events' user_id, rankings' user_id/item_id/rank/score and items'
item_id per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines import tableio
from pipelines.config import Config, GateConfig, load_config
from pipelines.errors import WalkRankError
from pipelines.storage import Location

COVERAGE_K = 10


class GateBreachError(WalkRankError):
    """A run breached a bound of the quality gate: its rankings must not be announced."""

    exit_code = 1  # like an engine error: the run is wrong, not the command


@dataclass
class GateReport:
    run: str
    figures: dict[str, float | int | None] = field(default_factory=dict)
    breaches: list[str] = field(default_factory=list)  # each with its numbers
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    def lines(self) -> list[str]:
        """What `walkrank gate` prints: the figures, the notes, then the verdict."""
        f = self.figures
        out = [
            f"{self.run}: {f['ranked_users']:,} of {f['active_users']:,} active users ranked "
            f"(share {f['ranked_share']:.4f})",
            f"coverage@{COVERAGE_K}: {f['coverage']:.4f} ({f['covered_items']:,} of "
            f"{f['items']:,} items)",
            f"scores: {f['bad_scores']:,} null or NaN of {f['ranking_rows']:,} rankings rows",
        ]
        if f.get("previous_coverage") is not None:
            out.append(f"previous run's coverage@{COVERAGE_K}: {f['previous_coverage']:.4f}")
        out += [f"note: {n}" for n in self.notes]
        out.append("gate: breached" if self.breaches else "gate: passed")
        return out

    def raise_on_breach(self) -> None:
        if self.breaches:
            raise GateBreachError(
                f"quality gate breached by {self.run}: " + "; ".join(self.breaches),
                hint="the rankings are committed but must not be announced; fix the run (or "
                "the bounds: --set gate.min_ranked_share=..., gate.min_coverage_ratio=...)",
            )


def ranked_share(run: Location) -> tuple[int, int]:
    """(active users, those of them with at least one rankings row)."""
    active = tableio.scan_polars(run, "events").select("user_id").unique()
    ranked = tableio.scan_polars(run, "rankings").select("user_id").unique()
    counts = pl.concat(
        [
            active.select(pl.len().alias("n")),
            active.join(ranked, on="user_id", how="semi").select(pl.len().alias("n")),
        ]
    ).collect()["n"]
    return int(counts[0]), int(counts[1])


def coverage(run: Location, k: int = COVERAGE_K) -> tuple[int, int]:
    """(distinct items in the users' top k of `rankings`, items of `items`)."""
    top = tableio.scan_polars(run, "rankings").filter(pl.col("rank") <= k)
    covered = top.select(pl.col("item_id").n_unique()).collect().item()
    items = tableio.scan_polars(run, "items").select(pl.len()).collect().item()
    return int(covered), int(items)


def bad_scores(run: Location) -> tuple[int, int]:
    """(rankings rows whose score is null or NaN, all rankings rows)."""
    score = pl.col("score")
    row = (
        tableio.scan_polars(run, "rankings")
        .select((score.is_null() | score.is_nan()).sum().alias("bad"), pl.len().alias("rows"))
        .collect()
    )
    return int(row["bad"][0] or 0), int(row["rows"][0])


def check(run: Location, gate: GateConfig, previous: Location | None = None) -> GateReport:
    """The figures of `run` against `gate`'s bounds (coverage against `previous`'s)."""
    report = GateReport(str(run))
    f = report.figures
    f["active_users"], f["ranked_users"] = ranked_share(run)
    f["ranked_share"] = f["ranked_users"] / f["active_users"] if f["active_users"] else 0.0
    if f["active_users"] == 0:
        report.breaches.append("the run's events have no users")
    elif f["ranked_share"] < gate.min_ranked_share:
        report.breaches.append(
            f"{f['ranked_users']:,} of {f['active_users']:,} active users ranked "
            f"(share {f['ranked_share']:.4f} < gate.min_ranked_share {gate.min_ranked_share})"
        )
    f["covered_items"], f["items"] = coverage(run)
    f["coverage"] = f["covered_items"] / f["items"] if f["items"] else 0.0
    _compare_coverage(report, gate, previous)
    f["bad_scores"], f["ranking_rows"] = bad_scores(run)
    if f["bad_scores"]:
        report.breaches.append(
            f"{f['bad_scores']:,} of {f['ranking_rows']:,} rankings rows have a null or NaN score"
        )
    return report


def _compare_coverage(report: GateReport, gate: GateConfig, previous: Location | None) -> None:
    f = report.figures
    f["previous_coverage"] = None
    if gate.min_coverage_ratio == 0:
        report.notes.append("coverage not compared: gate.min_coverage_ratio = 0")
        return
    if previous is None:
        report.notes.append("coverage not compared: no previous run given")
        return
    if not tableio.is_committed(previous, "rankings"):
        report.notes.append(f"coverage not compared: {previous} has no committed rankings")
        return
    covered, items = coverage(previous)
    f["previous_coverage"] = prev = covered / items if items else 0.0
    bound = gate.min_coverage_ratio * prev
    if f["coverage"] < bound:
        report.breaches.append(
            f"coverage@{COVERAGE_K} {f['coverage']:.4f} < {bound:.4f} = gate.min_coverage_ratio "
            f"{gate.min_coverage_ratio} x the previous run's {prev:.4f} ({previous})"
        )


def gate_config(run: Location, sets: list[str] | None = None) -> Config:
    """The config the run ran with (its config.toml; the defaults when it has none), `sets`
    applied on top."""
    toml = run / "config.toml"
    return load_config(toml if toml.exists() else None, sets or [], check_paths=False)


def check_run(
    run: str | Path | Location,
    previous: str | Path | Location | None = None,
    sets: list[str] | None = None,
) -> GateReport:
    """`walkrank gate RUN [--previous RUN] [--set gate.x=...]`: the report of `run` against the
    bounds of its own config, `sets` applied."""
    run = Location(str(run))
    cfg = gate_config(run, sets)
    return check(run, cfg.gate, Location(str(previous)) if previous else None)
