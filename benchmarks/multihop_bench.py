"""Multi-hop transition kernel (the `transition` candidate source): cost per source item as
the catalog grows, the compiled kernel against its plain-Python definition, same run.

For each run directory (a `walkrank run` with graph_edges and items, e.g. the scaling
benchmark's `run-N/r`), times `udfs.multihop.multi_hop_topk` with the candidates defaults
(3 hops, beam 300, top per_source) on `--sources` random items (best of `--repeats` calls,
after one warm-up call), and `multi_hop_reference` on the first `--ref-sources` of them,
checking that both give the same lists (scores to a relative 1e-12).

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
    p.add_argument("--repeats", type=int, default=3, help="best of, compiled kernel")
    p.add_argument("--ref-sources", type=int, default=20, help="sources the definition runs")
    a = p.parse_args(argv)
    c = CandidatesConfig()
    t = c.transition
    kw = dict(hops=t.hops, hop_decay=t.hop_decay, beam=t.beam, k=c.per_source)
    print(f"# {os.cpu_count()} cores; hops {kw['hops']}, beam {kw['beam']}, top {c.per_source}")
    print("| items | edges | ms/source (compiled) | ms/source (definition) | speed-up | equal |")
    print("|---:|---:|---:|---:|---:|---|")
    for run in a.runs:
        n = tableio.read_manifest(run, "items")["rows"]
        e = tableio.read_arrow(run, "graph_edges", columns=["src", "dst", "prob"])
        cols = (e.column(x).to_numpy() for x in ("src", "dst", "prob"))
        indptr, indices, prob = csr_from_edges(*cols, n)
        rng = np.random.default_rng(a.seed)
        src = np.sort(rng.choice(n, size=min(a.sources, n), replace=False))
        mh.multi_hop_topk(indptr, indices, prob, src[:50], **kw)
        best = float("inf")
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            s, d, sc, _ = mh.multi_hop_topk(indptr, indices, prob, src, **kw)
            best = min(best, time.perf_counter() - t0)
        ref_src = src[: a.ref_sources]
        t0 = time.perf_counter()
        want = {
            int(x): mh.multi_hop_reference(indptr, indices, prob, int(x), **kw) for x in ref_src
        }
        ref_ms = 1000 * (time.perf_counter() - t0) / len(ref_src)
        same = True
        for x, rows in want.items():
            sel = s == x
            got_d, got_s = d[sel].tolist(), sc[sel]
            exp_s = np.array([v for _, v in rows])
            same &= got_d == [j for j, _ in rows] and np.allclose(got_s, exp_s, rtol=1e-12, atol=0)
        ms = 1000 * best / len(src)
        print(
            f"| {n:,} | {e.num_rows:,} | {ms:.3f} | {ref_ms:.1f} | {ref_ms / ms:,.0f}x | {same} |",
            flush=True,
        )
        if not same:
            print(json.dumps({"run": str(run), "error": "kernel and definition differ"}))
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
