"""The learned ranker: features equal a plain-Python model of them; Spark scoring equals
Booster.predict; a planted test item is not found through the labels (leakage); the model
folder round-trips through rank.model; too few labelled users fall back to the fusion."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from pipelines import tableio
from pipelines.config import load_config
from pipelines.ranker.features import DAY, candidate_features, feature_names
from schemas import score_column
from tests.pipeline_fixtures import random_events, write_events
from tests.ranker_fixtures import PLANT, SMALL
from tests.ranker_fixtures import stages_run as _stages

# --- features against a plain-Python model ---------------------------------------------


def reference_text_cos(hist_idx: list[int], item: int, vecs, half_life: float):
    """cosine(recency-weighted mean of the history's vectors, the item's vector), None when
    either side has no vector (a zero row)."""
    has = [any(v != 0 for v in vecs[i]) for i in range(len(vecs))]
    if not has[item]:
        return None
    n, d = len(hist_idx), len(vecs[0])
    mean = [0.0] * d
    for pos, i in enumerate(hist_idx):
        if has[i]:
            w = 0.5 ** ((n - 1 - pos) / half_life)
            mean = [m + w * float(v) for m, v in zip(mean, vecs[i], strict=True)]
    norm_u = sum(m * m for m in mean) ** 0.5
    if norm_u == 0:
        return None
    norm_i = sum(float(v) ** 2 for v in vecs[item]) ** 0.5
    return sum(m * float(v) for m, v in zip(mean, vecs[item], strict=True)) / norm_u / norm_i


def reference_summary_cos(user_vec: list[float] | None, item_vec: list[float]):
    """cosine(summary vector, item vector), None when the user has no summary or either
    vector is all zeros."""
    if user_vec is None:
        return None
    nu = sum(v * v for v in user_vec) ** 0.5
    ni = sum(float(v) ** 2 for v in item_vec) ** 0.5
    if nu == 0 or ni == 0:
        return None
    return sum(a * float(b) for a, b in zip(user_vec, item_vec, strict=True)) / nu / ni


def reference_features(cands, train, items, edges, sources, recent_fraction, vecs=None):
    """{(user, item): {feature: value}} computed row by row from the tables' rows."""
    secs = [r["ts"].timestamp() for r in train]
    lo, hi = min(secs), max(secs)
    recent_from = lo + (1 - recent_fraction) * (hi - lo)
    pop, recent, first = defaultdict(int), defaultdict(int), {}
    hist = defaultdict(list)
    for r, s in zip(train, secs, strict=True):
        pop[r["item_id"]] += 1
        recent[r["item_id"]] += s >= recent_from
        first[r["item_id"]] = min(first.get(r["item_id"], s), s)
        hist[r["user_id"]].append((s, r["item_id"], r["item_idx"]))
    idx = {r["item_id"]: r["item_idx"] for r in items}
    prob = {(e["src"], e["dst"]): e["prob"] for e in edges}
    by_user = defaultdict(list)
    for c in cands:
        by_user[c["user_id"]].append(c)
    out = {}
    for user, rows in by_user.items():
        h = sorted(hist[user], key=lambda t: (t[0], t[1]), reverse=True)
        last = [t[2] for t in h[:2]] + [None, None]
        src_rank = {}
        for s in sources:
            scored = [c for c in rows if c[f"score_{s}"] is not None]
            scored.sort(key=lambda c: (-c[f"score_{s}"], c["item_id"]))
            src_rank[s] = {c["item_id"]: i + 1 for i, c in enumerate(scored)}
        for c in rows:
            it = c["item_id"]
            f = {}
            for s in sources:
                f[f"score_{s}"] = c[f"score_{s}"]
                f[f"rank_{s}"] = src_rank[s].get(it)
            f |= {
                "fused_score": c["score"],
                "fused_rank": c["rank"],
                "n_sources": len(c["sources"]),
                "trans_last1": prob.get((last[0], idx[it])) if last[0] is not None else None,
                "trans_last2": prob.get((last[1], idx[it])) if last[1] is not None else None,
                "item_pop": pop[it],
                "item_pop_recent": recent[it],
                "item_trend": recent[it] / pop[it] if pop[it] else None,
                "item_age": (hi - first[it]) / DAY if it in first else None,
                "user_hist_len": len(h),
                "user_since_last": (hi - h[0][0]) / DAY,
                "user_repeat_rate": 1 - len({t[1] for t in h}) / len(h),
            }
            if vecs is not None:  # history oldest first, ties as the Spark sort breaks them
                order = [t[2] for t in sorted(h, key=lambda t: (t[0], t[1]))]
                f["text_cos"] = reference_text_cos(order, idx[it], vecs, 3.0)
            out[(user, it)] = f
    return out


def test_features_equal_the_python_model(spark, tmp_path):
    run = tmp_path / "r"
    write_events(run, random_events(5, n_users=40, n_items=30))
    _stages(run, ["rank.method=fusion"])
    sources = tableio.candidate_sources(run)
    assert {"transition", "ppr", "item_cf", "user_cf", "popular"} <= set(sources)
    # Item "text" vectors: random, a third of the items without any (zero rows).
    n_items = tableio.read_manifest(run, "items")["rows"]
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(n_items, 6)).astype(np.float32)
    vecs[rng.random(n_items) < 0.33] = 0.0
    # LLM scores for a sample of the pairs (the others: null).
    pairs = tableio.read_polars(run, "candidates").select("user_id", "item_id")
    llm = pairs.sample(fraction=0.3, seed=2).with_columns(
        pl.Series("llm_score", rng.normal(size=int(pairs.height * 0.3)))
    )
    # Summary vectors for half the users (one of them all zeros), in the items' space.
    users = sorted(pairs["user_id"].unique().to_list())[::2]
    summ = rng.normal(size=(len(users), vecs.shape[1])).astype(np.float32)
    summ[0] = 0.0
    summaries = spark.createDataFrame(
        [(u, v.tolist()) for u, v in zip(users, summ, strict=True)],
        "user_id string, embedding array<float>",
    )
    got = candidate_features(
        tableio.read_spark(spark, run, "candidates"), tableio.read_spark(spark, run, "train"),
        tableio.read_spark(spark, run, "items"), tableio.read_spark(spark, run, "graph_edges"),
        sources, 0.3, vecs, 3.0, spark.createDataFrame(llm.to_pandas()), summaries,
    ).collect()  # fmt: skip
    llm_of = {(r["user_id"], r["item_id"]): r["llm_score"] for r in llm.to_dicts()}
    summary_of = dict(zip(users, summ.tolist(), strict=True))
    idx = dict(tableio.read_polars(run, "items").select("item_id", "item_idx").iter_rows())
    ref = reference_features(
        *(tableio.read_polars(run, t).to_dicts() for t in ("candidates", "train", "items")),
        tableio.read_polars(run, "graph_edges").to_dicts(), sources, 0.3, vecs.tolist(),
    )  # fmt: skip
    assert len(got) == len(ref) > 100
    names = feature_names(sources, text=True, llm=True, summary=True)
    assert names[-3:] == ["text_cos", "llm_score", "summary_cos"]
    for (user, item), f in ref.items():
        f["llm_score"] = llm_of.get((user, item))
        f["summary_cos"] = reference_summary_cos(summary_of.get(user), vecs[idx[item]].tolist())
    seen_nulls = set()
    for row in got:
        want = ref[(row["user_id"], row["item_id"])]
        for n in names:
            if want[n] is None:
                assert row[n] is None, (row["user_id"], row["item_id"], n)
                seen_nulls.add(n)
            else:
                tol = 1e-5 if n.endswith("_cos") else 1e-9  # float32 vectors
                assert row[n] == pytest.approx(want[n], rel=tol, abs=tol), n
    # The data exercises the null paths (a source that did not propose, no edge, no text).
    assert {"trans_last1", "text_cos", "llm_score", "summary_cos"} <= seen_nulls
    assert sum(r["summary_cos"] is not None for r in got) > 50
    assert any(n.startswith("score_") for n in seen_nulls)


# --- scoring in Spark equals Booster.predict -------------------------------------------


def test_learned_rankings_are_booster_predict_in_the_python_order(spark, planted_run):
    """rank's one task per partition (features, score, order) gives what Booster.predict gives
    on candidate_features' rows, each user's list sorted by score, ties by candidate rank."""
    import lightgbm as lgb

    from pipelines.ranker.artifact import load_model
    from pipelines.ranker.score import learned_rankings
    from udfs.ranker_score import feature_matrix

    sources = tableio.candidate_sources(planted_run)
    model = load_model(planted_run / "models" / "ranker")
    read = lambda t: tableio.read_spark(spark, planted_run, t)  # noqa: E731
    args = (read("candidates"), read("train"), read("items"), read("graph_edges"), sources)
    feats = candidate_features(*args, 0.1).toArrow()
    want = pl.from_arrow(feats).with_columns(
        pl.Series("score", lgb.Booster(model_str=model.text).predict(
            feature_matrix(feats, model.features)))
    )  # fmt: skip
    want = want.sort(["user_id", "score", "fused_rank"], descending=[False, True, False])
    want = want.with_columns(pl.int_range(1, pl.len() + 1).over("user_id").alias("rank"))
    got = learned_rankings(*args, model.text, model.features, 0.1, partitions=3)
    got = pl.from_arrow(got.toArrow()).sort("user_id", "rank")
    assert got.height == want.height > 1000
    assert got["item_id"].to_list() == want["item_id"].to_list()
    assert got["rank"].to_list() == want["rank"].to_list()
    np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), rtol=0, atol=0)
    assert got["candidate_score"].to_list() == want["fused_score"].to_list()
    for s in sources:
        c = score_column(s)
        assert got[c].to_list() == want[c].to_list()
    # The model's ties exist, so the candidate rank's tie break is exercised.
    assert want.select(pl.struct("user_id", "score").is_duplicated().any()).item()


# --- leakage, round trip, fallback on one planted log ----------------------------------


def _top1_rate(rankings: pl.DataFrame, users: set[str]) -> float:
    top = rankings.filter((pl.col("rank") == 1) & pl.col("user_id").is_in(list(users)))
    return float((top["item_id"] == PLANT).mean())


def test_fit_pass_labels_do_not_leak_the_test_item(spark, planted_run):
    from pipelines.ranker.fit import fit_lambdarank, labelled_pairs, training_sample
    from pipelines.ranker.score import learned_rankings

    run = planted_run
    meta = json.loads((run / "models" / "ranker" / "meta.json").read_text())
    assert meta["report"]["fit_target"] == "valid"
    hold = tableio.read_polars(run, "holdout")
    test_users = set(
        hold.filter((pl.col("split") == "test") & (pl.col("item_id") == PLANT))["user_id"]
    )
    cands = tableio.read_polars(run, "candidates")
    eligible = set(cands.filter(pl.col("item_id") == PLANT)["user_id"]) & test_users
    assert len(eligible) >= 60
    learned = _top1_rate(tableio.read_polars(run, "rankings"), eligible)
    fused = _top1_rate(cands, eligible)

    # Control: the same ranker fitted on the run's own test labels finds the plant, so the
    # log does expose any use of them.
    sources = tableio.candidate_sources(run)
    names = feature_names(sources)
    read = lambda t: tableio.read_spark(spark, run, t)  # noqa: E731
    args = (read("candidates"), read("train"), read("items"), read("graph_edges"), sources)
    feats = candidate_features(*args, 0.1)
    sample, _ = training_sample(labelled_pairs(feats, read("holdout"), "test"), 10_000, 200, 1)
    cfg = load_config(None, SMALL).rank
    leaky = fit_lambdarank(
        sample.select("user_id", "item_id", "label", *names).toArrow(), names, cfg, 1
    )
    ranked = learned_rankings(*args, leaky.booster.model_to_string(), names, 0.1)
    leaked = _top1_rate(pl.from_arrow(ranked.toArrow()), eligible)

    n_cands = (
        cands.filter(pl.col("user_id").is_in(list(eligible)))
        .group_by("user_id")
        .len()["len"]
        .mean()
    )
    assert leaked > 0.5, leaked
    assert learned <= max(fused, 1 / n_cands) + 0.1, (learned, fused, leaked)


def test_features_of_the_chosen_users_alone_give_the_whole_tables_sample(spark, planted_run):
    """fit_ranker picks its users from the candidates' ids first and computes features for
    their candidates only: the training sample equals the one drawn from the features of the
    whole table (every feature depends on its own user's rows and on train)."""
    from pyspark.sql import functions as F

    from pipelines.ranker.fit import (
        labelled_pairs,
        labelled_users,
        sample_negatives,
        training_sample,
    )

    sources = tableio.candidate_sources(planted_run)
    read = lambda t: tableio.read_spark(spark, planted_run, t)  # noqa: E731
    hold = read("holdout")

    def features(cands, partitions=None):
        return candidate_features(
            cands, read("train"), read("items"), read("graph_edges"), sources, 0.1,
            partitions=partitions,
        )  # fmt: skip

    # The whole table's windows in more partitions than the default (rank at scale).
    whole, n_whole = training_sample(
        labelled_pairs(features(read("candidates"), partitions=5), hold, "test"), 25, 7, 3
    )
    pairs = labelled_pairs(read("candidates").select("user_id", "item_id"), hold, "test")
    chosen, n = labelled_users(pairs, 25, 3)
    chosen = spark.createDataFrame(chosen.collect(), "user_id string")
    alone = features(read("candidates").join(F.broadcast(chosen), "user_id"))
    part = sample_negatives(labelled_pairs(alone, hold, "test"), 7, 3)
    cols = ["user_id", "item_id", "label", *feature_names(sources)]
    a, b = ([tuple(r) for r in df.select(cols).orderBy("user_id", "item_id").collect()]
            for df in (whole, part))  # fmt: skip
    assert n == n_whole > 25 and len({r[0] for r in a}) == 25
    assert all(sum(r[2] for r in a if r[0] == u) == 1 for u in {r[0] for r in a})
    assert len(a) > 25 * 3 and a == b


def _copy(run, tmp_path, keep_model: bool = True):
    """The planted run as another run: its committed stages (and fit pass) are skipped."""
    other = tmp_path / "copy"
    shutil.copytree(run, other, symlinks=True)
    if not keep_model:
        shutil.rmtree(other / "models")
    return other


def test_rankings_are_written_by_user_in_rank_order(planted_run):
    """Every user's list lies in one file, in rank order: the order window's partitioning by
    user is the one written (serving reads a user's list from one file)."""
    seen: set[str] = set()
    m = tableio.read_manifest(planted_run, "rankings")
    files = tableio.data_files(planted_run, "rankings", m)
    assert len(files) > 1
    for f in files:
        part = pl.read_parquet(f.path)
        users = set(part["user_id"])
        assert not users & seen, f
        seen |= users
        assert part.equals(part.sort("user_id", "rank")), f
    assert len(seen) == tableio.read_polars(planted_run, "rankings")["user_id"].n_unique()


def test_model_folder_round_trips_through_rank_model(spark, planted_run, tmp_path):
    other = _copy(planted_run, tmp_path, keep_model=False)  # the model only via rank.model
    out = _stages(other, [f"rank.model={planted_run / 'models' / 'ranker'}"])
    assert "fit_ranker" not in out and out["rank"] == "ran" and out["candidates"] == "skipped"
    a = tableio.read_polars(planted_run, "rankings").sort("user_id", "rank")
    b = tableio.read_polars(other, "rankings").sort("user_id", "rank")
    assert a.select("user_id", "item_id", "rank").equals(b.select("user_id", "item_id", "rank"))
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), rtol=0, atol=0)
    # The model was fitted on this very log (its data end after the holdout starts): an
    # evaluation run with it says so.
    extra = tableio.read_manifest(other, "rankings")["extra"]
    assert extra["model_run"] == str(planted_run) and "may be inflated" in extra["warning"]


def test_too_few_labelled_users_fall_back_to_the_fusion(spark, planted_run, tmp_path, capfd):
    run = _copy(planted_run, tmp_path)
    out = _stages(run, ["rank.min_fit_users=100000"])
    err = capfd.readouterr().err
    assert out["fit_ranker"] == "ran" and "[fit/candidates] skipped" in err
    m = tableio.read_manifest(run, "ranker_model")
    assert m["extra"]["fitted"] is False and m["rows"] == 0
    assert "falls back to the fusion order" in err
    _assert_the_fused_order_without_a_model(run)


def test_a_fit_the_guard_rejects_leaves_no_model_and_the_fused_order(
    spark, planted_run, tmp_path, capfd
):
    """The guard's rejection branch in the stage: a gain no fit can reach (min_gain 1.0) is
    rejected after a real fit (tests/unit/test_ranker_guard.py: a fit on noise is rejected at
    the default min_gain); the copied run's model folder goes, rank keeps the fused order."""
    run = _copy(planted_run, tmp_path)
    assert (run / "models" / "ranker" / "meta.json").is_file()
    out = _stages(run, ["rank.min_gain=1.0"])
    err = capfd.readouterr().err
    assert out["fit_ranker"] == "ran" and "[fit/candidates] skipped" in err
    m = tableio.read_manifest(run, "ranker_model")
    assert m["extra"]["fitted"] is False and m["rows"] == 0
    assert "does not beat the fusion clearly enough" in m["extra"]["reason"]
    assert m["extra"]["report"]["best_iteration"] >= 1  # a model was fitted, then rejected
    assert f"[fit_ranker] {m['extra']['reason']}" in err
    _assert_the_fused_order_without_a_model(run)


def _assert_the_fused_order_without_a_model(run):
    assert not (run / "models" / "ranker").exists()
    assert tableio.read_manifest(run, "rankings")["extra"]["order"] != "learned ranker"
    ranks = tableio.read_polars(run, "rankings").sort("user_id", "rank")
    cands = tableio.read_polars(run, "candidates").sort("user_id", "rank")
    assert ranks.select("user_id", "item_id", "rank").equals(
        cands.select("user_id", "item_id", "rank")
    )


def test_llm_features_run_the_llm_stages_in_both_passes(spark, planted_run, tmp_path):
    """rank.llm_feature and rank.summary_feature: summaries, llm_scores and
    summary_embeddings run in the fit pass and in the run (the same user sample), and the
    fitted model takes llm_score and summary_cos as features."""
    import ray

    from tests.llm_fixtures import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    run = _copy(planted_run, tmp_path)
    sets = [
        "llm.enabled=true", "rank.llm_feature=true", f"llm.model={model}", "llm.max_users=12",
        "llm.score_top_m=4", "summaries.max_new_tokens=4", "ray.num_cpus=2",
        "rank.summary_feature=true",
    ]  # fmt: skip
    try:
        out = _stages(run, sets)
    finally:
        ray.shutdown()
    ran = ("item_embeddings", "summaries", "llm_scores", "summary_embeddings", "fit_ranker", "rank")
    assert {out[s] for s in ran} == {"ran"}
    for d in (run, run / "fit"):
        scored = tableio.read_polars(d, "llm_scores").filter(pl.col("llm_score").is_not_null())
        assert scored["user_id"].n_unique() == 12
        # One unit vector per user with a non-empty summary, in the items' 384 dimensions.
        summ = tableio.read_polars(d, "user_summaries").filter(
            pl.col("error").is_null() & (pl.col("summary").str.strip_chars() != "")
        )
        emb = tableio.read_polars(d, "summary_embeddings")
        assert sorted(emb["user_id"]) == sorted(summ["user_id"]) and emb.height > 0
        norms = np.linalg.norm(np.stack(emb["embedding"].to_numpy()), axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
        assert len(emb["embedding"][0]) == 384
    meta = json.loads((run / "models" / "ranker" / "meta.json").read_text())
    assert meta["features"][-2:] == ["llm_score", "summary_cos"]
    assert tableio.read_manifest(run, "rankings")["extra"]["order"] == "learned ranker"
