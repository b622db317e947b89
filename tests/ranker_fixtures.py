"""The planted log the ranker tests share, and its run (a session fixture, in conftest):
random histories, every user's valid event a random item, most users' test event one planted
item."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from pipelines import api
from pipelines.config import load_config
from tests.pipeline_fixtures import write_events

SMALL = [
    "llm.enabled=false",
    "rank.min_fit_users=5",
    "rank.min_data_in_leaf=5",
    # Random valid labels give a ranker no edge over the fusion; use it anyway (the tests are
    # about what it does, not whether it wins).
    "rank.min_gain=-1",
    "rank.rounds=40",
    "rank.early_stopping=10",
    "candidates.per_source=20",
    "candidates.top_n=30",
    "neighbors.user_k=10",
    "eval.ks=[1,10]",
    "spark.shuffle_partitions=4",
]


def stages_run(run_dir, sets: list[str]) -> dict[str, str]:
    """The stages `walkrank run` plans for this run dir (rank.model = latest resolved first)
    but ingest (the fixture wrote events and items), with the SMALL settings."""
    cfg = load_config(None, [*SMALL, *sets])
    resolved, _ = api.prepare(cfg, run_dir)
    names = [n for n in api.plan(resolved).names if n != "ingest"]
    return api.run(cfg, run_dir, names)


PLANT = "iPLANT"


def planted_log(seed: int = 7, n_users: int = 120, n_items: int = 25) -> list[dict]:
    """Random histories; every user's valid event is a random item, every user's test event
    is the same planted item, which also appears early in a fifth of the histories (so it
    has ordinary train features). A ranker that saw the test labels would learn to put it
    first; one fitted on the valid labels has no reason to."""
    rng = random.Random(seed)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    rows = []
    for u in range(n_users):
        user = f"u{u:03d}"
        hist = [f"i{rng.randrange(n_items):02d}" for _ in range(rng.randint(4, 9))]
        if u % 5 == 0:
            hist[0] = PLANT
        valid = f"i{rng.randrange(n_items):02d}"
        for t, item in enumerate([*hist, valid, PLANT] if u % 5 else [*hist, valid]):
            ev = {"user_id": user, "item_id": item, "event_type": None, "value": None}
            rows.append(ev | {"ts": base + dt.timedelta(hours=u * 50 + t)})
    return rows


@pytest.fixture(scope="session")
def planted_run(spark, tmp_path_factory):
    run = tmp_path_factory.mktemp("planted") / "r"
    write_events(run, planted_log())
    stages_run(run, [])
    return run
