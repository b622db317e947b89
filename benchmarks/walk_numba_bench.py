"""The compiled PPR walk kernel (`ppr.kernel=numba`, udfs/walk_numba.py) of this tree against
the same kernel at an earlier commit, back to back on one machine.

    python benchmarks/walk_numba_bench.py [--base 34ccf6d] [--rounds 2]

The earlier `udfs/` is taken with `git archive` into a temporary folder. Each side runs in a
process of its own (its own numba compile, not timed): `ppr_topk` from every 40th node of a
20,000-node random graph (tests/graph_fixtures.py, seed 3), 2,000 walks each, k = 100, best
of 15. Rounds alternate the two sides. Prints one JSON object with each side's best seconds
and their ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TIMED = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import numpy as np
import udfs
assert udfs.__file__.startswith(sys.argv[1]), udfs.__file__
from tests.graph_fixtures import random_weighted_graph
from udfs.alias_table import build_alias_tables
from udfs.walk_numba import ppr_topk
indptr, indices, prob, _ = random_weighted_graph(20000, 3)
tables = build_alias_tables(indptr, prob)
ppr_topk(np.arange(15), 10, 0.3, indptr, indices, tables, 1, k=100)  # compile
best = 1e9
for _ in range(15):
    t0 = time.perf_counter()
    ppr_topk(np.arange(0, 20000, 40), 2000, 0.3, indptr, indices, tables, 1, k=100)
    best = min(best, time.perf_counter() - t0)
print(best)
"""


def _best(udfs_root: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMED, str(udfs_root), str(ROOT)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(out.stdout.strip())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="34ccf6d", help="the commit whose udfs/ is the baseline")
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", a.base, "udfs"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        base, head = [], []
        for _ in range(a.rounds):
            base.append(_best(Path(tmp)))
            head.append(_best(ROOT))
    result = {"base": a.base, "base_s": min(base), "head_s": min(head)}
    result["head_over_base"] = round(result["head_s"] / result["base_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
