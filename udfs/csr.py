"""Edge list -> CSR arrays: the graph as the numpy kernels (PPR walks, multi-hop) read it."""

from __future__ import annotations

import numpy as np


def csr_from_edges(
    src: np.ndarray, dst: np.ndarray, prob: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64[n+1], indices int32[nnz], prob float64[nnz]), rows sorted by dst.

    O(nnz log nnz) for the sort; rows are re-normalised so each non-empty row sums to 1
    exactly in float64 (the table's prob is already weight / out_weight).
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int32)
    prob = np.asarray(prob, dtype=np.float64)
    if src.size and (
        src.min() < 0 or src.max() >= n_nodes or dst.min() < 0 or dst.max() >= n_nodes
    ):
        raise ValueError(f"edge endpoints outside [0, {n_nodes}): the graph tables disagree")
    order = np.lexsort((dst, src))
    src, dst, prob = src[order], dst[order], prob[order]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    row_sum = np.add.reduceat(prob, indptr[:-1][np.diff(indptr) > 0]) if prob.size else prob
    deg = np.diff(indptr)
    prob = prob / np.repeat(row_sum, deg[deg > 0])
    return indptr, dst, prob
