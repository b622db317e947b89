"""The one Spark session factory: local[*] by default, the submitted master under spark-submit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipelines.config import SparkConfig

# Settings every WalkRank session needs, whatever the master.
_FIXED = {
    "spark.sql.session.timeZone": "UTC",
    # INT96 is Spark's legacy default; micros with UTC adjustment read back as timestamp[us, UTC].
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
    "spark.python.worker.reuse": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # WalkRank reports task progress itself (pipelines/progress.py), one line per interval in
    # logs; Spark's bar would write carriage-return redraws into Airflow and CI logs.
    "spark.ui.showConsoleProgress": "false",
    # One run holds its SparkContext for hours: the shuffle files of finished stages are
    # deleted only once a driver GC finds their DataFrames gone (Spark's default: every 30
    # min), and a large run's shuffle files fill the local disk in between (the figure:
    # benchmarks/RESULTS.md, "Figures moved out of the code").
    "spark.cleaner.periodicGC.interval": "5min",
}


def jars_dir() -> Path:
    """Where `make jars` puts the JVM jars (Hadoop's S3A connector and the AWS SDK modules it
    calls): beside the Python environment, so an installed WalkRank finds them too."""
    return Path(os.environ.get("WALKRANK_JARS") or Path(sys.prefix) / "share" / "walkrank" / "jars")


# No warnings when the class archive does not match (another JDK, a moved venv): the JVM loads
# the classes from the jars then, which is all the warning would say.
CLASS_ARCHIVE_QUIET = "-Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off"


def class_archive() -> Path | None:
    """The class-data-sharing archive a local session maps (pipelines/class_archive_recording.py
    says what it is): WALKRANK_CLASS_ARCHIVE, else beside the jars of `make jars`; None for
    WALKRANK_CLASS_ARCHIVE=none."""
    given = os.environ.get("WALKRANK_CLASS_ARCHIVE", "")
    if given == "none":
        return None
    return Path(given) if given else jars_dir().parent / "spark-classes.jsa"


def class_archive_options() -> str:
    """Driver JVM options that map the class archive, or "" when there is none. The JVM uses
    it only where it matches (the same JDK build and pyspark's jars at the same place), and
    otherwise starts without it, silently."""
    path = class_archive()
    if path is None or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={path} {CLASS_ARCHIVE_QUIET}"


# Above this much input, "auto" keeps the JVM's full JIT: C1 alone runs hot loops slower,
# and a large run's loops stay hot for minutes. The measurements: benchmarks/RESULTS.md,
# "A small run's JIT".
QUICK_JIT_MAX_BYTES = 512 << 10
QUICK_JIT = "-XX:TieredStopAtLevel=1"


def input_bytes(path: str) -> int | None:
    """The bytes of a run's input (a file, or a folder's files); None when it has none."""
    if not path:
        return None
    from pipelines.storage import Location

    loc = Location(path)
    if not loc.exists():
        return None
    if loc.is_file():
        return loc.size()
    return sum(e.size or 0 for e in loc.list(recursive=True) if not e.is_dir)


def jit_options(cfg: SparkConfig, input_size: int | None) -> str:
    """The driver JVM's JIT option for spark.jit (a local session only: "" for "full", and for
    "auto" with an unknown or large input)."""
    quick = cfg.jit == "quick" or (
        cfg.jit == "auto" and input_size is not None and input_size <= QUICK_JIT_MAX_BYTES
    )
    return QUICK_JIT if quick else ""


def project_jars() -> list[str]:
    d = jars_dir()
    return sorted(str(p) for p in d.glob("*.jar")) if d.is_dir() else []


def s3a_settings(env: dict[str, str] | None = None) -> dict[str, str]:
    """Hadoop S3A settings from the AWS environment, the same one pyarrow, boto3 and Polars
    read: an S3-compatible endpoint (then path-style addressing) and the region. Credentials
    are not settings: S3A's default provider chain reads AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY from the environment itself (AWS_PROFILE: the SDK's default chain)."""
    env = os.environ if env is None else env
    out = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        out["fs.s3a.endpoint"] = endpoint
        out["fs.s3a.path.style.access"] = "true"
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        out["fs.s3a.endpoint.region"] = region
    if env.get("AWS_PROFILE"):
        out["fs.s3a.aws.credentials.provider"] = (
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
        )
    return out


def under_spark_submit() -> bool:
    """True when spark-submit started this Python process (it passes the gateway port)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(cfg: SparkConfig | None = None, input_path: str = ""):  # -> pyspark.sql.SparkSession
    """Create (or return) the session. Under spark-submit the master and memory come from it.
    input_path: the run's input, whose size spark.jit = "auto" picks a new local JVM's JIT by."""
    from pyspark.sql import SparkSession

    cfg = cfg or SparkConfig()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if not under_spark_submit():
        # Local executors must run this interpreter: the system Python lacks numpy/pyarrow.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(cfg.app_name)
    if not under_spark_submit():
        if cfg.master:
            builder = builder.master(cfg.master)
        builder = builder.config("spark.driver.memory", cfg.driver_memory)
        builder = builder.config("spark.driver.host", os.environ["SPARK_LOCAL_IP"])
        builder = builder.config("spark.ui.enabled", str(cfg.ui_enabled).lower())
        builder = builder.config("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
        jars = project_jars()
        if jars and "spark.jars" not in cfg.conf:
            builder = builder.config("spark.jars", ",".join(jars))
    settings = {**_FIXED, **cfg.conf}
    if not under_spark_submit():
        # Before the profile's own options: where both set one, the JVM takes the last.
        extra = settings.get("spark.driver.extraJavaOptions", "")
        # The input is sized only for a JVM still to start (an S3 folder costs a listing):
        # a session already up keeps the options it started with.
        new_jvm = cfg.jit == "auto" and SparkSession.getActiveSession() is None
        size = input_bytes(input_path) if new_jvm else None
        opts = " ".join(o for o in (class_archive_options(), jit_options(cfg, size), extra) if o)
        if opts:
            settings["spark.driver.extraJavaOptions"] = opts
    for k, v in settings.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    # On the live Hadoop configuration (the driver's, which tasks get with every file scan and
    # write), unless the profile or spark-submit set the key: an s3a:// filesystem is made on
    # its first use, after this.
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    conf = spark.sparkContext.getConf()
    for k, v in s3a_settings().items():
        if not conf.contains(f"spark.hadoop.{k}") and not (
            k.endswith("endpoint") and hadoop.get(k)
        ):
            hadoop.set(k, v)
    if under_spark_submit() and not spark.sparkContext.getConf().contains(
        "spark.sql.shuffle.partitions"
    ):
        # The profile's partition count, unless spark-submit's --conf named one: the same
        # config gives the same partitioning (and files) locally and on a cluster.
        spark.conf.set("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
    spark.sparkContext.setLogLevel(cfg.log_level)
    return spark
