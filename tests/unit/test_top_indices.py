"""The shared top-k selection and row emitter of the compiled kernels against `sorted()`:
value descending, ties to the smaller item, whatever the buffer's order."""

from __future__ import annotations

import numpy as np
import pytest

from udfs.top_indices import emit_top, top_indices


def _expected(items, values, m, k):
    pairs = sorted(
        zip(values[:m].tolist(), items[:m].tolist(), strict=True), key=lambda p: (-p[0], p[1])
    )
    return pairs[:k]


@pytest.mark.parametrize("seed", range(20))
def test_top_indices_and_emit_top_match_sorted(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    items = rng.permutation(10 * n)[:n].astype(np.int64)  # distinct, in no order
    values = rng.integers(-3, 4, n).astype(np.float64) * 0.5  # many ties, 0.0 and -0.0
    values[values == 0] = np.where(rng.random(int((values == 0).sum())) < 0.5, 0.0, -0.0)
    m = int(rng.integers(0, n + 1))
    for k in (1, 2, 7, m, n + 5):
        want = _expected(items, values, m, k)
        if m:
            got = top_indices(items, values, m, k)
            assert [(values[i], items[i]) for i in got] == want
        out = [np.full(len(want) + 3, -1, np.int64), np.zeros(len(want) + 3, np.int64)]
        out += [np.zeros(len(want) + 3), np.zeros(len(want) + 3, np.int32)]
        end = emit_top(9, items, values, m, k, *out, 2)
        assert end == 2 + len(want)
        assert out[0][2:end].tolist() == [9] * len(want)
        assert list(zip(out[2][2:end].tolist(), out[1][2:end].tolist(), strict=True)) == want
        assert out[3][2:end].tolist() == list(range(1, len(want) + 1))
    assert emit_top(9, items, values, m, 0, *out, 2) == 2
