"""Multi-hop transition kernel (the `transition` candidate source): cost per source item as
the catalog grows, automatic dense/sparse hops against dense-only hops, same run.

For each run directory (a `walkrank run` with graph_edges and items, e.g. the scaling
benchmark's `run-N/r`), times `udfs.multihop.multi_hop_topk` with the candidates defaults
(3 hops, beam 300, top 100) on `--sources` random items, once as shipped and once with every
hop forced dense (SPARSE_FACTOR huge: the kernel before sparse hops), and checks both give
identical arrays.  Best of `--repeats` calls per mode, after one warm-up call.

    .venv/bin/python benchmarks/multihop_bench.py /tmp/scale/run-1000000/r /tmp/scale/run-5000000/r
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import udfs.multihop as mh  # noqa: E402
from pipelines import tableio  # noqa: E402
from pipelines.config import CandidatesConfig  # noqa: E402
from udfs.csr import csr_from_edges  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run directories (graph_edges, items)")
    p.add_argument("--sources", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="best of, per mode")
    a = p.parse_args(argv)
    c = CandidatesConfig()
    t = c.transition
    kw = dict(hops=t.hops, hop_decay=t.hop_decay, beam=t.beam)
    print(f"# {os.cpu_count()} cores; hops {kw['hops']}, beam {kw['beam']}, top {c.per_source}")
    print("| items | edges | ms/source (auto) | ms/source (dense only) | speed-up | identical |")
    print("|---:|---:|---:|---:|---:|---|")
    for run in a.runs:
        n = tableio.read_manifest(run, "items")["rows"]
        e = tableio.read_arrow(run, "graph_edges", columns=["src", "dst", "prob"])
        cols = (e.column(x).to_numpy() for x in ("src", "dst", "prob"))
        indptr, indices, prob = csr_from_edges(*cols, n)
        rng = np.random.default_rng(a.seed)
        src = np.sort(rng.choice(n, size=min(a.sources, n), replace=False))
        out, ms = {}, {}
        for mode, factor in (("auto", mh.SPARSE_FACTOR), ("dense", 10**18)):
            saved, mh.SPARSE_FACTOR = mh.SPARSE_FACTOR, factor
            try:
                mh.multi_hop_topk(indptr, indices, prob, src[:50], k=c.per_source, **kw)
                best = float("inf")
                for _ in range(a.repeats):
                    t0 = time.perf_counter()
                    out[mode] = mh.multi_hop_topk(indptr, indices, prob, src, k=c.per_source, **kw)
                    best = min(best, time.perf_counter() - t0)
                ms[mode] = 1000 * best / len(src)
            finally:
                mh.SPARSE_FACTOR = saved
        same = all(np.array_equal(x, y) for x, y in zip(out["auto"], out["dense"], strict=True))
        print(
            f"| {n:,} | {e.num_rows:,} | {ms['auto']:.2f} | {ms['dense']:.2f} "
            f"| {ms['dense'] / ms['auto']:.1f}x | {same} |",
            flush=True,
        )
        if not same:
            print(json.dumps({"run": str(run), "error": "auto and dense differ"}))
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
