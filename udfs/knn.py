"""Top-k inner-product neighbors with faiss, and the brute-force numpy reference.

Used for `user_neighbors`: the database vectors go into one index that the driver builds and
serializes (`index_to_bytes`); executors rebuild it once per process (`index_from_bytes`) and
search their partition of query users (`search_topk`).

Cost per query of d-dimensional vectors over n database rows:
- flat (exact):  O(n·d)
- ivf:           O(nlist·d + nprobe·(n/nlist)·d), build O(iterations·m·nlist·d) for k-means
                 on m = min(n, train_per_list·nlist) rows, plus O(n·nlist·d) to assign all
- hnsw:          about O(ef_search·M·d·log n), build O(n·M·ef_construction·d·log n)
Memory: flat and ivf hold n·d float32 values; hnsw adds about 2·M int32 links per row.
"""

from __future__ import annotations

import math

import numpy as np

INDEX_KINDS = ("flat", "ivf", "hnsw")


def choose_index(kind: str, n: int, exact_max: int) -> str:
    """`auto` is exact up to `exact_max` database rows, IVF beyond."""
    if kind != "auto":
        return kind
    return "flat" if n <= exact_max else "ivf"


def build_index(
    vectors: np.ndarray,
    kind: str,
    *,
    nlist: int = 0,
    nprobe: int = 32,
    train_per_list: int = 64,
    hnsw_m: int = 32,
    ef_search: int = 128,
    seed: int = 0,
):
    """A faiss inner-product index over `vectors` (n x d float32); row i has id i."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "ivf":
        nlist = nlist or max(1, int(4 * math.sqrt(n)))
        nlist = min(nlist, max(1, n // 39))  # faiss wants >= 39 training points per list
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed  # k-means initialisation and sample: same seed, same lists
        index.cp.max_points_per_centroid = train_per_list
        index.train(x)
        index.nprobe = min(nprobe, nlist)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
    else:
        raise ValueError(f"unknown index kind {kind!r}; one of {INDEX_KINDS}")
    index.add(x)
    return index


def index_to_bytes(index) -> np.ndarray:
    import faiss

    return faiss.serialize_index(index)


def index_from_bytes(blob: np.ndarray):
    import faiss

    return faiss.deserialize_index(blob)


def search_topk(
    index, queries: np.ndarray, query_rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The k best database rows per query by inner product, the query's own row excluded.

    query_rows[q] is the database row of query q (-1 if it has none). Returns flat arrays
    (query position, neighbor row, sim, rank 1..k); ties keep faiss' order, which for the
    flat index is the smaller row first.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if len(q) == 0 or index.ntotal == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float64), np.zeros(0, np.int32)
    kk = min(k + 1, index.ntotal)  # one extra: the query itself is usually its best match
    sims, rows = index.search(q, kk)
    keep = (rows >= 0) & (rows != query_rows[:, None])
    # Rank among the kept ones only; a query that did not find itself keeps k, not k + 1.
    ranks = np.cumsum(keep, axis=1)
    keep &= ranks <= k
    qpos = np.nonzero(keep)[0]
    return (
        qpos,
        rows[keep].astype(np.int64),
        sims[keep].astype(np.float64),
        ranks[keep].astype(np.int32),
    )


def brute_force_topk(
    db: np.ndarray, queries: np.ndarray, query_rows: np.ndarray, k: int
) -> list[list[tuple[int, float]]]:
    """Plain reference: every inner product, sorted by (-sim, row), self excluded."""
    out = []
    for qi in range(len(queries)):
        sims = db.astype(np.float64) @ queries[qi].astype(np.float64)
        order = sorted(
            (r for r in range(len(db)) if r != query_rows[qi]), key=lambda r: (-sims[r], r)
        )
        out.append([(r, float(sims[r])) for r in order[:k]])
    return out
