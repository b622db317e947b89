"""Ablation of the learned ranker on finished test-target runs (each with its fit pass).

    .venv/bin/python benchmarks/ranker_bench.py --run /tmp/toys/runs/t --run /tmp/ml1m/d

For every run: the fused candidate order (the fusion) against rankers fitted exactly as the
fit_ranker stage fits them (fit-pass features and labels, the same parameters and seed) on
growing feature groups, each scored on the run's own candidates and measured on the run's
test holdout (NDCG@10 / HR@10 over every test user; a user whose item is not a candidate
counts 0, as in `walkrank evaluate`). The difference to the fusion gets a paired bootstrap
95% interval over users. Feature importances (gain share) of the full model are printed
beside it. Results go to benchmarks/results/ranker_bench.json (the runs of RESULTS.md: ranker_bench_*.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines import tableio  # noqa: E402
from pipelines.config import load_config  # noqa: E402
from pipelines.ranker.artifact import item_vector_matrix  # noqa: E402
from pipelines.ranker.features import (  # noqa: E402
    ITEM,
    LLM,
    PAIR,
    SUMMARY,
    TEXT,
    USER,
    candidate_features,
)
from pipelines.ranker.fit import fit_lambdarank, labelled_pairs, training_sample  # noqa: E402
from pipelines.spark_session import get_spark  # noqa: E402
from udfs.ranker_score import feature_matrix  # noqa: E402


def groups(sources: list[str], text: bool) -> dict[str, list[str]]:
    src = [c for s in sources for c in (f"score_{s}", f"rank_{s}")]
    base = [*src, "fused_score", "fused_rank", "n_sources"]
    trans = [c for c in PAIR if c.startswith("trans_")]
    out = {
        "ranker: source scores and ranks": base,
        "+ item and user statistics": [*base, *ITEM, *USER],
        "+ transitions from the last items (default)": [*base, *ITEM, *USER, *trans],
    }
    if text:
        out["+ text affinity (rank.text_features)"] = [*base, *ITEM, *USER, *trans, *TEXT]
    return out


def label_positions(scores: np.ndarray, users: np.ndarray, label: np.ndarray) -> dict:
    """{user: 0-based position of the labelled item when each user's rows are ordered by
    descending score} (users whose label is not among the rows are absent)."""
    order = np.lexsort((-scores, users))
    u, lab = users[order], label[order]
    starts = np.r_[0, np.flatnonzero(u[1:] != u[:-1]) + 1]
    pos = np.arange(len(u)) - np.repeat(starts, np.diff(np.r_[starts, len(u)]))
    idx = np.flatnonzero(lab == 1)
    return dict(zip(u[idx], pos[idx], strict=True))


def per_user(positions: dict, keys: list, n_all: int) -> tuple[np.ndarray, np.ndarray]:
    """(NDCG@10, HR@10) per test user in `keys` order, zeros padding to `n_all` users."""
    g, h = np.zeros(n_all), np.zeros(n_all)
    for i, k in enumerate(keys):
        p = positions.get(k)
        if p is not None and p < 10:
            g[i], h[i] = 1.0 / np.log2(p + 2), 1.0
    return g, h


def bootstrap(diff: np.ndarray, seed: int = 0, n: int = 1000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def bench_run(spark, run: Path) -> dict:
    cfg = load_config(run / "config.toml", check_paths=False)
    fit_dir = run / "fit"
    fit_cfg = load_config(fit_dir / "config.toml", check_paths=False)
    sources = tableio.candidate_sources(run)
    vecs = None
    if tableio.is_committed(run, "item_embeddings"):
        n_items = tableio.read_manifest(run, "items")["rows"]
        emb = tableio.read_arrow(run, "item_embeddings", ["item_idx", "embedding"])
        vecs = item_vector_matrix(emb, n_items) if emb.num_rows else None

    # The LLM features where both passes have their tables (rank.llm_feature /
    # rank.summary_feature runs, or the stages added by hand).
    both = lambda t: all(tableio.is_committed(d, t) for d in (run, fit_dir))  # noqa: E731
    llm = both("llm_scores")
    summary = vecs is not None and both("summary_embeddings")

    def feats(d: Path):
        read = lambda t: tableio.read_spark(spark, d, t)  # noqa: E731
        return candidate_features(
            read("candidates"), read("train"), read("items"), read("graph_edges"), sources,
            cfg.rank.recent_fraction, vecs, cfg.rank.text_half_life,
            read("llm_scores") if llm else None,
            read("summary_embeddings") if summary else None,
        ), read("holdout")  # fmt: skip

    f_fit, h_fit = feats(fit_dir)
    sample, n_labelled = training_sample(
        labelled_pairs(f_fit, h_fit, fit_cfg.eval.target),
        cfg.rank.max_fit_users, cfg.rank.max_negatives, cfg.run.seed,
    )  # fmt: skip
    train_tab = sample.toArrow()
    f_main, h_main = feats(run)
    test_users = h_main.filter("split = 'test'").select("user_id").distinct().count()
    main = labelled_pairs(f_main, h_main, "test").toArrow()
    users = np.asarray(main.column("user_id").to_pylist(), dtype=object)
    label = main.column("label").to_numpy()
    out = {"run": str(run), "test_users": test_users, "labelled_fit_users": n_labelled, "rows": []}

    fused = -main.column("fused_rank").to_numpy()
    base = label_positions(fused, users, label)
    keys = sorted(base)  # users whose label is a candidate: the same for every model
    base_g, base_h = per_user(base, keys, test_users)
    out["rows"].append({"model": "fusion (fused candidate order)", "ndcg@10": base_g.mean(),
                        "hr@10": base_h.mean()})  # fmt: skip
    for name, names in groups(sources, vecs is not None).items():
        t0 = time.perf_counter()
        res = fit_lambdarank(train_tab.select(["user_id", "item_id", "label", *names]), names, cfg.rank,
                             cfg.run.seed)  # fmt: skip
        pred = res.booster.predict(feature_matrix(main, names))
        g, h = per_user(label_positions(pred, users, label), keys, test_users)
        lo, hi = bootstrap(g - base_g)
        gain = {k: v["gain"] for k, v in res.report["importance"].items()}
        total = sum(gain.values()) or 1.0
        top = sorted(gain.items(), key=lambda kv: -kv[1])[:6]
        out["rows"].append({
            "model": name, "ndcg@10": g.mean(), "hr@10": h.mean(),
            "delta_ndcg_ci95": [lo, hi], "rounds": res.report["best_iteration"],
            "fit_seconds": round(time.perf_counter() - t0, 1),
            "top_gain_share": {k: round(v / total, 3) for k, v in top},
        })  # fmt: skip
    if llm or summary:
        out["llm"] = llm_rows(run, train_tab, main, users, label, sources, cfg, llm, summary)
    return out


def llm_rows(run, train_tab, main, users, label, sources, cfg, llm, summary) -> dict:
    """The LLM features on exactly the test users the LLM stages scored: the default ranker
    with and without llm_score / summary_cos, fitted on the same fit-pass sample (the
    features are null for the fit users outside the LLM sample), a paired bootstrap
    interval of each difference to the ranker without them."""
    scored = tableio.read_polars(run, "llm_scores")
    scored = set(scored.filter(scored["llm_score"].is_not_null())["user_id"].to_list())
    hold = tableio.read_polars(run, "holdout")
    test = set(hold.filter(hold["split"] == "test")["user_id"].to_list())
    keys_all = sorted(scored & test)
    base = [c for s in sources for c in (f"score_{s}", f"rank_{s}")]
    default = [*base, "fused_score", "fused_rank", "n_sources", *ITEM, *USER,
               *(c for c in PAIR if c.startswith("trans_"))]  # fmt: skip
    variants = {"ranker, default features (no LLM)": default}
    if llm:
        variants["+ LLM yes/no score (rank.llm_feature)"] = [*default, *LLM]
    if summary:
        variants["+ summary affinity (rank.summary_feature)"] = [*default, *SUMMARY]
    if llm and summary:
        variants["+ both"] = [*default, *LLM, *SUMMARY]
    in_s = np.isin(users, keys_all)
    sub_users, sub_label = users[in_s], label[in_s]
    fused = -main.column("fused_rank").to_numpy()[in_s]
    n = len(keys_all)
    res = {"scored_test_users": n, "rows": []}

    def measure(pred) -> tuple[np.ndarray, np.ndarray]:
        pos = label_positions(pred, sub_users, sub_label)
        return per_user(pos, keys_all, n)

    ref_g, ref_h = measure(fused)
    res["rows"].append({"model": "fusion", "ndcg@10": ref_g.mean(), "hr@10": ref_h.mean()})
    first = None
    for name, names in variants.items():
        fit = fit_lambdarank(train_tab.select(["user_id", "item_id", "label", *names]), names,
                             cfg.rank, cfg.run.seed)  # fmt: skip
        pred = fit.booster.predict(feature_matrix(main, names))[in_s]
        g, h = measure(pred)
        row = {"model": name, "ndcg@10": g.mean(), "hr@10": h.mean()}
        if first is None:
            first = g
        else:
            row["delta_ndcg_ci95"] = list(bootstrap(g - first))
            gain = {k: v["gain"] for k, v in fit.report["importance"].items()}
            total = sum(gain.values()) or 1.0
            row["gain_share"] = {
                k: round(gain[k] / total, 3) for k in (*LLM, *SUMMARY) if k in gain
            }
        res["rows"].append(row)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, help="a finished test-target run")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ranker_bench.json"))
    args = p.parse_args()
    spark = get_spark(load_config(None, ["spark.driver_memory=8g"]).spark)
    results = [bench_run(spark, Path(r)) for r in args.run]
    Path(args.out).write_text(json.dumps(results, indent=2, default=float))
    for r in results:
        print(f"\n{r['run']}: {r['test_users']:,} test users, {r['labelled_fit_users']:,} "
              "labelled fit-pass users")  # fmt: skip
        for row in r["rows"]:
            ci = row.get("delta_ndcg_ci95")
            extra = (
                f"  Δ 95% [{ci[0]:+.4f}, {ci[1]:+.4f}]  top: {row['top_gain_share']}" if ci else ""
            )
            print(
                f"  {row['model']:<48} NDCG@10 {row['ndcg@10']:.4f}  HR@10 {row['hr@10']:.4f}{extra}"
            )
        if "llm" in r:
            print(f"  on the {r['llm']['scored_test_users']} LLM-scored test users:")
            for row in r["llm"]["rows"]:
                ci = row.get("delta_ndcg_ci95")
                extra = (
                    f"  Δ vs no LLM 95% [{ci[0]:+.4f}, {ci[1]:+.4f}]  gain share "
                    f"{row['gain_share']}" if ci else ""
                )  # fmt: skip
                print(
                    f"    {row['model']:<46} NDCG@10 {row['ndcg@10']:.4f}  "
                    f"HR@10 {row['hr@10']:.4f}{extra}"
                )


if __name__ == "__main__":
    main()
