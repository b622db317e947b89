"""The user kNN's faiss indexes alone (`udfs/knn.build_index`): build seconds, search
milliseconds per query and recall@21 against the exact index, at given database sizes.

Data: unit vectors around 2,000 Gaussian centres in 32 dimensions (`als_rank`), standing in for
the recent-mean user vectors; 2,000 queries drawn from the database. One faiss thread, so the
figures add up to what one core does.

    python benchmarks/knn_index_bench.py 250000,1000000
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from udfs.knn import build_index  # noqa: E402

VARIANTS = [("ivf", {}), ("hnsw", {"ef_search": 128}), ("hnsw", {"ef_search": 64})]


def clustered(rng: np.random.Generator, n: int, d: int = 32, centres: int = 2000) -> np.ndarray:
    c = rng.normal(size=(centres, d)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main(sizes: list[int]) -> None:
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    for n in sizes:
        x = clustered(rng, n)
        q = x[rng.choice(n, 2000, replace=False)]
        exact = faiss.IndexFlatIP(x.shape[1])
        exact.add(x)
        _, truth = exact.search(q, 21)
        for kind, kw in VARIANTS:
            t = time.perf_counter()
            index = build_index(x, kind, **kw)
            built = time.perf_counter() - t
            t = time.perf_counter()
            _, got = index.search(q, 21)
            per_query = (time.perf_counter() - t) / len(q)
            recall = np.mean([len(set(a) & set(b)) / 21 for a, b in zip(got, truth, strict=True)])
            print(
                f"n={n} {kind} {kw} build {built:.1f}s  search {per_query * 1e3:.3f} ms/query"
                f" -> all {per_query * n:.0f}s  recall@21 {recall:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1].split(",")])
