"""rank.model = latest: which committed model under --out a run takes, and why (no engine)."""

from __future__ import annotations

import datetime as dt
import json

from pipelines.config import load_config
from pipelines.ranker.latest import choose_latest, holdout_overlap, resolve_latest
from pipelines.storage import Location
from tests.pipeline_fixtures import write_events

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FEATURES = {"score_popular", "rank_popular", "fused_score"}


def _events(run, days: int) -> float:
    """A run whose last event is T0 + days; returns that time in epoch seconds."""
    rows = [
        {"user_id": "u1", "item_id": "a", "ts": T0, "event_type": None, "value": None},
        {"user_id": "u1", "item_id": "b", "ts": T0 + dt.timedelta(days=days), "event_type": None,
         "value": None},
    ]  # fmt: skip
    write_events(run, rows)
    return (T0 + dt.timedelta(days=days)).timestamp()


def _model(run, data_end: float | None, target: str = "serve", features=("score_popular",)):
    folder = run / "models" / "ranker"
    folder.mkdir(parents=True)
    meta = {"run": str(run), "run_target": target, "data_end": data_end, "features": features}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_the_newest_qualifying_model_is_taken(tmp_path):
    today = tmp_path / "d9"
    end = _events(today, 9)
    day = 86400.0
    _model(tmp_path / "d5", end - 4 * day)
    best = _model(tmp_path / "d8", end - 1 * day)
    _model(tmp_path / "d10", end + day)  # data after this run's: a backfill must not take it
    _model(tmp_path / "e8", end - 0.5 * day, target="test")  # fitted on a holdout's labels
    _model(tmp_path / "f8", end - 0.2 * day, features=("score_popular", "text_cos"))
    (tmp_path / "g8" / "models" / "ranker").mkdir(parents=True)  # meta.json not committed
    ((tmp_path / "h8" / "models" / "ranker").mkdir(parents=True))
    (tmp_path / "h8" / "models" / "ranker" / "meta.json").write_text("{damaged")
    choice = choose_latest(Location(str(today)), FEATURES)
    assert choice.model == str(best)
    assert "2024-01-09" in choice.why and "2024-01-10T00:00:00Z" in choice.why


def test_no_qualifying_model_means_fit_and_says_why(tmp_path):
    today = tmp_path / "d9"
    end = _events(today, 9)
    _model(tmp_path / "d10", end + 1)
    _model(today, end - 10)  # the run's own folder never counts
    cfg = load_config(None, ["eval.target=serve", "rank.model=latest"])
    out, note = resolve_latest(cfg, Location(str(today)), FEATURES)
    assert out.rank.model == "" and cfg.rank.model == "latest"
    assert note.startswith("rank.model = latest -> fit:") and "2 committed" not in note
    assert "none of the 1 committed model(s)" in note


def test_before_ingest_nothing_is_checked(tmp_path):
    choice = choose_latest(Location(str(tmp_path / "new")), FEATURES)
    assert choice.model == "" and "no committed events" in choice.why


def test_holdout_overlap_warns_only_when_the_model_saw_holdout_times():
    assert holdout_overlap({"data_end": 100.0}, 150.0) is None
    assert "inflated" in holdout_overlap({"data_end": 150.0}, 150.0)
    assert holdout_overlap({}, 150.0) is None
