"""evaluate_rankings: contract, segments, edge cases, and a plain-Python reference."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from fractions import Fraction

import polars as pl
import pytest

from pipelines.evaluation import evaluate_rankings, render_report_md
from pipelines.evaluation.segments import (
    head_items_of_counts,
    history_counts,
    history_segments_of_counts,
)


def head_items(train: pl.DataFrame) -> pl.DataFrame:
    """The head items of train rows (user_id, item_id), as the evaluation derives them."""
    counts = train.group_by("item_id").agg(pl.len().cast(pl.Int64).alias("n_rows"))
    return head_items_of_counts(counts)


def history_segments(users: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    return history_segments_of_counts(users, history_counts(train))


SCHEMA = pl.Schema(
    {
        "table": pl.String,
        "metric": pl.String,
        "k": pl.Int32,
        "segment": pl.String,
        "value": pl.Float64,
        "n_users": pl.Int64,
    }
)
ACCURACY = ("hr", "recall", "precision", "ndcg", "mrr", "map")


def _recs(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"user_id": pl.String, "item_id": pl.String, "rank": pl.Int32},
        orient="row",
    )


def _pairs(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String}, orient="row")


def _as_dict(metrics: pl.DataFrame) -> dict[tuple[str, int, str], tuple[float, int]]:
    return {
        (r["metric"], r["k"], r["segment"]): (r["value"], r["n_users"])
        for r in metrics.iter_rows(named=True)
    }


# --- plain-Python reference -------------------------------------------------------------


def _ref_user(ranked: list[tuple[int, str]], rel: set[str], k: int) -> dict[str, float]:
    hit_ranks = sorted(r for r, i in ranked if r <= k and i in rel)
    n_ideal = min(len(rel), k)
    idcg = sum(1 / math.log2(j + 1) for j in range(1, n_ideal + 1))
    return {
        "hr": 1.0 if hit_ranks else 0.0,
        "recall": len(hit_ranks) / len(rel),
        "precision": len(hit_ranks) / k,
        "ndcg": sum(1 / math.log2(r + 1) for r in hit_ranks) / idcg,
        "mrr": 1 / hit_ranks[0] if hit_ranks else 0.0,
        "map": sum((n + 1) / r for n, r in enumerate(hit_ranks)) / n_ideal,
    }


def reference_metrics(recs, holdout, train, ks, n_catalog):
    relevant: dict[str, set[str]] = defaultdict(set)
    for u, i in holdout:
        relevant[u].add(i)
    lists: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for u, i, r in recs:
        lists[u].append((r, i))
    history = Counter(u for u, _ in train)
    counts = Counter(i for _, i in train)
    head: set[str] = set()
    cumulative = 0
    for n, (item, c) in enumerate(sorted(counts.items(), key=lambda t: (-t[1], t[0]))):
        cumulative += c
        if n > 0 and Fraction(cumulative, len(train)) > Fraction(1, 5):
            break
        head.add(item)

    segments: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for u, rel in relevant.items():
        segments["all"][u] = rel
        h = history[u]
        segments["hist_le5" if h <= 5 else "hist_6_20" if h <= 20 else "hist_gt20"][u] = rel
        if rel & head:
            segments["pop_head"][u] = rel & head
        if rel - head:
            segments["pop_tail"][u] = rel - head

    out = {}
    for k in ks:
        for seg, users in segments.items():
            per_user = [_ref_user(lists[u], rel, k) for u, rel in users.items()]
            for m in ACCURACY:
                out[(m, k, seg)] = (sum(p[m] for p in per_user) / len(per_user), len(users))
        slots = [(u, i) for u in relevant for r, i in lists[u] if r <= k]
        exposure = Counter(i for _, i in slots)
        x = sorted(list(exposure.values()) + [0] * (n_catalog - len(exposure)))
        n = len(x)
        total = sum(x)
        gini = (
            sum((2 * j - n - 1) * x[j - 1] for j in range(1, n + 1)) / (n * total) if total else 0.0
        )
        item_users: dict[str, set[str]] = defaultdict(set)
        for u, i in train:
            item_users[i].add(u)
        n_train_users = len({u for u, _ in train})
        info = [
            -math.log2(len(item_users[i]) / n_train_users if i in item_users else 1 / n_train_users)
            for _, i in slots
        ]
        out[("coverage", k, "all")] = (len(exposure) / n_catalog, len(relevant))
        out[("gini", k, "all")] = (gini, len(relevant))
        out[("novelty", k, "all")] = (sum(info) / len(info) if info else 0.0, len(relevant))
    return out


def _random_case(seed: int):
    rng = random.Random(seed)
    n_items = rng.randint(1, 30)
    items = [f"i{j}" for j in range(n_items)]
    users = [f"u{j}" for j in range(rng.randint(1, 15))]
    recs = []
    for u in users:
        if rng.random() < 0.15:
            continue  # some users get no recommendations
        chosen = rng.sample(items, rng.randint(0, min(n_items, 25)))
        if rng.random() < 0.5:
            ranks = list(range(1, len(chosen) + 1))
        else:  # unique ranks with gaps
            ranks = sorted(rng.sample(range(1, 41), len(chosen)))
        recs.extend((u, i, r) for i, r in zip(chosen, ranks, strict=True))
    holdout = [
        (u, rng.choice(items))
        for u in users
        if rng.random() < 0.8
        for _ in range(rng.randint(1, 4))
    ] or [(users[0], items[0])]
    train = []
    for u in users + ["t_only"]:
        if rng.random() < 0.2:
            continue  # users without train history
        train.extend((u, rng.choice(items)) for _ in range(rng.choice([1, 3, 6, 12, 20, 21, 30])))
    ks = sorted(rng.sample([1, 2, 3, 5, 10, 20], rng.randint(1, 4)))
    return recs, holdout, train, ks, n_items + rng.randint(0, 5)


@pytest.mark.parametrize("seed", range(50))
def test_matches_plain_python_reference(seed: int) -> None:
    recs, holdout, train, ks, n_catalog = _random_case(seed)
    got = evaluate_rankings(_recs(recs), _pairs(holdout), _pairs(train), ks, "rankings", n_catalog)
    expected = reference_metrics(recs, holdout, train, ks, n_catalog)
    got_dict = _as_dict(got)
    assert set(got_dict) == set(expected)
    for key, (value, n_users) in expected.items():
        assert got_dict[key][0] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        assert got_dict[key][1] == n_users, key


def test_reference_cases_cover_every_segment() -> None:
    # Guards the random test above against silently never exercising a segment.
    seen = set()
    for seed in range(50):
        recs, holdout, train, ks, n_catalog = _random_case(seed)
        seen |= {seg for _, _, seg in reference_metrics(recs, holdout, train, ks, n_catalog)}
    assert seen == {"all", "hist_le5", "hist_6_20", "hist_gt20", "pop_head", "pop_tail"}


# --- contract ---------------------------------------------------------------------------

RECS = _recs([("u1", "a", 1), ("u1", "b", 2), ("u2", "b", 1), ("ghost", "c", 1)])
HOLDOUT = _pairs([("u1", "b"), ("u2", "a"), ("u2", "a")])
TRAIN = _pairs([("u1", "a")] * 7 + [("u1", "b"), ("u3", "c")])


def test_output_schema_order_and_sort() -> None:
    got = evaluate_rankings(RECS, HOLDOUT, TRAIN, [5, 1], "candidates", 4)
    assert got.schema == SCHEMA
    assert got.equals(got.sort("metric", "k", "segment"))
    assert set(got.get_column("table")) == {"candidates"}
    assert got.select(pl.col("value").is_nan().any()).item() is False
    # one row per metric x k x segment
    assert got.select("metric", "k", "segment").is_duplicated().sum() == 0


def test_segments_and_ignored_users() -> None:
    got = _as_dict(evaluate_rankings(RECS, HOLDOUT, TRAIN, [1], "rankings", 4))
    # u1 has 8 train events (hist_6_20), u2 none (hist_le5); hist_gt20 has no users.
    assert got[("hr", 1, "hist_6_20")] == (0.0, 1)
    assert got[("hr", 1, "hist_le5")] == (0.0, 1)
    assert not any(seg == "hist_gt20" for _, _, seg in got)
    # Head: "a" (7 of 9 events) alone, although it exceeds 20 %; "b" is tail.
    assert got[("hr", 1, "pop_head")] == (0.0, 1)
    assert got[("hr", 1, "pop_tail")] == (0.0, 1)
    # The duplicated holdout row is one relevant item; "ghost" (not held out) is ignored.
    assert got[("recall", 1, "all")] == (0.0, 2)
    assert got[("coverage", 1, "all")] == (2 / 4, 2)
    assert set(m for m, _, seg in got if seg != "all") <= set(ACCURACY)


def test_extra_columns_and_other_dtypes_are_accepted() -> None:
    recs = RECS.with_columns(pl.col("rank").cast(pl.Int64), pl.lit(0.5).alias("score"))
    got = evaluate_rankings(recs, HOLDOUT, TRAIN, (2,), "rankings", 4)
    assert got.equals(evaluate_rankings(RECS, HOLDOUT, TRAIN, (2,), "rankings", 4))


def test_empty_recs_gives_zeros_without_nan() -> None:
    got = evaluate_rankings(_recs([]), HOLDOUT, TRAIN, [1, 10], "rankings", 4)
    assert got.schema == SCHEMA
    assert got.get_column("value").to_list() == [0.0] * got.height
    assert {m for m, _, _ in _as_dict(got)} == {*ACCURACY, "coverage", "gini", "novelty"}
    assert got.filter(pl.col("segment") == "all").get_column("n_users").unique().to_list() == [2]


def test_empty_holdout_raises() -> None:
    with pytest.raises(ValueError, match="holdout is empty"):
        evaluate_rankings(RECS, _pairs([]), TRAIN, [1], "rankings", 4)


def test_holdout_users_without_train_history_are_hist_le5() -> None:
    got = evaluate_rankings(RECS, HOLDOUT, _pairs([]), [1, 2], "rankings", 4)
    segments = set(got.get_column("segment"))
    # Empty train: no head items, so every held-out item is tail.
    assert segments == {"all", "hist_le5", "pop_tail"}
    assert _as_dict(got)[("hr", 2, "hist_le5")] == (1 / 2, 2)
    assert _as_dict(got)[("novelty", 2, "all")] == (0.0, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "ranking"}, "table must be one of .*'ranking'"),
        ({"ks": []}, "ks must be a non-empty sequence"),
        ({"ks": [10, 0]}, "every k must be an int >= 1, got 0"),
        ({"ks": [2.5]}, "every k must be an int >= 1, got 2.5"),
        ({"n_catalog_items": 0}, "n_catalog_items must be >= 1, got 0"),
        ({"n_catalog_items": 1}, "2 distinct items are recommended but n_catalog_items is 1"),
        ({"holdout": _pairs([]).drop("item_id")}, r"holdout is missing columns \['item_id'\]"),
        ({"recs": _recs([("u1", "a", 1), ("u1", "b", 1)])}, r"unique \(user_id, rank\)"),
        ({"recs": _recs([("u1", "a", 1), ("u1", "a", 2)])}, r"unique \(user_id, item_id\)"),
        ({"recs": _recs([("u1", "a", 0)])}, "ranks must be >= 1"),
        ({"train": _pairs([("u1", None)])}, r"train has null values .*'item_id': 1"),
    ],
)
def test_input_errors(kwargs: dict, message: str) -> None:
    args = {
        "recs": RECS,
        "holdout": HOLDOUT,
        "train": TRAIN,
        "ks": [2],
        "table": "rankings",
        "n_catalog_items": 4,
    }
    with pytest.raises(ValueError, match=message):
        evaluate_rankings(**{**args, **kwargs})


# --- segments ---------------------------------------------------------------------------


def test_head_items_threshold_ties_and_minimum() -> None:
    # 20 events: 20 % = 4. Counts d=14, a=b=c=2.
    train = _pairs([("u", "c")] * 2 + [("u", "b")] * 2 + [("u", "a")] * 2 + [("u", "d")] * 14)
    # d alone (14 > 4) is kept as the minimum one item; a (cum 16) stops the prefix.
    assert head_items(train).get_column("item_id").to_list() == ["d"]
    # 15 events, all items tied at 3: 20 % = 3, so exactly the first by item_id fits
    # (a cumulative count equal to the threshold is still head).
    train = _pairs([("u", i) for i in "bdcea" for _ in range(3)])
    assert head_items(train).get_column("item_id").to_list() == ["a"]
    train = _pairs([("u", f"i{j}") for j in range(10)])
    assert head_items(train).get_column("item_id").to_list() == ["i0", "i1"]
    assert head_items(_pairs([])).height == 0


def test_history_segments_boundaries() -> None:
    train = _pairs([("a", "x")] * 5 + [("b", "x")] * 6 + [("c", "x")] * 20 + [("d", "x")] * 21)
    users = _pairs([(u, "") for u in "abcde"]).select("user_id")
    got = dict(history_segments(users, train).iter_rows())
    assert got == {
        "a": "hist_le5",
        "b": "hist_6_20",
        "c": "hist_6_20",
        "d": "hist_gt20",
        "e": "hist_le5",
    }


# --- report -----------------------------------------------------------------------------


def test_render_report_md() -> None:
    metrics = evaluate_rankings(RECS, HOLDOUT, TRAIN, [1, 2], "rankings", 4)
    report = render_report_md(metrics, "Eval of run X", ["## Notes\n\nverbatim *text*"])
    lines = report.splitlines()
    assert lines[0] == "# Eval of run X"
    assert "## Accuracy (rankings)" in lines and "## Beyond accuracy (rankings)" in lines
    header = next(line for line in lines if line.startswith("| metric"))
    assert header == "| metric | all | hist_le5 | hist_6_20 | pop_head | pop_tail |"
    hr2 = _as_dict(metrics)[("hr", 2, "all")][0]
    assert any(line.startswith(f"| hr@2 | {hr2:.4f} |") for line in lines)
    assert "| n_users | 2 | 1 | 1 | 1 | 1 |" in lines
    assert "| coverage@2 | 0.5000 |" in lines
    assert report.rstrip().endswith("## Notes\n\nverbatim *text*")
    with pytest.raises(ValueError, match=r"metrics is missing columns \['value'\]"):
        render_report_md(metrics.drop("value"), "x")
