"""Fitting the ranker: labels from the fit pass's held-out event, a bounded user sample on
the driver, LightGBM lambdarank with early stopping on held-out fit users.

Only users whose label is among their candidates are fitted on: the others give lambdarank
no gradient and only add noise. Sampling is by a seeded hash of the user id (and of the
pair for negatives), so the same inputs and seed give the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def labelled_pairs(features, holdout, split: str):
    """features + holdout rows of `split` -> features with `label` (1: the held-out item)."""
    from pyspark.sql import functions as F

    pos = (
        holdout.filter(F.col("split") == split)
        .select("user_id", "item_id")
        .distinct()
        .withColumn("label", F.lit(1))
    )
    return features.join(pos, ["user_id", "item_id"], "left").withColumn(
        "label", F.coalesce("label", F.lit(0)).cast("int")
    )


def labelled_users(labelled, max_users: int, seed: int):
    """Users with a labelled pair (label 1), at most `max_users` of them (lowest seeded hash)
    -> (DataFrame[user_id], how many users have a labelled pair)."""
    from pyspark.sql import functions as F

    users = (
        labelled.filter(F.col("label") == 1)
        .select("user_id")
        .distinct()
        .withColumn("_uh", F.xxhash64("user_id", F.lit(seed)))
    )
    n_labelled = users.count()
    return users.orderBy("_uh", "user_id").limit(max_users).select("user_id"), n_labelled


def sample_negatives(labelled, max_negatives: int, seed: int):
    """Each user's label and at most `max_negatives` negatives (lowest seeded hash)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("user_id").orderBy(
        F.col("label").desc(), F.xxhash64("user_id", "item_id", F.lit(seed)), "item_id"
    )
    return (
        labelled.withColumn("_pos", F.row_number().over(w))
        .filter(F.col("_pos") <= max_negatives + 1)
        .drop("_pos")
    )


def training_sample(labelled, max_users: int, max_negatives: int, seed: int):
    """Users with a labelled candidate, at most `max_users` of them (lowest seeded hash), each
    with its label and at most `max_negatives` negatives -> (Spark DataFrame, labelled users)."""
    from pyspark.sql import functions as F

    chosen, n_labelled = labelled_users(labelled, max_users, seed)
    sample = sample_negatives(labelled.join(F.broadcast(chosen), "user_id"), max_negatives, seed)
    return sample, n_labelled


@dataclass
class FitResult:
    booster: Any  # lightgbm.Booster
    report: dict[str, Any]  # users, rows, best iteration, held-out NDCG, importances


def lgb_params(cfg, seed: int, threads: int = 0) -> dict[str, Any]:
    """LightGBM parameters from the rank config: small trees (what held up on the probes).
    `deterministic` with column-wise histograms makes the model independent of the thread
    count (tests/unit/test_ranker_guard.py fits with 1 and 2 threads), so `threads` = 0
    (OpenMP's default: every core) costs no reproducibility."""
    return {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [cfg.fit_k],
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "learning_rate": cfg.learning_rate,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": threads,
        "verbosity": -1,
    }


def fit_lambdarank(table, names: Sequence[str], cfg, seed: int, threads: int = 0) -> FitResult:
    """table: pyarrow Table [user_id, item_id, label, *names] -> a fitted booster; a seeded
    `cfg.valid_fraction` of the users is held out for early stopping and the gain over the
    fused order (`rejection`). The iteration early stopping picks is the best on those same
    users, so the gain is biased upward (issue 34's note: about a standard error where the
    fused order is uninformative)."""
    import lightgbm as lgb

    # Rows in a label-blind order: LightGBM breaks score ties by row order, both in the
    # lambdarank gradients and in the NDCG it stops on, so a label-first order would tell
    # the model (and the metric) which row is the label while scores are still tied.
    table = table.sort_by([("user_id", "ascending"), ("item_id", "ascending")])
    users = np.asarray(table.column("user_id").to_pylist(), dtype=object)
    x = np.column_stack(
        [table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names]
    )
    y = table.column("label").to_numpy().astype(np.int32)
    uniq, starts = np.unique(users, return_index=True)
    order = np.argsort(starts)
    uniq, starts = uniq[order], starts[order]
    sizes = np.diff(np.append(starts, len(users)))
    rng = np.random.default_rng(seed)
    held = rng.random(len(uniq)) < cfg.valid_fraction
    if held.all() or not held.any():
        held[:] = False
        held[: max(1, len(uniq) // 10)] = True
    row_held = np.repeat(held, sizes)
    params = lgb_params(cfg, seed, threads)
    fit_set = lgb.Dataset(
        x[~row_held], y[~row_held], group=sizes[~held], feature_name=list(names), params=params
    )
    val_set = lgb.Dataset(x[row_held], y[row_held], group=sizes[held], reference=fit_set)
    evals: dict[str, Any] = {}
    booster = lgb.train(
        params,
        fit_set,
        num_boost_round=cfg.rounds,
        valid_sets=[val_set],
        valid_names=["held_out"],
        callbacks=[
            lgb.early_stopping(cfg.early_stopping, verbose=False),
            lgb.record_evaluation(evals),
        ],
    )
    curve = evals["held_out"][f"ndcg@{cfg.fit_k}"]
    gain = booster.feature_importance("gain", iteration=booster.best_iteration)
    split = booster.feature_importance("split", iteration=booster.best_iteration)
    # The fused order on the same held-out users: the bar the ranker has to clear.
    if "fused_rank" in names:
        xh, yh, gh = x[row_held], y[row_held], sizes[held]
        fused = -xh[:, list(names).index("fused_rank")]
        learned = booster.predict(xh, num_iteration=booster.best_iteration)
        fusion_users = user_ndcg(fused, fused, yh, gh, cfg.fit_k)
        diff = user_ndcg(learned, fused, yh, gh, cfg.fit_k) - fusion_users
        fusion_ndcg = round(float(fusion_users.mean()), 6)
        ranker_ndcg = round(float(fusion_users.mean() + diff.mean()), 6)
        gain_se = round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 6) if len(diff) > 1 else 0.0
    else:
        fusion_ndcg = ranker_ndcg = gain_se = None
    report = {
        "fit_users": int((~held).sum()),
        "held_out_users": int(held.sum()),
        f"held_out_fusion_ndcg@{cfg.fit_k}": fusion_ndcg,
        f"held_out_ranker_ndcg@{cfg.fit_k}": ranker_ndcg,
        "held_out_gain_se": gain_se,  # standard error of the per-user NDCG gain
        "rows": int(len(y)),
        "best_iteration": int(booster.best_iteration),
        f"held_out_ndcg@{cfg.fit_k}": round(float(curve[booster.best_iteration - 1]), 6),
        "importance": {
            n: {"gain": round(float(g), 3), "split": int(s)}
            for n, g, s in zip(names, gain, split, strict=True)
        },
    }
    return FitResult(booster, report)


def rejection(report: dict[str, Any], cfg) -> str | None:
    """Why a fitted ranker is not used (None: it is): its per-user NDCG gain over the fused
    order on the held-out fit users must exceed `min_gain` + `min_gain_z` standard errors.
    A report without the fused order to compare with (no `fused_rank` feature) is kept."""
    k = cfg.fit_k
    learned, fused = report[f"held_out_ranker_ndcg@{k}"], report[f"held_out_fusion_ndcg@{k}"]
    if learned is None or fused is None:
        return None
    bar = cfg.min_gain + cfg.min_gain_z * report["held_out_gain_se"]
    if learned - fused > bar:
        return None
    return (
        f"the fitted ranker does not beat the fusion clearly enough on the held-out "
        f"fit-pass users (NDCG@{k} {learned} vs {fused}, {report['held_out_users']} users; "
        f"gain must exceed {bar:.4f} = rank.min_gain + rank.min_gain_z x its standard "
        "error): rankings keep the fusion order"
    )


def user_ndcg(
    scores: np.ndarray, tiebreak: np.ndarray, labels: np.ndarray, sizes: np.ndarray, k: int
) -> np.ndarray:
    """NDCG@k of each of the consecutive groups (one relevant row each at most), rows ordered
    by descending score, ties by descending `tiebreak` (the fused order, as scoring breaks
    them). Cost: O(rows log group size)."""
    out = np.zeros(len(sizes))
    start = 0
    for g, n in enumerate(sizes):
        sl = slice(start, start + int(n))
        order = np.lexsort((-tiebreak[sl], -scores[sl]))
        hits = np.flatnonzero(labels[sl][order] > 0)
        if hits.size and hits[0] < k:
            out[g] = 1.0 / np.log2(hits[0] + 2)
        start += int(n)
    return out
