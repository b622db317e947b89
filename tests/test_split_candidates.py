"""split and candidates (popular) on Spark against plain-Python models of the same rules."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from pipelines import tableio
from pipelines.config import load_config
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from tests.pipeline_fixtures import random_events, write_events

pytestmark = pytest.mark.spark


def model_split(rows, min_events, target):
    by_user = defaultdict(list)
    for r in rows:
        by_user[r["user_id"]].append(r)
    train, holdout = [], []
    for _u, evs in by_user.items():
        evs = sorted(evs, key=lambda r: (r["ts"], r["item_id"], r["value"]), reverse=True)
        for pos, r in enumerate(evs, start=1):
            split = "train"
            if len(evs) >= min_events:
                split = {1: "test", 2: "valid"}.get(pos, "train")
            if split != "train":
                holdout.append((r["user_id"], r["item_id"], split))
            if split == "train" or (split == "valid" and target == "test"):
                train.append((r["user_id"], r["item_id"], r["ts"]))
    return sorted(train), sorted(holdout)


def model_popular(rows, train, top_n):
    counts = Counter(i for _, i, _ in train)
    seen = defaultdict(set)
    for u, i, _ in train:
        seen[u].add(i)
    users = sorted({r["user_id"] for r in rows})
    out = {}
    for u in users:
        ranked = sorted((i for i in counts if i not in seen[u]), key=lambda i: (-counts[i], i))
        top = ranked[:top_n]
        best = counts[top[0]] if top else 1
        out[u] = [(i, counts[i] / best) for i in top]
    return out


@pytest.mark.parametrize(
    "seed,target,min_events", [(1, "test", 3), (2, "valid", 3), (3, "test", 5)]
)
def test_split_and_popular_match_python_model(spark, tmp_path, seed, target, min_events):
    rows = random_events(seed)
    write_events(tmp_path, rows)
    cfg = load_config(
        None,
        [
            f"eval.target={target}",
            f"split.min_events={min_events}",
            "candidates.top_n=7",
            "candidates.per_source=7",
            "candidates.sources=[]",  # popular only: the model below is popularity
            "candidates.weights.popular=1.0",  # fused score = popular score / user's max
        ],
    )
    run_stages(tmp_path, cfg, [STAGES["split"], STAGES["candidates"]])

    train_m, holdout_m = model_split(rows, min_events, target)
    train = tableio.read_polars(tmp_path, "train")
    holdout = tableio.read_polars(tmp_path, "holdout")
    assert sorted(zip(train["user_id"], train["item_id"], train["ts"], strict=True)) == train_m
    assert (
        sorted(zip(holdout["user_id"], holdout["item_id"], holdout["split"], strict=True))
        == holdout_m
    )

    expected = model_popular(rows, train_m, 7)
    cands = tableio.read_polars(tmp_path, "candidates").sort("user_id", "rank")
    got = defaultdict(list)
    for r in cands.iter_rows(named=True):
        got[r["user_id"]].append((r["item_id"], r["score"]))
        assert r["sources"] == ["popular"]
    assert set(got) == set(expected)  # every user, incl. those with short histories
    for u, lst in expected.items():
        assert [i for i, _ in got[u]] == [i for i, _ in lst], u
        assert [s for _, s in got[u]] == pytest.approx([s for _, s in lst])
    ranks = tableio.read_polars(tmp_path, "rankings").sort("user_id", "rank")
    assert ranks.select("user_id", "item_id", "rank").equals(
        cands.select("user_id", "item_id", "rank")
    )


def test_time_cutoff_split(spark, tmp_path):
    rows = random_events(4)
    write_events(tmp_path, rows)
    cfg = load_config(
        None,
        [
            "split.method=time_cutoff",
            'split.valid_cutoff="2024-01-02T12:00:00Z"',
            'split.test_cutoff="2024-01-02T18:00:00Z"',
        ],
    )
    run_stages(tmp_path, cfg, [STAGES["split"]])
    import datetime as dt

    v = dt.datetime(2024, 1, 2, 12, tzinfo=dt.UTC)
    t = dt.datetime(2024, 1, 2, 18, tzinfo=dt.UTC)
    expect = sorted(
        (r["user_id"], r["item_id"], "test" if r["ts"] >= t else "valid")
        for r in rows
        if r["ts"] >= v
    )
    h = tableio.read_polars(tmp_path, "holdout")
    assert sorted(zip(h["user_id"], h["item_id"], h["split"], strict=True)) == expect
    assert tableio.read_manifest(tmp_path, "train")["rows"] == sum(r["ts"] < t for r in rows)


def test_rerun_skips_and_keeps_bytes(spark, tmp_path):
    write_events(tmp_path, random_events(5))
    cfg = load_config(
        None, ["candidates.top_n=5", "candidates.per_source=5", "candidates.sources=[]"]
    )
    stages = [STAGES["split"], STAGES["candidates"]]
    assert run_stages(tmp_path, cfg, stages) == {"split": "ran", "candidates": "ran"}
    before = {
        p: p.read_bytes()
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file() and ".lock" not in p.name
    }
    assert run_stages(tmp_path, cfg, stages) == {"split": "skipped", "candidates": "skipped"}
    after = {
        p: p.read_bytes()
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file() and ".lock" not in p.name
    }
    assert before == after
    # A config change of a stage re-runs that stage (and only what depends on it).
    cfg2 = load_config(
        None, ["candidates.top_n=4", "candidates.per_source=5", "candidates.sources=[]"]
    )
    assert run_stages(tmp_path, cfg2, stages) == {"split": "skipped", "candidates": "ran"}
