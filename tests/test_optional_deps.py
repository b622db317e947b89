"""The `[llm]` extra is optional: a run without the LLM stages imports neither Ray, torch nor
transformers. The run below is a real one (Spark, every table committed) in a Python where
importing any of them fails, as it would in an install of the core package alone."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import tableio

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
LLM_ONLY = ("ray", "torch", "transformers", "accelerate", "gguf")

# sys.modules[name] = None makes `import name` raise ImportError, as if it were not installed.
BLOCKED_RUN = f"""
import sys
for name in {LLM_ONLY!r}:
    sys.modules[name] = None
from pipelines.cli import main
code = main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {LLM_ONLY!r} and sys.modules[m])
assert not leaked, leaked
sys.exit(code)
"""


def test_a_run_without_llm_stages_needs_no_llm_packages(tmp_path):
    rng = random.Random(5)
    data = tmp_path / "seq.txt"
    data.write_text(
        "".join(
            " ".join([f"u{u}", *(str(rng.randrange(30)) for _ in range(rng.randint(3, 8)))]) + "\n"
            for u in range(40)
        )
    )
    res = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, "run", "--input", str(data), "--format", "sequences",
         "--out", str(tmp_path / "runs"), "--run-id", "r", "--set", "spark.master=local[2]",
         "--set", "llm.enabled=false", "--set", "ppr.walks_per_node=50"],
        cwd=ROOT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    for table in ("candidates", "rankings", "metrics"):
        assert tableio.is_committed(tmp_path / "runs" / "r", table), res.stderr[-3000:]
