"""User-level PPR by linearity against a dense numpy model."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pyarrow as pa
import pytest

from tests.spark_references import user_ppr

pytestmark = pytest.mark.spark


def test_user_ppr_is_the_weighted_sum_of_item_rows(spark):
    rng = random.Random(7)
    n_items, n_users = 15, 6
    ppr = np.zeros((n_items, n_items))
    rows = []
    for s in range(n_items):
        for d in rng.sample(range(n_items), 5):
            if d != s:
                ppr[s, d] = rng.random()
                rows.append((s, d, float(ppr[s, d]), 1))
    item_ppr = pa.table({c: [r[n] for r in rows] for n, c in enumerate(["src", "dst", "score"])})
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    events = []
    for u in range(n_users):
        for t in range(rng.randint(1, 8)):
            i = rng.randrange(n_items)
            events.append((u, i, f"i{i:02d}", base + dt.timedelta(minutes=t), None))
    train = spark.createDataFrame(
        events, "user_idx int, item_idx int, item_id string, ts timestamp, value double"
    )
    history, decay, top_n = 4, 0.5, 5
    got = {}
    seen = train.select("user_idx", "item_idx").distinct()
    scored = user_ppr(
        spark,
        item_ppr,
        train,
        n_items=n_items,
        history=history,
        decay=decay,
        top_n=top_n,
        seen=seen,
    )
    for r in scored.collect():
        got.setdefault(r.user_idx, []).append((r.item_idx, r.score))
    for u in range(n_users):
        evs = sorted((e for e in events if e[0] == u), key=lambda e: (e[3], e[2]), reverse=True)
        w = np.zeros(n_items)
        for p, e in enumerate(evs[:history]):
            w[e[1]] += decay**p
        vec = (w / w.sum()) @ ppr
        seen = {e[1] for e in evs}
        cand = sorted(
            ((i, vec[i]) for i in range(n_items) if i not in seen and vec[i] > 0),
            key=lambda x: (-x[1], x[0]),
        )[:top_n]
        mine = sorted(got.get(u, []), key=lambda x: (-x[1], x[0]))
        assert [i for i, _ in mine] == [i for i, _ in cand], u
        assert [s for _, s in mine] == pytest.approx([s for _, s in cand], rel=1e-12)
