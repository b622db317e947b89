"""split: events -> train, holdout (leave-last-out per user, or global time cut-offs).

`holdout` keeps both held-out splits; `train` is what the models are fitted on for
`eval.target`: everything but `test` when predicting test, everything before `valid`
(i.e. neither held-out split) when predicting valid, and every event for `serve` (nothing
is held out: the rankings are the recommendations for each user's next event).
"""

from __future__ import annotations

from pipelines.stage import Stage, StageContext
from schemas import contract


def split_events(events, cfg_split, target: str):
    """Pure transform: events DataFrame -> (train, holdout) DataFrames. Deterministic."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if cfg_split.method == "leave_last_out":
        # Ties in ts are broken by item_id, then value, so the split never depends on partitioning.
        w = Window.partitionBy("user_id").orderBy(
            F.col("ts").desc(), F.col("item_id").desc(), F.col("value").desc_nulls_last()
        )
        n = F.count(F.lit(1)).over(Window.partitionBy("user_id"))
        labelled = events.withColumn("_pos", F.row_number().over(w)).withColumn("_n", n)
        eligible = F.col("_n") >= cfg_split.min_events
        labelled = labelled.withColumn(
            "split",
            F.when(eligible & (F.col("_pos") == 1), "test")
            .when(eligible & (F.col("_pos") == 2), "valid")
            .otherwise("train"),
        ).drop("_pos", "_n")
    else:
        valid_cut, test_cut = _cutoffs(events, cfg_split)
        labelled = events.withColumn(
            "split",
            F.when(F.col("ts") >= F.lit(test_cut), "test")
            .when(F.col("ts") >= F.lit(valid_cut), "valid")
            .otherwise("train"),
        )
    labelled = labelled.persist()
    dropped = ["test"] if target == "test" else ["test", "valid"]
    train = labelled.filter(~F.col("split").isin(dropped)).drop("split")
    holdout = labelled.filter(F.col("split") != "train").select("user_id", "item_id", "ts", "split")
    return train, holdout


def _cutoffs(events, cfg_split):
    import datetime as dt

    from pyspark.sql import functions as F

    def parse(s: str) -> dt.datetime:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))

    if cfg_split.valid_cutoff and cfg_split.test_cutoff:
        v, t = parse(cfg_split.valid_cutoff), parse(cfg_split.test_cutoff)
    else:
        secs = events.select(F.col("ts").cast("double").alias("s"))
        qs = [1 - cfg_split.test_fraction - cfg_split.valid_fraction, 1 - cfg_split.test_fraction]
        lo, hi = secs.approxQuantile("s", qs, 1e-4)
        v = dt.datetime.fromtimestamp(lo, dt.UTC)
        t = dt.datetime.fromtimestamp(hi, dt.UTC)
    if v > t:
        from pipelines.errors import ConfigError

        raise ConfigError(
            f"split.valid_cutoff {v} is after split.test_cutoff {t}",
            hint="set split.valid_cutoff earlier than split.test_cutoff",
        )
    return v, t


def run(ctx: StageContext) -> None:
    events = ctx.read_spark("events")
    target = ctx.config.eval.target
    if target == "serve":
        train = events
        holdout = ctx.spark.createDataFrame([], contract("holdout").spark_type())
    else:
        train, holdout = split_events(events, ctx.config.split, target)
    ctx.write("holdout", holdout, extra={"target": ctx.config.eval.target})
    ctx.write("train", train, extra={"target": ctx.config.eval.target})


STAGE = Stage(
    name="split",
    fn=run,
    inputs=("events",),
    outputs=("train", "holdout"),
    config_keys=("split", "eval.target"),
    description="hold out each user's last events (or a time range) for valid/test",
)
