"""spark.jit: a local driver JVM compiles with C1 only ("quick") when the run's input is small,
and keeps its full JIT for a large or unknown input, or when told to ("full"). The JVM's own
view of the flag is what is checked, in a child process (this one's session is already up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import SparkConfig
from pipelines.spark_session import QUICK_JIT_MAX_BYTES, input_bytes, jit_options

ROOT = Path(__file__).resolve().parents[1]


def test_input_bytes_of_a_file_a_folder_and_nothing(tmp_path):
    (tmp_path / "log" / "day=1").mkdir(parents=True)
    (tmp_path / "log" / "a.csv").write_bytes(b"x" * 10)
    (tmp_path / "log" / "day=1" / "b.csv").write_bytes(b"y" * 32)
    assert input_bytes(str(tmp_path / "log" / "a.csv")) == 10
    assert input_bytes(str(tmp_path / "log")) == 42
    assert input_bytes(str(tmp_path / "absent")) is None
    assert input_bytes("") is None


@pytest.mark.parametrize(
    ("jit", "size", "quick"),
    [
        ("auto", 0, True),
        ("auto", QUICK_JIT_MAX_BYTES, True),
        ("auto", QUICK_JIT_MAX_BYTES + 1, False),
        ("auto", None, False),  # unknown: a resumed run's input moved away, a serve run
        ("quick", None, True),
        ("quick", 10 * QUICK_JIT_MAX_BYTES, True),
        ("full", 0, False),
    ],
)
def test_jit_options(jit, size, quick):
    opts = jit_options(SparkConfig(jit=jit), size)
    assert opts == ("-XX:TieredStopAtLevel=1" if quick else "")


# TieredStopAtLevel as the JVM has it: 1 (C1 only) or 4 (its default, C2 included).
_CHILD = """
import sys
from pipelines.config import load_config
from pipelines.spark_session import get_spark
cfg = load_config(None, ["spark.master='local[1]'"]).spark
spark = get_spark(cfg, sys.argv[1])
jvm = spark.sparkContext._jvm
bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
    jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
print("level", bean.getVMOption("TieredStopAtLevel").getValue())
spark.stop()
"""


@pytest.mark.spark
@pytest.mark.parametrize(("size", "level"), [(1000, "1"), (QUICK_JIT_MAX_BYTES + 1, "4")])
def test_a_local_session_sizes_its_jit_by_the_input(tmp_path, size, level):
    data = tmp_path / "events.csv"
    data.write_bytes(b"u,i,1\n" * (size // 6) + b"x" * (size % 6))
    assert data.stat().st_size == size
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(data)], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"level {level}" in res.stdout.splitlines(), res.stdout
