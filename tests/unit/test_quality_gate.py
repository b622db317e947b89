"""The quality gate (pipelines/quality_gate.py, `walkrank gate`): its figures against hand
counts on tiny committed tables, each bound breached with its numbers, what is not compared
and why, and the CLI's output and exit codes (the run's config.toml, --set on top)."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pyarrow as pa
import pytest

from pipelines import quality_gate, tableio
from pipelines.cli import main as cli_main
from pipelines.config import GateConfig, load_config
from pipelines.config.load import config_to_toml
from pipelines.storage import Location
from schemas.tables import EVENTS, ITEMS, RANKINGS

ITEM_IDS = [f"i{k:02d}" for k in range(20)]  # the catalog: 20 items
T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
W = {"stage": "fixture", "stage_key": "fixture"}


def _write(run, users: list[str], ranked: dict[str, list[str]], nan_user: str = "") -> None:
    """events of `users` (one event each), the 20-item catalog, and rankings: each user's list
    in rank order (score 1/rank; NaN for `nan_user`)."""
    idx = {u: k for k, u in enumerate(sorted({*users, *ranked}))}
    events = pa.table(
        {
            "user_id": users,
            "item_id": ["i00"] * len(users),
            "ts": [T0] * len(users),
            "event_type": [None] * len(users),
            "value": [None] * len(users),
            "user_idx": [idx[u] for u in users],
            "item_idx": [0] * len(users),
        },
        schema=EVENTS.schema,
    )
    items = pa.table(
        {
            "item_id": ITEM_IDS,
            "item_idx": list(range(len(ITEM_IDS))),
            "title": [None] * len(ITEM_IDS),
            "text": [None] * len(ITEM_IDS),
            "popularity": [1] * len(ITEM_IDS),
        },
        schema=ITEMS.schema,
    )
    rows = [(u, it, r) for u, lst in ranked.items() for r, it in enumerate(lst, start=1)]
    rankings = pa.table(
        {
            "user_id": [u for u, _, _ in rows],
            "item_id": [it for _, it, _ in rows],
            "rank": pa.array([r for _, _, r in rows], pa.int32()),
            "score": [math.nan if u == nan_user else 1 / r for u, _, r in rows],
        },
        schema=RANKINGS.schema,
    )
    for name, table in (("events", events), ("items", items), ("rankings", rankings)):
        tableio.write_table(run, name, table, **W)


@pytest.fixture
def runs(tmp_path):
    """Today: active users a, b, c, d; a has 11 items (the 11th past the top 10), b two, c one
    with a NaN score, d none; e (not in events) one. Top-10 items: a's i00..i09, b's i11 (i00
    again), c's i12, e's i13: 13 of 20. Yesterday: 16 of 20 items in the top 10s."""
    today, previous = tmp_path / "2026-11-21", tmp_path / "2026-11-20"
    _write(
        today,
        ["a", "b", "c", "d", "a"],
        {"a": ITEM_IDS[:11], "b": ["i00", "i11"], "c": ["i12"], "e": ["i13"]},
        nan_user="c",
    )
    _write(previous, ["a", "b"], {"a": ITEM_IDS[:10], "b": ITEM_IDS[10:16]})
    return Location(str(today)), Location(str(previous))


def test_figures_against_hand_counts(runs):
    today, previous = runs
    report = quality_gate.check(
        today, GateConfig(min_ranked_share=0.5, min_coverage_ratio=0.8), previous
    )
    f = report.figures
    assert (f["active_users"], f["ranked_users"], f["ranked_share"]) == (4, 3, 0.75)
    assert (f["covered_items"], f["items"], f["coverage"]) == (13, 20, 13 / 20)
    assert f["previous_coverage"] == 16 / 20
    assert (f["bad_scores"], f["ranking_rows"]) == (1, 15)
    # 0.65 >= 0.8 x 0.8 = 0.64 and 0.75 >= 0.5: only the NaN score breaches.
    assert report.breaches == ["1 of 15 rankings rows have a null or NaN score"]
    assert report.notes == []


def test_each_bound_breaches_with_its_numbers(runs):
    today, previous = runs
    report = quality_gate.check(
        today, GateConfig(min_ranked_share=0.8, min_coverage_ratio=0.9), previous
    )
    share, cover, scores = report.breaches
    assert share == "3 of 4 active users ranked (share 0.7500 < gate.min_ranked_share 0.8)"
    assert cover.startswith("coverage@10 0.6500 < 0.7200 = gate.min_coverage_ratio 0.9 x the ")
    assert "previous run's 0.8000" in cover and str(previous) in cover
    assert scores.startswith("1 of 15")
    with pytest.raises(quality_gate.GateBreachError) as exc:
        report.raise_on_breach()
    assert exc.value.exit_code == 1 and "0.7500 < gate.min_ranked_share" in str(exc.value)


def test_coverage_is_compared_only_against_a_committed_previous_run(runs, tmp_path):
    today, _ = runs
    strict = GateConfig(min_ranked_share=0.0, min_coverage_ratio=1.0)
    for previous, note in (
        (None, "no previous run given"),
        (Location(str(tmp_path / "2026-11-19")), "has no committed rankings"),
    ):
        report = quality_gate.check(today, strict, previous)
        assert report.figures["previous_coverage"] is None
        assert len(report.notes) == 1 and note in report.notes[0]
        assert not any("coverage" in b for b in report.breaches)
    report = quality_gate.check(
        today, GateConfig(min_ranked_share=0.0, min_coverage_ratio=0.0), runs[1]
    )
    assert report.notes == ["coverage not compared: gate.min_coverage_ratio = 0"]


def test_a_null_score_is_a_breach_too(monkeypatch):
    frame = pl.DataFrame({"score": [1.0, None, math.nan, 0.5]}).lazy()
    monkeypatch.setattr(tableio, "scan_polars", lambda run, name: frame)
    assert quality_gate.bad_scores(Location("/nowhere")) == (2, 4)


def test_gate_cli_prints_the_figures_and_exits_1_on_a_breach(runs, capsys):
    today, previous = runs
    # The bounds are the run's own config (config.toml), --set on top.
    cfg = load_config(None, ["gate.min_ranked_share=0.8", "gate.min_coverage_ratio=0.5"])
    (today / "config.toml").write_text(config_to_toml(cfg))
    assert cli_main(["gate", str(today), "--previous", str(previous)]) == 1
    out, err = capsys.readouterr()
    assert "3 of 4 active users ranked (share 0.7500)" in out
    assert "coverage@10: 0.6500 (13 of 20 items)" in out
    assert "previous run's coverage@10: 0.8000" in out and "gate: breached" in out
    assert err.startswith("error: quality gate breached by ") and "hint:" in err
    assert "0.7500 < gate.min_ranked_share 0.8" in err and "NaN" in err
    # Bounds that hold, and no NaN: exit 0 (the NaN run breaches whatever the bounds).
    args = ["--set", "gate.min_ranked_share=0.75"]
    assert cli_main(["gate", str(today), "--previous", str(previous), *args]) == 1
    assert "< gate.min_ranked_share" not in capsys.readouterr().err
    _write(previous, ["a", "b"], {"a": ITEM_IDS[:10], "b": ITEM_IDS[10:16]})
    assert cli_main(["gate", str(previous), *args]) == 0
    out = capsys.readouterr().out
    assert "gate: passed" in out and "no previous run given" in out


def test_gate_cli_without_rankings_is_a_usage_error(tmp_path, capsys):
    assert cli_main(["gate", str(tmp_path / "none")]) == 2
    assert "never committed" in capsys.readouterr().err
