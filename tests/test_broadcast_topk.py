"""The kernel-based history sources (ppr, item_cf, user_cf over a broadcast CSR table) against
the Spark join + groupBy implementation they replaced, kept here as the reference."""

from __future__ import annotations

import datetime as dt
import random
from types import SimpleNamespace

import pyarrow as pa
import pytest

from pipelines.candidates.inputs import SourceInputs
from pipelines.candidates.sources.item_cf import item_cf_source
from pipelines.candidates.sources.ppr import ppr_source
from pipelines.candidates.sources.user_cf import user_cf_source

pytestmark = pytest.mark.spark

N_USERS, N_ITEMS, K = 40, 30, 5
SETTINGS = SimpleNamespace(history=4, decay=0.7)


def old_weighted_source(inputs, table, src, dst, score, settings):
    """ppr and item_cf before issue 16: join the weights to the table, exact groupBy sums."""
    from pipelines.candidates.inputs import top_per_user
    from pipelines.candidates.recent import recent_item_weights
    from tests.spark_references import weighted_item_sum

    weights = recent_item_weights(inputs.train, settings.history, settings.decay)
    scored = weighted_item_sum(weights, table, src, dst, score)
    return top_per_user(scored, inputs.per_source, inputs.seen)


def old_user_cf_source(inputs, tables, settings):
    """user_cf before issue 16."""
    from pyspark.sql import functions as F

    from pipelines.candidates.inputs import top_per_user
    from pipelines.candidates.recent import recent_item_weights
    from pipelines.exact_sum import exact_sum

    ids = inputs.user_ids
    nb = (
        tables["user_neighbors"]
        .join(ids, "user_id")
        .join(
            ids.select(F.col("user_idx").alias("v"), F.col("user_id").alias("neighbor_id")),
            "neighbor_id",
        )
        .select("user_idx", "v", "sim")
    )
    recent = recent_item_weights(inputs.train, settings.history, settings.decay).select(
        F.col("user_idx").alias("v"), "item_idx", "w"
    )
    scored = (
        nb.join(recent, "v")
        .groupBy("user_idx", "item_idx")
        .agg(exact_sum(F.col("sim") * F.col("w")).alias("score"))
        .filter(F.col("score") > 0)
    )
    return top_per_user(scored, inputs.per_source, inputs.seen)


def _log(seed):
    """Train events (same-ts ties, null values, repeated items; the last users have none),
    and item_ppr, item_neighbors (signed, tie-prone sims) and user_neighbors as Arrow."""
    rng = random.Random(seed)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    events = []
    for u in range(N_USERS - 3):
        for _ in range(rng.randint(1, 9)):
            i = min(int(rng.paretovariate(1.0)) - 1, N_ITEMS - 1)
            ts = base + dt.timedelta(hours=rng.randint(0, 20))
            events.append((u, i, f"i{i:03d}", ts, rng.choice([None, 1.0, 2.0])))
    ppr, cf = [], []
    for s in range(N_ITEMS):
        for d in rng.sample(range(N_ITEMS), rng.choice([0, 3, 6])):
            ppr.append((s, d, rng.random()))
            cf.append((s, d, rng.choice([1.0, 0.5, 0.25, -0.25, 0.3])))
    users = []
    for u in range(N_USERS):
        for v in rng.sample(range(N_USERS), 4):
            if v != u:
                users.append((f"u{u:03d}", f"u{v:03d}", rng.choice([0.9, 0.5, 0.2, -0.4])))

    def table(rows, names):
        return pa.table({n: [r[c] for r in rows] for c, n in enumerate(names)})

    arrow = {
        "item_ppr": table(ppr, ["src", "dst", "score"]),
        "item_neighbors": table(cf, ["item_idx", "neighbor_idx", "sim"]),
        "user_neighbors": table(users, ["user_id", "neighbor_id", "sim"]),
    }
    return events, arrow


def _inputs(spark, events, arrow, with_seen):
    train = spark.createDataFrame(
        events, "user_idx int, item_idx int, item_id string, ts timestamp, value double"
    )
    ids = spark.createDataFrame(
        [(u, f"u{u:03d}") for u in range(N_USERS)], "user_idx int, user_id string"
    )
    seen = train.select("user_idx", "item_idx").distinct() if with_seen else None
    return SourceInputs(
        spark=spark,
        train=train,
        users=ids.select("user_idx"),
        user_ids=ids,
        seen=seen,
        n_items=N_ITEMS,
        per_source=K,
        read_arrow=lambda name, cols: arrow[name].select(cols),
    )


def _lists(df):
    out = {}
    for r in df.collect():
        out.setdefault(r.user_idx, {})[r.item_idx] = r.score
    return out


def _compare(got, want):
    """Same users, list lengths and scores (to float rounding: the old sums were exact
    decimals, the kernel's float sums in a fixed order); an item may differ only where its
    score ties the list's last score, which either implementation may cut.
    -> (max relative score difference, items swapped at the cut-off)."""
    assert got.keys() == want.keys()
    worst, swapped = 0.0, 0
    for u, w in want.items():
        g = got[u]
        assert len(g) == len(w) <= K, u
        assert sorted(g.values()) == pytest.approx(sorted(w.values()), rel=1e-12, abs=1e-15)
        for j in g.keys() & w.keys():
            assert g[j] == pytest.approx(w[j], rel=1e-12, abs=1e-15), (u, j)
            worst = max(worst, abs(g[j] - w[j]) / max(abs(w[j]), 1e-300))
        floor = min(w.values())
        for j in g.keys() ^ w.keys():
            assert (g | w)[j] == pytest.approx(floor, rel=1e-12, abs=1e-15), (u, j)
            swapped += 1
    return worst, swapped // 2


@pytest.mark.parametrize("with_seen", [True, False])
@pytest.mark.parametrize("seed", [3, 4])
def test_kernel_sources_equal_the_spark_join_sources(spark, seed, with_seen):
    events, arrow = _log(seed)
    inputs = _inputs(spark, events, arrow, with_seen)
    spark_table = {n: spark.createDataFrame(t) for n, t in arrow.items()}
    pairs = {
        "ppr": (
            ppr_source(inputs, {}, SETTINGS),
            old_weighted_source(inputs, spark_table["item_ppr"], "src", "dst", "score", SETTINGS),
        ),
        "item_cf": (
            item_cf_source(inputs, {}, SETTINGS),
            old_weighted_source(
                inputs, spark_table["item_neighbors"], "item_idx", "neighbor_idx", "sim", SETTINGS
            ),
        ),
        "user_cf": (
            user_cf_source(inputs, spark_table, SETTINGS),
            old_user_cf_source(inputs, spark_table, SETTINGS),
        ),
    }
    for name, (new, old) in pairs.items():
        assert new.schema.simpleString() == "struct<user_idx:int,item_idx:int,score:double>"
        got, want = _lists(new), _lists(old)
        assert want, name  # the log reaches something
        worst, swapped = _compare(got, want)
        print(f"{name} seed={seed} seen={with_seen}: max rel diff {worst:.2e}, {swapped} swaps")
    # Signed sims: item_cf keeps non-positive sums, user_cf drops them.
    assert any(s <= 0 for lst in _lists(pairs["item_cf"][0]).values() for s in lst.values())
    assert all(s > 0 for lst in _lists(pairs["user_cf"][0]).values() for s in lst.values())
