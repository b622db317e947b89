"""faiss top-k (udfs/knn.py) against the brute-force numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from udfs.knn import brute_force_topk, build_index, choose_index, search_topk


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _lists(qpos, rows, sims, ranks, nq):
    out = [[] for _ in range(nq)]
    for q, r, s, k in zip(qpos, rows, sims, ranks, strict=True):
        out[q].append((k, int(r), float(s)))
    return [[(r, s) for _, r, s in sorted(lst)] for lst in out]


def test_flat_is_identical_to_brute_force():
    rng = np.random.default_rng(0)
    db = _unit(rng, 300, 12)
    q_rows = np.array([0, 5, 17, 299, -1])  # the last query is not in the database
    queries = np.vstack([db[q_rows[:-1]], _unit(rng, 1, 12)])
    k = 7
    got = _lists(*search_topk(build_index(db, "flat"), queries, q_rows, k), len(queries))
    want = brute_force_topk(db, queries, q_rows, k)
    for g, w in zip(got, want, strict=True):
        assert [r for r, _ in g] == [r for r, _ in w]
        assert [s for _, s in g] == pytest.approx([s for _, s in w], abs=1e-5)
    assert all(len(g) == k for g in got)  # self excluded, yet k neighbors each
    assert all(q_rows[i] not in [r for r, _ in g] for i, g in enumerate(got))


def test_k_larger_than_database():
    db = _unit(np.random.default_rng(1), 4, 3)
    got = _lists(*search_topk(build_index(db, "flat"), db, np.arange(4), 10), 4)
    assert [len(g) for g in got] == [3, 3, 3, 3]


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_at_k(kind):
    rng = np.random.default_rng(2)
    # Clustered data, as user vectors are: approximate indexes are meant for it.
    centers = _unit(rng, 20, 16)
    db = centers[rng.integers(0, 20, 4000)] + 0.3 * rng.standard_normal((4000, 16))
    db = (db / np.linalg.norm(db, axis=1, keepdims=True)).astype(np.float32)
    q_rows = rng.choice(4000, 200, replace=False)
    k = 10
    index = build_index(db, kind, nlist=64, nprobe=16, hnsw_m=32, ef_search=128, seed=3)
    got = _lists(*search_topk(index, db[q_rows], q_rows, k), len(q_rows))
    want = brute_force_topk(db, db[q_rows], q_rows, k)
    recall = np.mean(
        [len({r for r, _ in g} & {r for r, _ in w}) / k for g, w in zip(got, want, strict=True)]
    )
    assert recall >= 0.95, recall


def test_ivf_lists_are_trained_on_at_most_train_per_list_rows_per_list():
    db = _unit(np.random.default_rng(4), 4000, 8)

    def centroids(per_list, seed=5):
        index = build_index(db, "ivf", nlist=16, train_per_list=per_list, seed=seed)
        return index.quantizer.reconstruct_n(0, 16)

    whole = centroids(10_000)
    # 250 a list covers all 4,000 rows: the same k-means as without a cap.
    np.testing.assert_array_equal(centroids(250), whole)
    sampled = centroids(40)  # 640 rows sampled with the seed
    assert not np.allclose(sampled, whole)
    np.testing.assert_array_equal(centroids(40), sampled)  # the same seed, the same sample
    assert not np.allclose(centroids(40, seed=6), sampled)


def test_choose_index():
    assert choose_index("auto", 100, 1000) == "flat"
    assert choose_index("auto", 1001, 1000) == "ivf"
    assert choose_index("hnsw", 10, 1000) == "hnsw"
