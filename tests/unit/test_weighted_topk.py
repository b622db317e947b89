"""udfs.weighted_topk against its plain-Python definition on random CSR tables."""

from __future__ import annotations

import numpy as np
import pytest

from udfs.weighted_topk import (
    csr_from_triples,
    weighted_row_sum_topk,
    weighted_row_sum_topk_reference,
)


def _random_table(rng, n=25, max_deg=6):
    """Triples with empty rows, negative values, duplicate (row, col) pairs and values from a
    small set, so that sums tie."""
    rows, cols, vals = [], [], []
    for i in range(n):
        deg = 0 if i % 6 == 2 else int(rng.integers(1, max_deg + 1))
        rows += [i] * deg
        cols += rng.integers(0, n, deg).tolist()
        vals += rng.choice([-0.5, 0.25, 0.5, 1.0, 0.1], deg).tolist()
    return np.array(rows), np.array(cols), np.array(vals)


def _random_users(rng, n_rows, n_users=12):
    """CSR of users' (row, weight) entries and seen items: user 0 has no entries, user 1 has
    seen everything, the others a few entries in no particular order, some repeated."""
    offsets, items, weights, seen_offsets, seen = [0], [], [], [0], []
    for u in range(n_users):
        m = 0 if u == 0 else int(rng.integers(1, 6))
        items += rng.integers(0, n_rows, m).tolist()
        weights += rng.choice([0.2, 0.3, 0.5, -0.1, 0.7], m).tolist()
        offsets.append(len(items))
        seen += list(range(n_rows)) if u == 1 else rng.integers(0, n_rows, 3).tolist()
        seen_offsets.append(len(seen))
    return [np.array(a) for a in (offsets, items, weights, seen_offsets, seen)]


def _run(users, table, k, positive_only, **kw):
    offsets, items, weights, seen_offsets, seen = users
    u, j, s = weighted_row_sum_topk(
        offsets, items, weights, *table, seen_offsets, seen, k, positive_only, **kw
    )
    return list(zip(u.tolist(), j.tolist(), s.tolist(), strict=True))


@pytest.mark.parametrize("positive_only", [False, True])
@pytest.mark.parametrize("seed,k", [(0, 3), (1, 5), (2, 1), (3, 100)])
def test_kernel_equals_reference(seed, k, positive_only):
    rng = np.random.default_rng(seed)
    table = csr_from_triples(*_random_table(rng), 25)
    users = _random_users(rng, 25)
    got = _run(users, table, k, positive_only)
    offsets, items, weights, seen_offsets, seen = users
    want = weighted_row_sum_topk_reference(
        offsets, items, weights, *table, seen_offsets, seen, k, positive_only
    )
    # The same terms added in the same order: bit-identical, not just close.
    assert got == want
    assert not any(u in (0, 1) for u, _, _ in got)  # no history; everything seen
    if positive_only:
        assert all(s > 0 for _, _, s in got)
    elif k == 100:  # every candidate kept: non-positive sums are among them
        assert any(s <= 0 for _, _, s in got)


@pytest.mark.parametrize("seed", range(3))
def test_input_order_does_not_change_the_result(seed):
    rng = np.random.default_rng(seed)
    triples = _random_table(rng)
    users = _random_users(rng, 25)
    want = _run(users, csr_from_triples(*triples, 25), 4, False)
    perm = rng.permutation(len(triples[0]))
    shuffled_table = csr_from_triples(*(a[perm] for a in triples), 25)
    offsets, items, weights, seen_offsets, seen = users
    items, weights = items.copy(), weights.copy()
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        p = a + rng.permutation(b - a)
        items[a:b], weights[a:b] = items[p], weights[p]
    shuffled = [offsets, items, weights, seen_offsets, seen]
    assert _run(shuffled, shuffled_table, 4, False) == want


def test_ties_at_the_kth_score_go_to_the_smaller_items():
    # One entry, row 0: items 5, 3, 4 tie at 1.0 under item 1 at 2.0; k cuts through the tie.
    table = csr_from_triples([0, 0, 0, 0], [5, 3, 4, 1], [1.0, 1.0, 1.0, 2.0], 1)
    for k, want in ((1, [1]), (2, [1, 3]), (3, [1, 3, 4]), (9, [1, 3, 4, 5])):
        u, j, s = weighted_row_sum_topk([0, 1], [0], [1.0], *table, [0, 0], [], k=k)
        assert j.tolist() == want
        ref = weighted_row_sum_topk_reference([0, 1], [0], [1.0], *table, [0, 0], [], k=k)
        assert [(int(a), int(b), float(c)) for a, b, c in zip(u, j, s, strict=True)] == ref


def test_hand_example():
    # Row 0: {1: 0.5, 2: 1.0}; row 1: {2: -1.0, 3: 0.25}; row 2: empty.
    table = csr_from_triples([0, 0, 1, 1], [2, 1, 3, 2], [1.0, 0.5, 0.25, -1.0], 3)
    assert table[0].tolist() == [0, 2, 4, 4]
    assert table[1].tolist() == [1, 2, 2, 3]
    # One user: 0.75 · row 0 + 0.25 · row 1 + 1.0 · row 2, item 1 seen.
    args = ([0, 3], [1, 0, 2], [0.25, 0.75, 1.0], *table, [0, 1], [1])
    u, j, s = weighted_row_sum_topk(*args, k=5)
    assert j.tolist() == [2, 3] and u.tolist() == [0, 0]
    assert s.tolist() == [0.75 * 1.0 + 0.25 * -1.0, 0.25 * 0.25]
    u, j, s = weighted_row_sum_topk(*args, k=1)
    assert j.tolist() == [2]
    # A sum of exactly 0 is kept unless positive_only.
    zero = ([0, 2], [0, 1], [0.5, 0.5], *table, [0, 1], [1])
    assert weighted_row_sum_topk(*zero, k=5)[1].tolist() == [3, 2]  # 0.125 > 0.0
    assert weighted_row_sum_topk(*zero, k=5)[2].tolist() == [0.125, 0.0]
    assert weighted_row_sum_topk(*zero, k=5, positive_only=True)[1].tolist() == [3]


def test_ties_go_to_the_smaller_item():
    table = csr_from_triples([0, 0, 0, 1], [7, 3, 5, 4], [1.0, 1.0, 1.0, 2.0], 2)
    u, j, s = weighted_row_sum_topk([0, 2], [0, 1], [0.5, 0.25], *table, [0, 0], [], k=3)
    assert j.tolist() == [3, 4, 5] and s.tolist() == [0.5, 0.5, 0.5]


def test_empty_batch_and_bad_input():
    table = csr_from_triples([0], [1], [1.0], 2)
    u, j, s = weighted_row_sum_topk([0], [], [], *table, [0], [], k=3)
    assert u.size == j.size == s.size == 0
    with pytest.raises(ValueError, match=r"entry 5 outside the table's rows \[0, 2\)"):
        weighted_row_sum_topk([0, 1], [5], [1.0], *table, [0, 0], [], k=3)
    with pytest.raises(ValueError, match="seen_offsets has 2 users"):
        weighted_row_sum_topk([0, 1], [0], [1.0], *table, [0, 0, 0], [], k=3)
    with pytest.raises(ValueError, match=r"row ids outside \[0, 2\)"):
        csr_from_triples([2], [0], [1.0], 2)
