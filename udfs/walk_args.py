"""The argument checks every walk kernel shares (udfs/walk_batch.py, udfs/walk_numba.py and
their reference twins), with the ranges the config allows for the same settings (`PprConfig`
in pipelines/config/sections.py): a kernel accepts exactly what a validated config can pass it,
so a value the config rejects cannot reach a kernel through another caller either.
`tests/unit/test_walk_args.py` checks the two agree at every bound.

Executor-side: numpy only (udfs/ sits below the config layer, so the bounds are restated here).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ESTIMATORS", "check_walk_args"]

ESTIMATORS = ("visits", "endpoint")


def check_walk_args(
    sources,
    walks_per_source: int,
    alpha: float,
    seed: int,
    estimator: str,
    max_steps: int,
    *,
    k: int | None = None,
    n: int | None = None,
) -> np.ndarray:
    """The batch's sources as a sorted int64 array, after checking every argument: alpha
    (restart probability) in (0, 1), walks_per_source, max_steps and k (when given) >= 1,
    seed >= 0, sources distinct and, when the node count `n` is given, in [0, n).

    Raises ValueError on the first argument out of range. O(B log B) for B sources.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha (restart probability) must be in (0, 1), got {alpha}")
    if int(walks_per_source) < 1:
        raise ValueError(f"walks_per_source must be >= 1, got {walks_per_source}")
    if int(max_steps) < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if k is not None and int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    src = np.asarray(sources).astype(np.int64, copy=False).ravel()
    src_sorted = np.unique(src)
    if src_sorted.shape[0] != src.shape[0]:
        raise ValueError("sources of a batch must be distinct")
    if n is not None and src_sorted.size and (src_sorted[0] < 0 or src_sorted[-1] >= n):
        raise ValueError(f"source id out of range [0, {n})")
    return src_sorted
