"""user_neighbors: top-k users by inner product of their vectors, with faiss on executors.

The driver builds one index over every user vector (the database has to be whole) and
broadcasts it serialized; the queries stay a partitioned DataFrame and each task searches its
own Arrow batches (`mapInArrow`), so no task holds more than one batch of query results.
"""

from __future__ import annotations

import uuid

import numpy as np

from udfs.knn import build_index, choose_index, index_from_bytes, index_to_bytes, search_topk

_INDEX_CACHE: dict[str, tuple] = {}  # token -> (index, ids): one load per worker process

OUT_SCHEMA = "user_idx int, neighbor_idx int, sim double, rank int"


def knn_spark(spark, vectors, cfg, seed: int, queries=None):
    """DataFrame[user_idx, neighbor_idx, sim, rank]: top cfg.user_k per user, self excluded.

    vectors: DataFrame[user_idx int, vec array<double>], all indexed; queries: DataFrame[user_idx]
    of the users searched for (None: every user). Returns (DataFrame, info dict).
    """
    import pyarrow as pa

    table = vectors.select("user_idx", "vec").toArrow()
    ids = table.column("user_idx").to_numpy().astype(np.int64)
    n = len(ids)
    info = {"users_indexed": n}
    if n == 0:
        return spark.createDataFrame([], OUT_SCHEMA), {**info, "index": "none"}
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    mat = _to_matrix(table.column("vec").combine_chunks())[order]
    kind = choose_index(cfg.index, n, cfg.exact_max_users)
    index = build_index(
        mat,
        kind,
        nlist=cfg.ivf_nlist,
        nprobe=cfg.ivf_nprobe,
        train_per_list=cfg.ivf_train_per_list,
        hnsw_m=cfg.hnsw_m,
        ef_search=cfg.hnsw_ef_search,
        seed=seed,
    )
    bc = spark.sparkContext.broadcast((index_to_bytes(index), ids))
    k, batch = cfg.user_k, cfg.query_batch
    token = uuid.uuid4().hex
    info.update(index=kind, dim=int(mat.shape[1]))

    def search(batches):
        import faiss

        faiss.omp_set_num_threads(1)  # one task per core already
        key = token
        if key not in _INDEX_CACHE:
            blob, db_ids = bc.value
            _INDEX_CACHE.clear()
            _INDEX_CACHE[key] = (index_from_bytes(blob), db_ids)
        idx, db_ids = _INDEX_CACHE[key]
        for rb in batches:
            for start in range(0, rb.num_rows, batch):
                part = rb.slice(start, batch)
                q_ids = part.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
                q = _to_matrix(part.column(1))
                rows = np.searchsorted(db_ids, q_ids)
                rows = np.where(
                    (rows < len(db_ids)) & (db_ids[np.minimum(rows, len(db_ids) - 1)] == q_ids),
                    rows,
                    -1,
                )
                qpos, nrow, sim, rank = search_topk(idx, q, rows, k)
                yield pa.RecordBatch.from_arrays(
                    [
                        pa.array(q_ids[qpos].astype(np.int32)),
                        pa.array(db_ids[nrow].astype(np.int32)),
                        pa.array(sim),
                        pa.array(rank),
                    ],
                    names=["user_idx", "neighbor_idx", "sim", "rank"],
                )

    asked = vectors if queries is None else vectors.join(queries, "user_idx")
    if queries is not None:
        info["users_queried"] = "sample"
    return asked.select("user_idx", "vec").mapInArrow(search, OUT_SCHEMA), info


def _to_matrix(col) -> np.ndarray:
    """An Arrow list<double> column of equal-length vectors -> (n, d) float32."""
    n = len(col)
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(n, -1).astype(np.float32) if n else np.zeros((0, 0), np.float32)
