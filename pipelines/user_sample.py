"""The users a run computes per-user tables for when `run.user_sample` > 0 (the fit pass).

The ranker is fitted on at most `rank.max_fit_users` users (lowest seeded hash among those whose
label is among their candidates: pipelines/ranker/fit.py), so the fit pass needs candidates for
a sample of users, not for every user. The sample is drawn in the same hash order among the users
with a held-out event of the target (the only ones the ranker can learn from). A sample that
holds every user of the run is not drawn at all, so such a log gets exactly the unsampled tables;
otherwise the sampled users' rows are the unsampled run's rows of those users, up to the float
rounding of batched kernels (the user kNN's inner products depend on the batch a query is in).
"""

from __future__ import annotations


def sample_inputs(cfg) -> tuple[str, ...]:
    """The table a stage computing per-user rows reads to sample (Stage.config_inputs): the
    holdout when run.user_sample > 0; with cfg None, every table it may read."""
    return ("holdout",) if cfg is None or cfg.run.user_sample else ()


def sampled_users(holdout, target: str, n: int, seed: int):
    """DataFrame[user_id]: at most `n` users with a held-out event of split `target`, those with
    the lowest xxhash64(user_id, seed) (ties by user_id). O(users) hash and a top-n sort."""
    from pyspark.sql import functions as F

    users = (
        holdout.filter(F.col("split") == target)
        .select("user_id")
        .distinct()
        .withColumn("_uh", F.xxhash64("user_id", F.lit(seed)))
    )
    return users.orderBy("_uh", "user_id").limit(n).select("user_id")


def sample_ids(ctx):
    """DataFrame[user_idx, user_id] of the run's user sample (the stage's context: its config
    and tables), collected and broadcast (at most run.user_sample rows); None when the run
    computes every user: run.user_sample = 0, or a sample that holds every user of the run
    (then the tables are exactly the unsampled run's, float rounding of batched kernels
    included)."""
    from pyspark.sql import functions as F

    n = ctx.config.run.user_sample
    if not n:
        return None
    chosen = sampled_users(
        ctx.read_spark("holdout"), ctx.config.eval.target, n, ctx.config.run.seed
    )
    chosen = ctx.spark.createDataFrame(chosen.collect(), "user_id string")
    ids = ctx.read_spark("events").select("user_idx", "user_id").distinct()
    if chosen.count() == ids.count():
        ctx.log(f"the user sample (run.user_sample = {n:,}) holds every user: none drawn")
        return None
    return ids.join(F.broadcast(chosen), "user_id").select("user_idx", "user_id")
