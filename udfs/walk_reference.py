"""Plain-Python twin of :func:`udfs.walk_batch.ppr_walk_batch`: one walker at a time, its own
RNG, the same walk model. Tests compare the two statistically (and both with networkx).
Complexity O(sources * walks / alpha) Python iterations: for tests only.
"""

from __future__ import annotations

import numpy as np

from udfs.alias_table import AliasTables
from udfs.walk_args import check_walk_args
from udfs.walk_batch import WalkResult


def ppr_walk_batch_reference(
    sources,
    walks_per_source: int,
    alpha: float,
    indptr,
    indices,
    tables: AliasTables,
    seed: int,
    estimator: str = "visits",
    max_steps: int = 200,
) -> WalkResult:
    """Plain-Python per-walker loop with the same semantics (own RNG: compare statistically).

    Per step: coin ``< alpha`` ends the walk (end-point counted); else a dangling node ends it
    (discarded for the end-point estimator); else move by the alias tables.  O(B * W / alpha)
    Python iterations: tests only.
    """
    import random

    src_sorted = check_walk_args(
        sources, walks_per_source, alpha, seed, estimator, max_steps, n=len(indptr) - 1
    )
    indptr_l = [int(v) for v in indptr]
    indices_l = [int(v) for v in indices]
    accept = [float(v) for v in tables.accept]
    alias_l = [int(v) for v in tables.alias]
    rnd = random.Random(int(seed))
    out_src: list[int] = []
    out_dst: list[int] = []
    out_score: list[float] = []
    steps = 0
    for s in (int(v) for v in src_sorted):
        counts: dict[int, int] = {}
        for _ in range(int(walks_per_source)):
            v = s
            if estimator == "visits":
                counts[v] = counts.get(v, 0) + 1
            moves = 0
            while True:
                if rnd.random() < alpha or moves >= max_steps:
                    if estimator == "endpoint":
                        counts[v] = counts.get(v, 0) + 1
                    break
                lo, hi = indptr_l[v], indptr_l[v + 1]
                if hi == lo:  # dangling: the walk ends, no end-point
                    break
                c = int(rnd.random() * (hi - lo))
                if rnd.random() >= accept[lo + c]:
                    c = alias_l[lo + c]
                v = indices_l[lo + c]
                moves += 1
                steps += 1
                if estimator == "visits":
                    counts[v] = counts.get(v, 0) + 1
        total = sum(counts.values())
        for d in sorted(counts):
            out_src.append(s)
            out_dst.append(d)
            out_score.append(counts[d] / total)
    return WalkResult(
        np.array(out_src, dtype=np.int32),
        np.array(out_dst, dtype=np.int32),
        np.array(out_score, dtype=np.float64),
        steps,
        len(src_sorted) * int(walks_per_source),
    )
