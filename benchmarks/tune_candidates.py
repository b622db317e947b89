"""Tune the candidate knobs on the VALIDATION split; write the choice to
benchmarks/results/tuned_<dataset>.toml (what wins goes into the defaults in pipelines/config/sections.py).

    .venv/bin/python benchmarks/tune_candidates.py --dataset toys --out /tmp/tune

Reproducible: a fixed search order, seeds from the config, every trial logged to
benchmarks/results/tune_<dataset>.json. Never looks at the test split: the runs use
eval.target=valid, so `train` holds neither held-out event and only `valid` rows are scored.

Search (coordinate descent on NDCG@10 of the fused candidates):
1. pipeline knobs one at a time (graph reverse weight, PPR alpha, PPR history length,
   transition seeds; `--knobs`), each trial a `run_stages` call that re-runs only the
   stages whose config changed (graph window stays 3, the issue's reference);
2. fusion weights offline, one pass over the sources: with candidates.top_n = every
   source's full list, the per-source score columns are re-fused in Polars (the same
   max-normalised weighted sum as pipelines/candidates/fusion.py, ties by item id) and scored by
   `fast_ndcg10`, so no Spark run per weight setting.
`--no-run` scores the run's committed candidates as they are (resume after a pipeline trial).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines import tableio  # noqa: E402
from pipelines.config import load_config  # noqa: E402
from pipelines.evaluation import evaluate_rankings  # noqa: E402
from pipelines.runner import run_stages  # noqa: E402
from pipelines.stage_registry import STAGES  # noqa: E402

SOURCES = ["transition", "ppr", "item_cf", "user_cf"]
DATASETS = {
    "toys": (ROOT.parent / "shared/datasets/amazon-toys/Toys_and_Games.txt", "sequences"),
    "ml1m": (None, "recbole"),
}
BASE = [
    "eval.target=valid",
    "spark.master=local[2]",
    "ppr.seeds=needed",
    "graph.window=3",
    "graph.reverse_weight=0.2",
    "ppr.alpha=0.3",
    f"candidates.sources={json.dumps(SOURCES)}",
    "candidates.per_source=100",
]
# (key, values), searched in this order; the first value of each is the starting point.
KNOBS: list[tuple[str, list]] = [
    ("graph.reverse_weight", [0.2, 0.5]),
    ("ppr.alpha", [0.3, 0.5]),
    ("candidates.ppr.history", [10, 5]),  # <= ppr.needed_history: every item has its PPR row
    ("candidates.transition.last", [2, 1]),
]
WEIGHT_GRID = [0.0, 0.25, 0.5, 1.0, 2.0]
PIPELINE = ["ingest", "split", "graph", "ppr", "neighbors", "candidates"]


def fuse(cands: pl.DataFrame, weights: dict[str, float], top_n: int) -> pl.DataFrame:
    """The weighted fusion of pipelines/candidates/fusion.py on the score_<source> columns."""
    parts = []
    for s, w in weights.items():
        col = f"score_{s}"
        top = pl.col(col).max().over("user_id")
        parts.append(pl.when(top > 0).then(pl.col(col) / top).otherwise(0.0).fill_null(0.0) * w)
    return (
        cands.with_columns(pl.sum_horizontal(parts).alias("_f"))
        .sort(["user_id", "_f", "item_id"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("user_id").alias("rank"))
        .filter(pl.col("rank") <= top_n)
        .select("user_id", "item_id", "rank")
    )


def normalised(cands: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """user_id, item_id and n_<source> = score / the user's max of that source (0 if absent):
    the weight-independent part of the fusion, computed once for the whole weight search."""
    cols = []
    for s in names:
        col, top = pl.col(f"score_{s}"), pl.col(f"score_{s}").max().over("user_id")
        cols.append(pl.when(top > 0).then(col / top).otherwise(0.0).fill_null(0.0).alias(f"n_{s}"))
    return cands.select("user_id", "item_id", *cols)


def fast_ndcg10(norm: pl.DataFrame, relevant: pl.DataFrame, weights: dict[str, float]) -> float:
    """NDCG@10 of the fused order with one relevant item per user (leave-last-out):
    1 / log2(1 + rank) of the held-out item if its rank <= 10, rank = 1 + the user's items
    with a higher fused score (or equal and a smaller item_id, the fusion's tie order)."""
    import math

    f = norm.select(
        "user_id",
        "item_id",
        pl.sum_horizontal([pl.col(f"n_{s}") * w for s, w in weights.items()]).alias("f"),
    )
    target = f.join(relevant, on=["user_id", "item_id"]).rename({"item_id": "t", "f": "tf"})
    ahead = (
        f.join(target, on="user_id")
        .filter(
            (pl.col("f") > pl.col("tf"))
            | ((pl.col("f") == pl.col("tf")) & (pl.col("item_id") < pl.col("t")))
        )
        .group_by("user_id")
        .len()
    )
    ranks = target.join(ahead, on="user_id", how="left").select(pl.col("len").fill_null(0) + 1)
    gains = [1.0 / math.log2(1 + r) for r in ranks.to_series().to_list() if r <= 10]
    return sum(gains) / relevant.select("user_id").n_unique()


def score(run: Path, recs: pl.DataFrame) -> dict[str, float]:
    hold = tableio.read_polars(run, "holdout").filter(pl.col("split") == "valid")
    train = tableio.read_polars(run, "train").select("user_id", "item_id")
    m = evaluate_rankings(
        recs,
        hold.select("user_id", "item_id"),
        train,
        [10, 200],
        "candidates",
        tableio.read_manifest(run, "items")["rows"],
    ).filter(pl.col("segment") == "all")
    get = {(r["metric"], r["k"]): r["value"] for r in m.iter_rows(named=True)}
    return {"ndcg@10": get[("ndcg", 10)], "hr@10": get[("hr", 10)], "hr@200": get[("hr", 200)]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="toys")
    p.add_argument("--out", default="/tmp/walkrank-tune")
    p.add_argument("--conf", default=None, help="where to write the chosen config")
    p.add_argument(
        "--knobs",
        default="all",
        help="comma list of pipeline knobs to search (keys of KNOBS), 'all', or 'none' "
        "(fusion weights only)",
    )
    p.add_argument(
        "--no-run",
        action="store_true",
        help="score the run's committed candidates as they are (resume a search whose "
        "pipeline trial already ran); implies --knobs none",
    )
    args = p.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    path, fmt = DATASETS[args.dataset]
    if path is None:
        from pipelines.ingest.datasets import dataset_path

        path = dataset_path("ml-1m")
    base = [f'ingest.input="{path}"', f"ingest.format={fmt}", *BASE]
    run = Path(args.out) / args.dataset
    top_all = 100 * (len(SOURCES) + 1)  # every source's full list survives the fusion cut
    chosen: dict[str, object] = {k: v[0] for k, v in KNOBS}
    weights = {s: 1.0 for s in [*SOURCES, "popular"]}
    trials: list[dict] = []

    def trial(settings: dict[str, object]) -> tuple[float, dict]:
        sets = [*base, *(f"{k}={json.dumps(v)}" for k, v in settings.items())]
        sets.append(f"candidates.top_n={top_all}")
        cfg = load_config(None, sets)
        t0 = time.perf_counter()
        if not args.no_run:
            run_stages(run, cfg, [STAGES[s] for s in PIPELINE])
        cands = tableio.read_polars(run, "candidates")
        res = score(run, fuse(cands, weights, 200))
        trials.append(
            {
                "settings": dict(settings),
                "weights": dict(weights),
                **res,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(json.dumps(trials[-1]), flush=True)
        return res["ndcg@10"], res

    best, _ = trial(chosen)
    wanted = {k for k, _ in KNOBS} if args.knobs == "all" else set(args.knobs.split(","))
    if args.no_run:
        wanted = set()
    for key, values in KNOBS:
        if key not in wanted:
            continue
        for v in values[1:]:
            cand = {**chosen, key: v}
            val, _ = trial(cand)
            if val > best:
                best, chosen = val, cand
    if wanted:
        trial(chosen)  # leaves the run on the chosen pipeline config for the weight search
    cands = tableio.read_polars(run, "candidates")
    names = [*SOURCES, "popular"]
    norm = normalised(cands, names)
    hold = tableio.read_polars(run, "holdout").filter(pl.col("split") == "valid")
    relevant = hold.select("user_id", "item_id").unique()
    best = fast_ndcg10(norm, relevant, weights)
    for s in names:
        for w in WEIGHT_GRID:
            cand = {**weights, s: w}
            val = fast_ndcg10(norm, relevant, cand)
            trials.append({"settings": dict(chosen), "weights": cand, "ndcg@10": val})
            print(json.dumps(trials[-1]), flush=True)
            if val > best:
                best, weights = val, cand
    final = score(run, fuse(cands, weights, 200))
    print("chosen", json.dumps({"settings": chosen, "weights": weights, **final}), flush=True)

    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / f"tune_{args.dataset}.json").write_text(
        json.dumps(
            {
                "dataset": args.dataset,
                "base": base[2:],
                "trials": trials,
                "chosen": {"settings": chosen, "weights": weights, **final},
            },
            indent=1,
        )
    )
    conf = Path(args.conf or ROOT / "benchmarks" / "results" / f"tuned_{args.dataset}.toml")
    conf.write_text(render_conf(args.dataset, chosen, weights, final))
    print(f"wrote {conf}")
    return 0


def render_conf(dataset: str, chosen: dict, weights: dict, final: dict) -> str:
    cfg = load_config(None, [*BASE, *(f"{k}={json.dumps(v)}" for k, v in chosen.items())])
    lines = [
        f"# Candidate config tuned on the VALIDATION split of {dataset} by",
        f"# `benchmarks/tune_candidates.py --dataset {dataset}` (valid NDCG@10 of the fusion "
        f"{final['ndcg@10']:.4f}); never tuned on test.",
        "",
        "[graph]",
        f"window = {cfg.graph.window}",
        f"reverse_weight = {cfg.graph.reverse_weight}",
        "",
        "[ppr]",
        f"alpha = {cfg.ppr.alpha}",
        'seeds = "needed"',
        "",
        "[neighbors]",
        f'user_embedding = "{cfg.neighbors.user_embedding}"',
        "",
        "[candidates]",
        f"sources = {json.dumps(SOURCES)}",
        "per_source = 100",
        "top_n = 200",
        "",
        "[candidates.ppr]",
        f"history = {cfg.candidates.ppr.history}",
        "",
        "[candidates.transition]",
        f"last = {cfg.candidates.transition.last}",
        "",
        "[candidates.weights]",
        *(f"{s} = {w}" for s, w in weights.items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
