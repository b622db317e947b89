"""udfs.cooccurrence against its plain-Python definition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from udfs.cooccurrence import (
    cooccurrence_reference,
    cooccurrence_topk,
    fixed_point_weights,
    item_sets_csr,
    item_weight_sums,
)


def _random_sets(seed, n_users=60, n_items=40, max_len=12):
    """{user: set of items}, popular items first (skewed), some users absent (id gaps)."""
    rng = np.random.default_rng(seed)
    sets = {}
    for u in range(n_users):
        if u % 9 == 4:
            continue
        size = int(rng.integers(1, max_len + 1))
        sets[u] = {min(int(x), n_items - 1) for x in rng.zipf(1.6, size) - 1}
    return sets, n_users, n_items


def _kernel(sets, n_users, n_items, wtab, rows, min_support, k):
    pairs = [(u, i) for u, items in sets.items() for i in sorted(items)]
    users = np.array([u for u, _ in pairs])
    items = np.array([i for _, i in pairs])
    u_ptr, u_items, i_ptr, i_users = item_sets_csr(users, items, n_users, n_items)
    user_weight = wtab[np.diff(u_ptr)]
    norms = item_weight_sums(i_ptr, i_users, user_weight)
    return cooccurrence_topk(
        u_ptr, u_items, i_ptr, i_users, user_weight, norms, rows, min_support=min_support, k=k
    )


def _wtab(max_len, n_users):
    return fixed_point_weights(
        np.array([0.0] + [1 / math.log2(1 + n) for n in range(1, max_len + 1)]), n_users
    )


@pytest.mark.parametrize("seed,min_support,k", [(0, 1, 5), (1, 2, 3), (2, 1, 100), (3, 3, 10)])
def test_kernel_equals_the_definition_bit_for_bit(seed, min_support, k):
    sets, n_users, n_items = _random_sets(seed)
    wtab = _wtab(12, len(sets))
    i, j, s, r = _kernel(sets, n_users, n_items, wtab, np.arange(n_items), min_support, k)
    want = cooccurrence_reference(
        sets, lambda n: wtab[n], min_support=min_support, k=k
    )  # fmt: skip
    got: dict[int, list] = {}
    for a, b, c, d in zip(i.tolist(), j.tolist(), s.tolist(), r.tolist(), strict=True):
        got.setdefault(a, []).append((b, c))
        assert d == len(got[a])
    assert got == want  # exact: the sums are integers, the divisions the same IEEE ops


def test_any_split_of_the_items_gives_the_same_rows():
    sets, n_users, n_items = _random_sets(5, n_users=200, n_items=80)
    wtab = _wtab(12, len(sets))
    whole = _kernel(sets, n_users, n_items, wtab, np.arange(n_items), 1, 7)
    parts = [
        _kernel(sets, n_users, n_items, wtab, np.arange(lo, hi), 1, 7)
        for lo, hi in [(0, 3), (3, 41), (41, 80)]
    ]
    for col, got in zip(whole, zip(*parts, strict=True), strict=True):
        np.testing.assert_array_equal(col, np.concatenate(got))


def test_ties_go_to_the_smaller_item_and_self_is_never_kept():
    # Users {0, 1, 2} and {0, 3}: items 1 and 2 tie as neighbours of 0 and come in item order.
    sets = {0: {0, 2, 1}, 1: {0, 3}}
    wtab = _wtab(3, 2)
    i, j, s, r = _kernel(sets, 2, 4, wtab, np.array([0]), 1, 10)
    assert i.tolist() == [0, 0, 0] and r.tolist() == [1, 2, 3]
    assert j.tolist() == [3, 1, 2]  # {0, 3} is the shorter history: its pair weighs more
    assert s[1] == s[2]


def test_fixed_point_keeps_sums_below_int64_and_rejects_bad_weights():
    w = fixed_point_weights(np.array([0.0, 1.0, 0.5]), n_users=2**31 - 1)
    assert w.tolist() == [0, 2**31, 2**30]  # 31 bits left for the sum over 2**31 users
    assert fixed_point_weights(np.array([1.0]), 10)[0] == 2**52
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fixed_point_weights(np.array([1.5]), 10)


def test_item_sets_must_not_repeat_a_pair():
    with pytest.raises(ValueError, match="distinct"):
        item_sets_csr(np.array([0, 0]), np.array([1, 1]), 1, 2)
    with pytest.raises(ValueError, match="item ids outside"):
        item_sets_csr(np.array([0]), np.array([5]), 1, 2)
