"""The recent-mean user vectors' task function (pipelines/neighbors/embed.py) against a
plain-Python twin: Σ_p decay**p · v(i_p) over a user's items newest first, unit length; items
without a vector left out, users with none not kept."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipelines.neighbors.embed import _recent_mean_batches


def recent_mean_reference(
    lists: list[list[int]], item_vecs: dict[int, list[float]], decay: float
) -> list[list[float] | None]:
    out: list[list[float] | None] = []
    for items in lists:
        d = len(next(iter(item_vecs.values()))) if item_vecs else 0
        acc = [0.0] * d
        for p, i in enumerate(items):
            if i in item_vecs:
                acc = [a + decay**p * v for a, v in zip(acc, item_vecs[i], strict=True)]
        norm = sum(a * a for a in acc) ** 0.5
        out.append([a / norm for a in acc] if norm > 0 else None)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recent_mean_batches_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    n_items, d, decay = 30, 6, 0.8
    matrix = rng.standard_normal((n_items, d))
    has_vec = rng.random(n_items) > 0.2  # some items have no vector
    lists = [[int(i) for i in rng.integers(-1, n_items + 3, rng.integers(0, 9))] for _ in range(40)]
    lists[0] = []  # a user without items
    lists[1] = [int(np.flatnonzero(~has_vec)[0])]  # a user whose only item has no vector
    users = list(range(100, 140))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(users, pa.int32()), pa.array(lists, pa.list_(pa.int32()))],
        names=["user_idx", "items"],
    )
    # A slice too: its list offsets do not start at 0.
    for rb, first in ((batch, 0), (batch.slice(5), 5)):
        (got,) = list(_recent_mean_batches([rb], matrix, has_vec, decay))
        vectors = {i: list(matrix[i]) for i in range(n_items) if has_vec[i]}
        want = recent_mean_reference(lists[first:], vectors, decay)
        kept = [u for u, w in zip(users[first:], want, strict=True) if w is not None]
        assert got.column(0).to_pylist() == kept
        assert 100 not in kept and 101 not in kept
        rows = [w for w in want if w is not None]
        for vec, w in zip(got.column(1).to_pylist(), rows, strict=True):
            np.testing.assert_allclose(vec, w, rtol=1e-12, atol=1e-15)
            assert np.linalg.norm(vec) == pytest.approx(1.0)
