"""Hand-made `metrics` frames and run directories for the report.html tests (no engine)."""

from __future__ import annotations

import json
import math
import random
import subprocess
from pathlib import Path

import polars as pl

from pipelines import tableio
from pipelines.evaluation.evaluate import METRICS_SCHEMA

# NDCG@10 of each table in the made-up evaluation run; the other figures derive from it.
STRENGTH = {
    "rankings": 0.080,
    "candidates": 0.076,
    "candidates:ppr": 0.070,
    "candidates:transition": 0.062,
    "candidates:item_cf": 0.051,
    "candidates:user_cf": 0.043,
    "candidates:popular": 0.005,
}
SEGMENTS = {  # segment: (share of the users, factor on the metrics)
    "all": (1.0, 1.0),
    "hist_le5": (0.55, 0.7),
    "hist_6_20": (0.35, 1.2),
    "hist_gt20": (0.10, 1.6),
    "pop_head": (0.30, 2.0),
    "pop_tail": (0.70, 0.5),
}
PLAN = {
    "stages": [
        {"name": "ingest", "planned": True, "reason": "always"},
        {"name": "split", "planned": True, "reason": "always"},
        {"name": "graph", "planned": True, "reason": "read by the transition and ppr sources"},
        {"name": "ppr", "planned": True, "reason": "ppr source enabled"},
        {"name": "neighbors", "planned": False, "reason": "no item_cf/user_cf source"},
        {"name": "candidates", "planned": True, "reason": "always"},
        {"name": "summaries", "planned": False, "reason": "llm.enabled is false"},
        {"name": "llm_scores", "planned": False, "reason": "llm.enabled is false"},
        {"name": "rank", "planned": False, "reason": "nothing reads llm_scores"},
        {"name": "evaluate", "planned": True, "reason": "eval.target = test"},
    ]
}


def metrics_frame(rows: list[tuple]) -> pl.DataFrame:
    """(table, metric, k, segment, value, n_users) tuples as a metrics table."""
    return pl.DataFrame(rows, schema=METRICS_SCHEMA, orient="row")


def eval_metrics(ks: tuple[int, ...] = (10, 20, 100), n_users: int = 1000) -> pl.DataFrame:
    rows = []
    for table, base in STRENGTH.items():
        for k in ks:
            grow = 1 + 0.6 * math.log(k / 10)
            for seg, (share, f) in SEGMENTS.items():
                ndcg = base * grow * f
                hr = min(1.0, 2.2 * ndcg * grow)
                values = {"ndcg": ndcg, "hr": hr, "recall": hr, "precision": hr / k,
                          "mrr": 0.8 * base * f, "map": 0.8 * base * f}  # fmt: skip
                rows += [(table, m, k, seg, v, int(n_users * share)) for m, v in values.items()]
            coverage = min(1.0, (0.02 if table.endswith("popular") else 0.3) * grow)
            rows += [
                (table, "coverage", k, "all", coverage, n_users),
                (table, "gini", k, "all", 1 - coverage * 0.8, n_users),
                (table, "novelty", k, "all", 12 * base / 0.08 + 2, n_users),
            ]
    return metrics_frame(rows)


def serve_metrics(ks: tuple[int, ...] = (10, 20), n_users: int = 1000) -> pl.DataFrame:
    rows = []
    for table in ("rankings", "candidates", "candidates:ppr", "candidates:popular"):
        for k in ks:
            cov = 0.01 * k if table == "candidates:popular" else 0.02 * k
            rows += [
                (table, "coverage", k, "all", cov, n_users),
                (table, "gini", k, "all", 1 - cov, n_users),
                (table, "novelty", k, "all", 9.5, n_users),
                (table, "users", k, "all", float(n_users), n_users),
                (table, "catalog_items", k, "all", 5000.0, n_users),
                (table, "recommended_items", k, "all", cov * 5000, n_users),
            ]
    return metrics_frame(rows)


def write_run(
    run_dir: Path,
    metrics: pl.DataFrame,
    *,
    target: str = "test",
    plan: dict | None = None,
    tables: bool = True,
) -> Path:
    """A run directory with a committed metrics table, plus (tables=True) small items,
    candidates and graph_nodes tables of their stages, and plan.json when given."""
    rng = random.Random(3)

    def write(name: str, frame: pl.DataFrame, stage: str, seconds: float, **extra) -> None:
        ints = {"item_idx", "id", "out_degree", "in_degree", "rank"}
        frame = frame.with_columns(pl.col(c).cast(pl.Int32) for c in ints & set(frame.columns))
        tableio.write_table(
            run_dir, name, frame, stage=stage, stage_key="t", seconds=seconds, extra=extra
        )

    if tables:
        items = [f"i{i}" for i in range(40)]
        write("items", pl.DataFrame({"item_id": items, "item_idx": range(40),
                                     "title": pl.Series([None] * 40, dtype=pl.String),
                                     "text": pl.Series([None] * 40, dtype=pl.String),
                                     "popularity": [rng.randrange(1, 90) for _ in items]}),
              "ingest", 4.2)  # fmt: skip
        write("graph_nodes", pl.DataFrame({"id": range(40), "item_id": items,
                                           "out_degree": [rng.randrange(0, 30) for _ in items],
                                           "in_degree": [rng.randrange(0, 30) for _ in items],
                                           "out_weight": [1.0] * 40}),
              "graph", 7.5)  # fmt: skip
        rows = []
        for u in range(20):
            for rank, item in enumerate(rng.sample(items, 8), start=1):
                srcs = rng.sample(["ppr", "transition", "popular"], rng.randint(1, 3))
                rows.append((f"u{u}", item, rank, 1.0 / rank, sorted(srcs)))
        cands = pl.DataFrame(
            rows, schema=["user_id", "item_id", "rank", "score", "sources"], orient="row"
        )
        write("candidates", cands, "candidates", 21.0)
    write("metrics", metrics, "evaluate", 1.3, target=target)
    if plan is not None:
        (run_dir / "plan.json").write_text(json.dumps(plan))
    return run_dir


def chromium_or_skip() -> str:
    """The headless browser's path; skips the test when it is missing (fails under CI)."""
    import os
    import shutil

    import pytest

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (make browser)")
        pytest.skip("chromium is not installed (make browser)")
    return browser


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local page (no sandbox: tests run as root in CI)."""
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--virtual-time-budget=5000", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
