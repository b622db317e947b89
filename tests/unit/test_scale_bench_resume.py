"""benchmarks/scale_bench.py: the whole-run seconds of a run resumed across processes."""

from __future__ import annotations

from benchmarks.scale_bench import resumed_seconds


def _row(stage, seconds, process=None, resumed=True):
    return {"stage": stage, "seconds": seconds, "resumed": resumed, "process": process}


def test_fit_stages_inside_a_resumed_fit_ranker_count_once():
    # Process 1 ran ingest and fit/split, then was killed; process 2 ran fit/graph and
    # fit_ranker (whose 100 s contain fit/graph's 30 s); process 3 runs rank now.
    rows = [
        _row("ingest", 10.0, 1),
        _row("fit/split", 5.0, 1),
        _row("fit/graph", 30.0, 2),
        _row("fit_ranker", 100.0, 2),
        _row("rank", 7.0, resumed=False),
    ]
    assert resumed_seconds(rows) == 10.0 + 5.0 + 100.0


def test_without_recorded_processes_every_resumed_stage_counts():
    rows = [_row("fit/graph", 30.0), _row("fit_ranker", 100.0), _row("rank", 7.0, resumed=False)]
    assert resumed_seconds(rows) == 130.0


def test_fit_stages_of_the_current_process_are_not_resumed():
    rows = [_row("ingest", 10.0, 1), _row("fit/graph", 30.0, resumed=False)]
    assert resumed_seconds(rows) == 10.0
