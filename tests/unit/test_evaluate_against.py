"""`walkrank evaluate RUN --against NEW_EVENTS` on real tables: a run split for a holdout is
refused, a bad --since is one line, and new events at or before the run's last event are
counted as stale and not scored (hand-computed metrics over the fresh events only)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from pipelines import tableio
from pipelines.cli import main
from pipelines.config import config_to_toml, load_config
from schemas.tables import EVENTS, HOLDOUT, ITEMS

HOUR = 3600
T0 = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
END = T0 + 2 * HOUR  # the run's last event: b's i3
# (user, item, epoch seconds) of the run's events; in a serve run all of them are train.
HISTORY = [
    ("a", "i0", T0),
    ("a", "i1", T0 + HOUR),
    ("b", "i2", T0),
    ("b", "i3", END),
    ("c", "i4", T0 + HOUR),
]
# Each user's served top 3 (none of them an item the user has seen).
RANKED = {"a": ["i2", "i3", "i4"], "b": ["i0", "i1", "i4"], "c": ["i0", "i1", "i2"]}
NEW = [
    ("a", "i3", END + HOUR),  # fresh: a's target, rank 2
    ("b", "i1", T0 + HOUR),  # stale (before the run's end); the earliest of b's events
    ("b", "i4", END + 2 * HOUR),  # fresh: b's target, rank 3
    ("c", "i4", T0 + HOUR),  # stale: a duplicate of c's history
    ("c", "i2", END),  # stale: at the run's end, not after it
    ("d", "i5", END + HOUR),  # fresh, but d has no rankings: counted, not scored
]
KS = [2, 3]


def _ndcg(rank: int, k: int) -> float:
    """One relevant item at `rank`: DCG 1/log2(rank + 1) over an ideal DCG of 1."""
    return 1 / math.log2(rank + 1) if rank <= k else 0.0


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.table({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema)


def write_run(run: Path, target: str) -> Path:
    """A run as the pipeline leaves it for `evaluate`: items, events, train, holdout (empty in
    a serve run), rankings, the split's target in the manifests and config.toml."""

    def write(name: str, data: pa.Table) -> None:
        tableio.write_table(run, name, data, stage="t", stage_key="t", extra={"target": target})

    items = [f"i{k}" for k in range(6)]
    idx = {i: k for k, i in enumerate(items)}
    users = {u: k for k, u in enumerate(sorted({u for u, _, _ in HISTORY}))}
    write(
        "items",
        _table(
            [{"item_id": i, "item_idx": k, "popularity": 1} for i, k in idx.items()],
            ITEMS.schema,
        ),
    )
    events = _table(
        [
            {
                "user_id": u,
                "item_id": i,
                "ts": dt.datetime.fromtimestamp(t, dt.UTC),
                "user_idx": users[u],
                "item_idx": idx[i],
            }
            for u, i, t in HISTORY
        ],
        EVENTS.schema,
    )
    write("events", events)
    if target == "serve":
        write("train", events)
        write("holdout", _table([], HOLDOUT.schema))
    else:  # each user's last event held out for `target`
        last = {u: max(t for v, _, t in HISTORY if v == u) for u in users}
        kept = [r for r in events.to_pylist() if r["ts"].timestamp() != last[r["user_id"]]]
        held = [
            {**r, "split": target}
            for r in events.to_pylist()
            if r["ts"].timestamp() == last[r["user_id"]]
        ]
        write("train", _table(kept, EVENTS.schema))
        write("holdout", _table(held, HOLDOUT.schema))
    rank_schema = pa.schema(
        [
            ("user_id", pa.string()),
            ("item_id", pa.string()),
            ("rank", pa.int32()),
            ("score", pa.float64()),
        ]
    )
    write(
        "rankings",
        _table(
            [
                {"user_id": u, "item_id": i, "rank": r + 1, "score": 1.0 / (r + 1)}
                for u, ranked in RANKED.items()
                for r, i in enumerate(ranked)
            ],
            rank_schema,
        ),
    )
    cfg = load_config(None, [f"eval.target={target}", "spark.master=local[2]"])
    (run / "config.toml").write_text(config_to_toml(cfg))
    return run


def write_new_events(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    path.write_text("user_id,item_id,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    return path


@pytest.fixture(scope="module")
def serve_run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("serve") / "run", "serve")


def _evaluate(run: Path, new: Path, *more: str) -> int:
    return main(["evaluate", str(run), "--against", str(new), "--format", "csv", *more])


def _error_lines(err: str) -> list[str]:
    """What the CLI printed for a WalkRankError: the error line and its hint line, if any."""
    lines = err.strip().splitlines()
    assert lines and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert all(ln.startswith("  hint: ") for ln in lines[1:]), err
    return lines


@pytest.mark.parametrize("target", ["test", "valid"])
def test_a_run_split_for_a_holdout_is_refused(tmp_path, capsys, target):
    run = write_run(tmp_path / "run", target)
    new = write_new_events(tmp_path / "new.csv", NEW)
    assert _evaluate(run, new, "--k", "2,3") == 2
    error = _error_lines(capsys.readouterr().err)[0]
    assert f"is a '{target}' run" in error and "held-out" in error and "serve" in error, error
    assert not tableio.is_committed(run, "served_metrics")


@pytest.mark.parametrize("since", ["yesterday", "2024-13-01", "1704067200", ""])
def test_a_bad_since_is_one_line_naming_it_and_the_formats(tmp_path, capsys, since):
    run = write_run(tmp_path / "run", "serve")
    new = write_new_events(tmp_path / "new.csv", NEW)
    assert _evaluate(run, new, "--since", since) == 2
    error = _error_lines(capsys.readouterr().err)[0]
    assert f"--since {since!r}" in error and "ISO 8601" in error and "2026-11-30" in error, error
    assert not tableio.is_committed(run, "served_metrics")


def test_since_without_against_is_refused(serve_run, capsys):
    assert main(["evaluate", str(serve_run), "--since", "2024-01-01"]) == 2
    assert "--since" in _error_lines(capsys.readouterr().err)[0]


@pytest.mark.spark
def test_stale_new_events_are_counted_and_not_scored(spark, serve_run, tmp_path, capsys):
    new = write_new_events(tmp_path / "new.csv", NEW)
    assert _evaluate(serve_run, new, "--k", "2,3") == 0
    out = capsys.readouterr().out
    manifest = tableio.read_manifest(serve_run, "served_metrics")
    counts = manifest["extra"]["counts"]
    # Stale: b's i1 (before the end), c's i4 (its history again), c's i2 (at the end).
    assert counts["stale_events"] == 3 and counts["new_events"] == 3
    assert manifest["extra"]["data_end"] == "2024-01-01T02:00:00Z"
    # The summary and the table's manifest both say how many and why.
    stale = "3 new events at or before the run's last event (2024-01-01T02:00:00Z) are stale"
    assert stale in manifest["extra"]["stale"] and stale in out, out
    # Scored: a (target i3, rank 2) and b (target i4, rank 3; not i1, which is stale); c had
    # only stale events, d has no rankings.
    assert counts["users_scored"] == 2
    assert counts["users_without_new_events"] == 1 and counts["new_users_without_rankings"] == 1
    served = tableio.read_polars(serve_run, "served_metrics").filter(pl.col("segment") == "all")
    got = {(m, k): (v, n) for m, k, v, n in served.select("metric", "k", "value", "n_users").rows()}
    ranks = [2, 3]
    for k in KS:
        assert got[("hr", k)] == (pytest.approx(sum(r <= k for r in ranks) / 2), 2)
        assert got[("ndcg", k)] == (pytest.approx(sum(_ndcg(r, k) for r in ranks) / 2), 2)
    assert got[("mrr", 3)][0] == pytest.approx((1 / 2 + 1 / 3) / 2)


@pytest.mark.spark
def test_since_drops_earlier_events_before_staleness_is_counted(spark, serve_run, tmp_path, capsys):
    new = write_new_events(tmp_path / "new.csv", NEW)
    since = dt.datetime.fromtimestamp(END + 90 * 60, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _evaluate(serve_run, new, "--k", "2,3", "--since", since) == 0
    capsys.readouterr()
    counts = tableio.read_manifest(serve_run, "served_metrics")["extra"]["counts"]
    # Only b's i4 (END + 2h) is at or after END + 1h30: b is scored, its target at rank 3.
    assert counts["events_before_since"] == 5 and counts["stale_events"] == 0
    assert counts["users_scored"] == 1 and counts["users_without_new_events"] == 2
    served = tableio.read_polars(serve_run, "served_metrics").filter(pl.col("segment") == "all")
    got = {(m, k): v for m, k, v in served.select("metric", "k", "value").rows()}
    assert got[("hr", 2)] == 0.0 and got[("hr", 3)] == 1.0
    assert got[("ndcg", 3)] == pytest.approx(_ndcg(3, 3))
