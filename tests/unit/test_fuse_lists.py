"""udfs.fuse_lists against its plain-Python definition, and a hand-checked example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from udfs.fuse_lists import fuse_lists, fuse_lists_reference

NAMES = ["transition", "ppr", "item_cf", "user_cf", "popular"]
WEIGHTS = [2.0, 1.0, 2.0, 1.0, 0.25]


def _random_lists(rng, n_users=15, n_items=30, k=8):
    """Per source, per user up to k distinct items with scores from a few levels (ties within
    and across sources), negative and zero scores; every source misses some users, and one
    user's item_cf list is all <= 0 (nothing to normalise by)."""
    lists = []
    levels = np.array([-1.0, -0.25, 0.0, 0.1, 0.25, 0.5, 1.0, 3.0])
    for s in range(len(NAMES)):
        users, items, scores = [], [], []
        for u in range(n_users):
            if rng.random() < 0.25:  # the user is missing from this source
                continue
            m = int(rng.integers(1, k + 1))
            js = rng.choice(n_items, m, replace=False)
            xs = rng.choice(levels, m)
            if s == 2 and u == 3:
                xs = -np.abs(xs)
            users += [u] * m
            items += js.tolist()
            scores += xs.tolist()
        perm = rng.permutation(len(users))  # the row order must not matter
        lists.append(tuple(np.array(a)[perm] for a in (users, items, scores)))
    return lists


def _rows(out):
    user, item, rank, score, per_source = out
    return [
        (u, j, r, f, [None if math.isnan(x) else x for x in ps])
        for u, j, r, f, ps in zip(
            user.tolist(),
            item.tolist(),
            rank.tolist(),
            score.tolist(),
            per_source.tolist(),
            strict=True,
        )
    ]


@pytest.mark.parametrize("method", ["weighted", "rrf"])
@pytest.mark.parametrize("seed,top_n", [(0, 3), (1, 10), (2, 1), (3, 500), (4, 0)])
def test_kernel_equals_reference(seed, top_n, method):
    rng = np.random.default_rng(seed)
    lists = _random_lists(rng)
    got = _rows(fuse_lists(lists, NAMES, WEIGHTS, method, 60.0, top_n))
    want = fuse_lists_reference(lists, NAMES, WEIGHTS, method, 60.0, top_n)
    # The same double operations in the same order: bit-identical, not just close.
    assert got == want
    # Lists already in (user, score desc, item) order, as the kernels give them, skip a sort.
    ordered = []
    for user, item, score in lists:
        o = np.lexsort((item, -score, user))
        ordered.append((user[o], item[o], score[o]))
    assert _rows(fuse_lists(ordered, NAMES, WEIGHTS, method, 60.0, top_n)) == want
    per_user = {}
    for u, _, r, _, _ in got:
        per_user.setdefault(u, []).append(r)
    assert all(rs == list(range(1, len(rs) + 1)) for rs in per_user.values())
    if top_n == 500:  # larger than every union: each user keeps every item any source has
        union = {(int(u), int(j)) for us, js, _ in lists for u, j in zip(us, js, strict=True)}
        assert {(u, j) for u, j, *_ in got} == union
    if top_n == 0:
        assert got == []


def test_repeated_pair_keeps_its_max_like_the_spark_aggregation():
    rng = np.random.default_rng(7)
    lists = _random_lists(rng)
    u, j, x = lists[1]
    lists[1] = (np.append(u, u[:4]), np.append(j, j[:4]), np.append(x, x[:4] - 0.5))
    for method in ("weighted", "rrf"):
        got = _rows(fuse_lists(lists, NAMES, WEIGHTS, method, 60.0, 20))
        assert got == fuse_lists_reference(lists, NAMES, WEIGHTS, method, 60.0, 20)


def test_hand_example():
    """User 0: a = {1: 2.0, 2: -1.0}, b = {3: 1.0, 1: 1.0}; user 1: a = {1: -0.5, 2: -2.0}."""
    a = (np.array([0, 0, 1, 1]), np.array([1, 2, 1, 2]), np.array([2.0, -1.0, -0.5, -2.0]))
    b = (np.array([0, 0]), np.array([3, 1]), np.array([1.0, 1.0]))
    user, item, rank, score, per = fuse_lists([a, b], ["a", "b"], [1.0, 0.5], "weighted", 60, 5)
    assert user.tolist() == [0, 0, 0, 1, 1]
    # item 1: 1.0 · 2/2 + 0.5 · 1/1; item 3: 0.5 · 1/1; item 2: 1.0 · -1/2. User 1's best a
    # score is -0.5: a adds 0 to both items, which then tie and go by item.
    assert item.tolist() == [1, 3, 2, 1, 2]
    assert score.tolist() == [1.0 + 0.5, 0.5, -0.5, 0.0, 0.0]
    assert rank.tolist() == [1, 2, 3, 1, 2]
    nan_as_none = [[None if math.isnan(x) else x for x in row] for row in per.tolist()]
    assert nan_as_none == [[2.0, 1.0], [None, 1.0], [-1.0, None], [-0.5, None], [-2.0, None]]
    # rrf: b ranks its tie (3 and 1 at 1.0) by item: 1 first.
    _, item, _, score, _ = fuse_lists([a, b], ["a", "b"], [1.0, 0.5], "rrf", 60, 5)
    assert item.tolist()[:3] == [1, 2, 3]
    assert score.tolist()[:3] == [1.0 / 61 + 0.5 / 61, 1.0 / 62, 0.5 / 62]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_score_is_an_error_naming_the_source(bad):
    good = (np.array([0]), np.array([1]), np.array([0.5]))
    broken = (np.array([0, 0]), np.array([3, 1]), np.array([bad, 0.1]))
    for fn in (fuse_lists, fuse_lists_reference):
        with pytest.raises(ValueError, match=r"candidate source 'user_cf' produced a non-finite"):
            fn([good, broken], ["ppr", "user_cf"], [1.0, 1.0], "weighted", 60.0, 10)


def test_empty_and_bad_input():
    empty = (np.array([], int), np.array([], int), np.array([]))
    user, item, rank, score, per = fuse_lists([empty, empty], ["a", "b"], [1, 1], "rrf", 60, 5)
    assert user.size == item.size == rank.size == score.size == 0 and per.shape == (0, 2)
    with pytest.raises(ValueError, match="one entry per source"):
        fuse_lists([empty], ["a", "b"], [1, 1], "rrf", 60, 5)
    with pytest.raises(ValueError, match="'weighted' or 'rrf'"):
        fuse_lists([empty], ["a"], [1], "sum", 60, 5)
