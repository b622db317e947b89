"""Small random event logs written straight into a run (no ingest), for stage tests."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa

from pipelines import tableio
from schemas.tables import EVENTS, ITEMS


def random_events(seed: int, n_users: int = 30, n_items: int = 40, max_len: int = 12) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for u in range(n_users):
        for _ in range(rng.randint(1, max_len)):
            rows.append(
                {
                    "user_id": f"u{u:03d}",
                    # Zipf-ish popularity so ties and heads both occur.
                    "item_id": f"i{min(int(rng.paretovariate(1.2)) - 1, n_items - 1):03d}",
                    "ts": base + dt.timedelta(hours=rng.randint(0, 50)),  # same-ts ties happen
                    "event_type": None,
                    "value": float(rng.randint(1, 5)),
                }
            )
    # Exact duplicates are collapsed by ingest; mimic that here.
    uniq = {(r["user_id"], r["item_id"], r["ts"], r["value"]): r for r in rows}
    return list(uniq.values())


def write_events(run_dir, rows: list[dict], catalog_extra: int = 3) -> None:
    users = sorted({r["user_id"] for r in rows})
    items = sorted({r["item_id"] for r in rows} | {f"z{k}" for k in range(catalog_extra)})
    uidx = {u: i for i, u in enumerate(users)}
    iidx = {it: i for i, it in enumerate(items)}
    cols = {k: [r[k] for r in rows] for k in ("user_id", "item_id", "ts", "event_type", "value")}
    cols["user_idx"] = [uidx[u] for u in cols["user_id"]]
    cols["item_idx"] = [iidx[i] for i in cols["item_id"]]
    events = pa.table(cols, schema=EVENTS.schema)
    pop = {i: 0 for i in items}
    for r in rows:
        pop[r["item_id"]] += 1
    items_t = pa.table(
        {
            "item_id": items,
            "item_idx": [iidx[i] for i in items],
            "title": [f"Title {i}" for i in items],
            "text": [None] * len(items),
            "popularity": [pop[i] for i in items],
        },
        schema=ITEMS.schema,
    )
    tableio.write_table(run_dir, "events", events, stage="fixture", stage_key="fixture")
    tableio.write_table(run_dir, "items", items_t, stage="fixture", stage_key="fixture")
