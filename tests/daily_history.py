"""The small daily history the DAG and run-secrets tests run on: 51 users on 40 items, enough
for the fit pass to fit a ranker, one of them (u_all) having seen every item."""

from __future__ import annotations

import random
from pathlib import Path


def history_rows(rng: random.Random, t0: int = 1_763_000_000) -> list[tuple[str, str, int]]:
    """(user_id, item_id, ts) rows drawn from `rng` (which callers may go on drawing from)."""
    rows = [
        (f"u{u}", f"i{rng.randrange(40)}", t0 + 3600 * k)
        for u in range(50)
        for k in range(rng.randint(3, 10))
    ]
    # A user who has seen every item has nothing left to recommend: 50 of 51 users ranked.
    return rows + [("u_all", f"i{k}", t0 + 60 * k) for k in range(40)]


def write_csv(path: Path, rows: list[tuple[str, str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("user_id,item_id,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
