"""udfs/recent_mean.py against its plain-Python twin."""

from __future__ import annotations

import numpy as np
import pytest

from udfs.recent_mean import recent_mean_reference, recent_mean_rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recent_mean_rows_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    n_items, d, decay = 30, 6, 0.8
    matrix = rng.standard_normal((n_items, d))
    has_vec = rng.random(n_items) > 0.2  # some items have no vector
    lists = [list(rng.integers(-1, n_items + 3, rng.integers(0, 9))) for _ in range(40)]
    lists[0] = []  # a user without items
    lists[1] = [int(np.flatnonzero(~has_vec)[0])]  # a user whose only item has no vector
    offsets = np.cumsum([0, *map(len, lists)])
    items = np.array([i for items in lists for i in items], dtype=np.int64)
    got, kept = recent_mean_rows(offsets, items, matrix, has_vec, decay)
    vectors = {i: list(matrix[i]) for i in range(n_items) if has_vec[i]}
    want = recent_mean_reference([[int(i) for i in items] for items in lists], vectors, decay)
    assert list(kept) == [w is not None for w in want]
    assert not kept[0] and not kept[1]
    for u, w in enumerate(want):
        if w is not None:
            np.testing.assert_allclose(got[u], w, rtol=1e-12, atol=1e-15)
            assert np.linalg.norm(got[u]) == pytest.approx(1.0)
