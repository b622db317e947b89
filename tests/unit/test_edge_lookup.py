"""udfs.edge_lookup against a dict of the edges."""

from __future__ import annotations

import numpy as np
import pytest

from udfs.edge_lookup import edge_table, lookup, lookup_reference


@pytest.mark.parametrize("seed", range(3))
def test_lookup_equals_the_dict(seed):
    rng = np.random.default_rng(seed)
    pairs = {(int(s), int(t)) for s, t in rng.integers(0, 40, size=(300, 2))}
    edges = [(s, t, float(rng.random())) for s, t in sorted(pairs)]
    rng.shuffle(edges)  # any edge order
    table = edge_table(*(np.array(c) for c in zip(*edges, strict=True)))
    asked = [(int(s), int(t)) for s, t in rng.integers(-1, 45, size=(500, 2))]
    values, found = lookup(table, *(np.array(c) for c in zip(*asked, strict=True)))
    want = lookup_reference(edges, [(None if s < 0 else s, t) for s, t in asked])
    assert [float(v) if f else None for v, f in zip(values, found, strict=True)] == want
    assert found.sum() > 50 and (~found).sum() > 50


def test_empty_graph_and_bad_edges():
    values, found = lookup(edge_table([], [], []), np.array([1]), np.array([2]))
    assert values.tolist() == [0.0] and found.tolist() == [False]
    with pytest.raises(ValueError, match="more than once"):
        edge_table([1, 1], [2, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 2\*\*31\)"):
        edge_table([-1], [2], [0.5])
