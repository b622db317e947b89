import polars as pl
import pytest

from pipelines import tableio
from pipelines.config import Config
from pipelines.errors import RunLockedError, StageOrderError
from pipelines.plan import order_stages
from pipelines.run_dir import run_lock
from pipelines.runner import run_stages
from pipelines.stage import Stage
from pipelines.stage_registry import STAGES, select_stages


def test_registry_order_is_topological():
    names = [s.name for s in order_stages(list(reversed(list(STAGES.values()))))]
    for s in STAGES.values():
        for i in s.inputs:
            producer = next((p.name for p in STAGES.values() if i in p.outputs), None)
            if producer and producer != s.name:
                assert names.index(producer) < names.index(s.name), (producer, s.name)


def test_missing_input_names_the_table(tmp_path):
    with pytest.raises(StageOrderError, match="events"):
        run_stages(tmp_path, Config(), [STAGES["split"]])


def test_unknown_stage_lists_valid_ones():
    with pytest.raises(Exception, match="ingest"):
        select_stages(["nope"])


def test_second_writer_is_refused(tmp_path):
    import os

    with run_lock(tmp_path):
        with pytest.raises(RunLockedError, match="another process"), run_lock(tmp_path):
            pass
        # The refused writer left the holder's pid in the lock file.
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


def test_no_lock_on_a_store_without_one_unless_the_orchestrator_says_so():
    from pipelines.errors import StorageError

    with pytest.raises(StorageError, match="run.lock=orchestrator"), run_lock("gs://b/runs/r"):
        pass
    with run_lock("gs://b/runs/r", mode="orchestrator") as held:
        assert held is None


def _metrics_stage(calls):
    def fn(ctx):
        calls.append(1)
        ctx.write(
            "metrics",
            pl.DataFrame(
                {
                    "table": ["rankings"],
                    "metric": ["hr"],
                    "k": [10],
                    "segment": ["all"],
                    "value": [0.5],
                    "n_users": [3],
                },
                schema_overrides={"k": pl.Int32},
            ),
        )

    return Stage(name="m", fn=fn, outputs=("metrics",), config_keys=("eval",), engine="local")


def test_skip_when_committed_and_rerun_when_config_changes(tmp_path):
    calls: list[int] = []
    stage = _metrics_stage(calls)
    assert run_stages(tmp_path, Config(), [stage]) == {"m": "ran"}
    assert run_stages(tmp_path, Config(), [stage]) == {"m": "skipped"}
    cfg = Config()
    cfg.eval.ks = [5]
    assert run_stages(tmp_path, cfg, [stage]) == {"m": "ran"}
    assert run_stages(tmp_path, cfg, [stage], force=True) == {"m": "ran"}
    assert len(calls) == 3
    m = tableio.read_manifest(tmp_path, "metrics")
    assert m["extra"]["config"]["eval"]["ks"] == [5]


def test_failed_stage_leaves_no_table(tmp_path):
    def fn(ctx):
        raise RuntimeError("boom")

    stage = Stage(name="bad", fn=fn, outputs=("metrics",), engine="local")
    with pytest.raises(RuntimeError, match="boom"):
        run_stages(tmp_path, Config(), [stage])
    assert not tableio.is_committed(tmp_path, "metrics")


def test_a_stage_leaves_nothing_in_sparks_cache(spark, tmp_path):
    """A DataFrame a stage persisted and never unpersisted is released once the stage
    returns, so it cannot hold heap through the later stages of a run."""
    cache = spark._jsparkSession.sharedState().cacheManager()
    inner = _metrics_stage([]).fn

    def fn(ctx):
        cached = spark.range(1000).persist()
        assert cached.count() == 1000 and not cache.isEmpty()
        inner(ctx)

    stage = Stage(name="p", fn=fn, outputs=("metrics",), engine="local")
    assert run_stages(tmp_path, Config(), [stage]) == {"p": "ran"}
    assert cache.isEmpty()


def test_a_stage_leaves_no_persisted_rdd(spark, tmp_path):
    """ALS (the neighbors stage's user vectors) keeps its factors as persisted RDDs while the
    JVM holds the model, outside the catalog's cache: the runner unpersists them too."""
    from pyspark.ml.recommendation import ALS

    persisted = spark.sparkContext._jsc.getPersistentRDDs
    inner = _metrics_stage([]).fn
    kept = []

    def fn(ctx):
        ratings = spark.createDataFrame(
            [(u, (u * 7 + j) % 40, 1.0) for u in range(60) for j in range(5)],
            "u int, i int, r float",
        )
        model = ALS(rank=4, maxIter=1, implicitPrefs=True, userCol="u", itemCol="i",
                    ratingCol="r", seed=1).fit(ratings)  # fmt: skip
        assert model.userFactors.count() == 60 and len(persisted()) >= 2
        kept.append(model)  # held past the stage, as a plan or a py4j handle may hold it
        inner(ctx)

    stage = Stage(name="a", fn=fn, outputs=("metrics",), engine="local")
    assert run_stages(tmp_path, Config(), [stage]) == {"a": "ran"}
    assert len(persisted()) == 0
