"""walkrank generate: structure of the synthetic log, determinism, and ingest reading it."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.synthetic_logs import (
    LogModel,
    activity_cap,
    build_catalog,
    generate_logs,
    user_lengths,
)


@pytest.fixture(scope="module")
def log300k(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "g"
    summary = generate_logs(300_000, 5, out, progress=False)
    return out, summary, pq.read_table(out / "events").to_pandas()


def test_exact_size_and_user_lengths():
    rng = np.random.default_rng(1)
    for n in (1, 7, 1000, 123_457):
        lengths = user_lengths(n, LogModel(), rng)
        assert lengths.sum() == n and lengths.min() >= 1
        assert lengths.max() <= max(2, n // 100)  # 1% of the log, or min_activity
    assert activity_cap(123_457, LogModel()) == 1234
    assert activity_cap(10_000_000, LogModel()) == LogModel().max_activity
    big = user_lengths(100_000, LogModel(), rng)
    assert big.min() >= LogModel().min_activity
    # Power-law activity: the heaviest 1% of users hold far more than 1% of the events.
    top = np.sort(big)[::-1][: big.size // 100].sum() / big.sum()
    assert top > 0.05


def test_popularity_is_zipf_with_the_configured_exponent(log300k):
    _, _, ev = log300k
    counts = np.sort(ev.item_id.value_counts().to_numpy())[::-1]
    ranks = np.arange(1, counts.size + 1)
    slope = np.polyfit(np.log(ranks[5:1000]), np.log(counts[5:1000]), 1)[0]
    assert -1.2 < slope < -0.8  # zipf_a = 1.0


def test_sequences_follow_the_markov_successors(log300k):
    _, summary, ev = log300k
    cat = build_catalog(LogModel(), summary["items"], np.random.default_rng([5, 0]))
    items = ev.item_id.str[1:].astype(int).to_numpy()
    same_user = ev.user_id.to_numpy()[1:] == ev.user_id.to_numpy()[:-1]
    prev, nxt = items[:-1][same_user], items[1:][same_user]
    hit = (cat.successors[prev] == nxt[:, None]).any(axis=1).mean()
    shuffled = np.random.default_rng(0).permutation(nxt)
    chance = (cat.successors[prev] == shuffled[:, None]).any(axis=1).mean()
    assert hit >= LogModel().p_markov  # at least the Markov share, plus chance hits
    assert chance < 0.05
    # Events of a user are in time order; sessions make some gaps much longer than others.
    ts = ev.ts.astype("int64").to_numpy()
    gaps = (ts[1:] - ts[:-1])[same_user]
    assert (gaps >= 0).all()
    assert np.quantile(gaps, 0.99) > 50 * np.median(gaps)


def test_same_seed_same_files_other_seed_differs(tmp_path):
    a = generate_logs(20_000, 9, tmp_path / "a", LogModel(chunk_events=6000), progress=False)
    b = generate_logs(20_000, 9, tmp_path / "b", LogModel(chunk_events=6000), progress=False)
    c = generate_logs(20_000, 10, tmp_path / "c", LogModel(chunk_events=6000), progress=False)
    assert a["events"] == b["events"] == c["events"] == 20_000
    ta, tb, tc = (pq.read_table(tmp_path / x / "events") for x in "abc")
    assert len(list((tmp_path / "a" / "events").glob("*.parquet"))) >= 3
    assert ta.equals(tb) and not ta.equals(tc)
    with pytest.raises(Exception, match="not empty"):
        generate_logs(10, 9, tmp_path / "a", progress=False)


@pytest.mark.spark
def test_ingest_reads_a_generated_directory_with_its_catalog(spark, tmp_path):
    from pipelines.config import IngestConfig
    from pipelines.ingest import run_ingest

    generate_logs(5_000, 2, tmp_path / "g", progress=False)
    res = run_ingest(spark, IngestConfig(input=str(tmp_path / "g")))
    c = res.counts
    assert res.format == "parquet" and res.catalogs == [str(tmp_path / "g" / "items")]
    assert (
        c["rows_in"]
        == 5_000
        == c["rows_accepted"] + c["rows_quarantined"] + c["duplicates_collapsed"]
    )
    assert c["rows_quarantined"] == 0
    titled = res.items.filter("title is not null").count()
    assert titled == res.items.count() == 5_000 // 50
    res.unpersist()


@pytest.mark.parametrize("n", [1_000_000, 4_000_000])
def test_a_large_log_stays_in_its_span_and_no_user_holds_1_percent(tmp_path, n):
    """The scale benchmark's logs: before the caps, --events 4000000 --seed 3 gave one user
    10% of the log, with timestamps to the year 2365 that ingest quarantined."""
    import datetime as dt

    import pyarrow.compute as pc

    from pipelines.config import IngestConfig

    model = LogModel()
    summary = generate_logs(n, 3, tmp_path / "g", progress=False)
    events = pq.read_table(tmp_path / "g" / "events", columns=["user_id", "item_id", "ts"])
    assert events.num_rows == summary["events"] == n
    assert all(events.column(c).null_count == 0 for c in events.column_names)
    per_user = pc.value_counts(events.column("user_id")).field(1).to_numpy()
    assert per_user.size == summary["users"] and per_user.sum() == n
    assert per_user.max() == summary["max_user_events"] <= n // 100
    top = np.sort(per_user)[::-1][: per_user.size // 100].sum() / n
    assert top > 0.05  # still a heavy tail under the cap
    lo, hi = (v.as_py() for v in pc.min_max(events.column("ts")).values())
    start = dt.datetime.fromisoformat(model.start)
    assert start <= lo and hi < start + dt.timedelta(days=model.span_days)
    # Inside ingest's default range, so no row is quarantined as "timestamp out of range".
    cfg = IngestConfig()
    assert dt.datetime.fromisoformat(cfg.min_ts) <= lo and hi < dt.datetime.fromisoformat(
        cfg.max_ts
    )
