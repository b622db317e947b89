"""The peer a Spark user would run instead of WalkRank: MLlib ALS (implicit, rank 64, 15
iterations, alpha 80 as tuned on Toys' valid split, MLlib's other defaults) on the same log and
split, timed end to end and scored like WalkRank's `evaluate`.

Same log, same split: `user item item ...` lines (`--format sequences`, Amazon's files) or a
`user,item,ts` CSV with a header; leave-last-out as WalkRank's `split` does it (a user with at
least `split.min_events` events holds out the last for test and the one before it for valid;
ties cannot occur in sequences, where the position is the time). Target test trains on
everything but test; target valid on neither held-out event. Recommendations: the top K items
by u·v among those the user has no train event with (WalkRank's `candidates.exclude_seen`),
scored with one relevant item per user (NDCG@K = 1/log2(rank+1) for a hit, mean over every
held-out user, users ALS has no factors for counted as misses).

The wall time is the whole script as a user would run it: Spark session, read, split, fit,
recommend and score. Scoring is exact top-K over all items in numpy on the collected factors
(19k users × 12k items on Toys: a second), which is faster than `recommendForAllUsers`, so
the figure favours ALS, not WalkRank.

    python benchmarks/peer_als.py --input ../shared/datasets/amazon-toys/Toys_and_Games.txt
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

T0 = time.perf_counter()


def read_events(spark, path: str, fmt: str):
    """(user, item, pos) rows: pos orders a user's events (the token's position, or ts)."""
    from pyspark.sql import functions as F

    if fmt == "sequences":
        lines = spark.read.text(path)
        toks = lines.select(F.split(F.btrim("value"), r"\s+").alias("t")).where(F.size("t") >= 2)
        return toks.select(
            F.col("t")[0].alias("user"),
            F.posexplode(F.slice("t", 2, F.size("t") - 1)).alias("pos", "item"),
        )
    df = spark.read.option("header", True).csv(path)
    return df.select(
        F.col("user_id").alias("user"),
        F.col("item_id").alias("item"),
        F.col("ts").cast("long").alias("pos"),
    )


def split(events, min_events: int, target: str):
    """(train, holdout) with holdout one (user, item) per held-out user of `target`."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("user").orderBy(F.col("pos").desc(), F.col("item").desc())
    n = F.count(F.lit(1)).over(Window.partitionBy("user"))
    ranked = events.withColumn("_pos", F.row_number().over(w)).withColumn("_n", n)
    held = 1 if target == "test" else 2
    eligible = F.col("_n") >= min_events
    holdout = ranked.where(eligible & (F.col("_pos") == held)).select("user", "item")
    train = ranked.where(~eligible | (F.col("_pos") > held)).select("user", "item")
    return train, holdout


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    """Mean NDCG@k of one relevant item per user; ranks are 1-based, 0 = not recommended."""
    hit = (ranks >= 1) & (ranks <= k)
    return float(
        np.where(hit, 1.0 / np.log2(ranks + 1.0, where=hit, out=np.ones(len(ranks))), 0.0).mean()
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--format", choices=["sequences", "csv"], default="sequences")
    ap.add_argument("--target", choices=["test", "valid"], default="test")
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--reg", type=float, default=0.1)  # MLlib's default regParam
    # MLlib's default alpha is 1.0; 80 was best of 1-160 on Toys' valid split (RESULTS.md)
    ap.add_argument("--alpha", type=float, default=80.0)
    ap.add_argument("--min-events", type=int, default=3)  # WalkRank's split.min_events
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shuffle-partitions", type=int, default=8)  # WalkRank's default
    ap.add_argument("--json", default="", help="also write the figures to this file")
    args = ap.parse_args()

    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("peer-als")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("FATAL")
    t_session = time.perf_counter() - T0
    events = read_events(spark, args.input, args.format)
    train, holdout = split(events, args.min_events, args.target)
    train = train.cache()
    users = StringIndexer(inputCol="user", outputCol="u").fit(train)
    items = StringIndexer(inputCol="item", outputCol="i").fit(train)
    ratings = (
        items.transform(users.transform(train))
        .groupBy(F.col("u").cast("int").alias("u"), F.col("i").cast("int").alias("i"))
        .agg(F.count(F.lit(1)).cast("float").alias("r"))
        .cache()
    )
    n_train = ratings.count()
    t_read = time.perf_counter() - T0
    model = ALS(
        rank=args.rank,
        maxIter=args.iterations,
        regParam=args.reg,
        alpha=args.alpha,
        implicitPrefs=True,
        userCol="u",
        itemCol="i",
        ratingCol="r",
        seed=args.seed,
        coldStartStrategy="drop",
    ).fit(ratings)
    uf = model.userFactors.toPandas()
    itf = model.itemFactors.toPandas()
    t_fit = time.perf_counter() - T0

    U = np.zeros((len(users.labelsArray[0]), args.rank), np.float32)
    U[uf["id"].to_numpy()] = np.stack(uf["features"].to_numpy())
    V = np.zeros((len(items.labelsArray[0]), args.rank), np.float32)
    V[itf["id"].to_numpy()] = np.stack(itf["features"].to_numpy())
    seen = ratings.select("u", "i").toPandas()
    held = holdout.toPandas()
    user_pos = {u: j for j, u in enumerate(users.labelsArray[0])}
    item_pos = {i: j for j, i in enumerate(items.labelsArray[0])}
    by_user: dict[int, list[int]] = {}
    for u, i in zip(seen["u"].to_numpy(), seen["i"].to_numpy(), strict=True):
        by_user.setdefault(int(u), []).append(int(i))

    ranks = np.zeros(len(held), np.int64)
    hu = [user_pos.get(u, -1) for u in held["user"]]
    hi = [item_pos.get(i, -1) for i in held["item"]]
    rows = [(n, u, i) for n, (u, i) in enumerate(zip(hu, hi, strict=True)) if u >= 0 and i >= 0]
    for start in range(0, len(rows), 2048):
        batch = rows[start : start + 2048]
        scores = U[[u for _, u, _ in batch]] @ V.T
        for r, (_, u, _) in enumerate(batch):
            scores[r, by_user.get(u, [])] = -np.inf
        top = np.argpartition(-scores, args.k, axis=1)[:, : args.k]
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)
        for r, (n, _, i) in enumerate(batch):
            where = np.flatnonzero(order[r] == i)
            ranks[n] = where[0] + 1 if len(where) else 0
    wall = time.perf_counter() - T0
    out = {
        "input": args.input,
        "target": args.target,
        "rank": args.rank,
        "iterations": args.iterations,
        "train_pairs": n_train,
        "holdout_users": len(held),
        f"ndcg@{args.k}": round(ndcg_at(ranks, args.k), 4),
        f"hr@{args.k}": round(float(((ranks >= 1) & (ranks <= args.k)).mean()), 4),
        "seconds": {
            "session": round(t_session, 1),
            "read_split_index": round(t_read - t_session, 1),
            "fit": round(t_fit - t_read, 1),
            "recommend_score": round(wall - t_fit, 1),
            "wall": round(wall, 1),
        },
    }
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    spark.stop()


if __name__ == "__main__":
    main()
