"""top_k_per_source against its plain-Python reference (ties, self rows, both code paths)."""

from __future__ import annotations

import numpy as np
import pytest

import udfs.topk as topk_mod
from udfs.topk import top_k_per_source, top_k_per_source_reference


def _random_coo(rng, n_rows, n_src, n_dst, n_levels, *, id_offset=0):
    src = rng.integers(0, n_src, n_rows) + id_offset
    dst = rng.integers(0, n_dst, n_rows) + id_offset
    key = np.unique(src.astype(np.int64) * (n_dst + id_offset + 1) + dst)  # distinct pairs
    src = key // (n_dst + id_offset + 1)
    dst = key % (n_dst + id_offset + 1)
    perm = rng.permutation(key.shape[0])  # input order must not matter
    score = rng.integers(0, n_levels, key.shape[0]) / n_levels  # few levels -> many ties
    return src[perm], dst[perm], score[perm]


def _assert_same(got, want):
    names = ("src", "dst", "score", "rank")
    for name, g, w in zip(names, got, want, strict=True):
        assert g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_matches_reference_with_ties(seed, k, exclude_self):
    rng = np.random.default_rng(seed)
    src, dst, score = _random_coo(rng, 3000, 40, 60, n_levels=4 + seed)
    got = top_k_per_source(src, dst, score, k, exclude_self=exclude_self)
    _assert_same(got, top_k_per_source_reference(src, dst, score, k, exclude_self=exclude_self))
    # Contract: sorted by (src, rank), ranks 1..min(k, group size), scores non-increasing.
    s, d, x, r = got
    assert (np.diff(s) >= 0).all()
    first = np.concatenate(([True], s[1:] != s[:-1]))
    assert (r[first] == 1).all() and (r[~first] == r[np.flatnonzero(~first) - 1] + 1).all()
    assert r.max() <= k
    same = ~first
    assert (x[same] <= x[np.flatnonzero(same) - 1]).all()
    if exclude_self:
        assert (s != d).all()


def test_large_ids_and_lexsort_fallback(monkeypatch):
    rng = np.random.default_rng(7)
    src, dst, score = _random_coo(rng, 4000, 30, 50, n_levels=5, id_offset=2_000_000_000)
    score = score + rng.random(score.shape[0]) * (rng.random(score.shape[0]) < 0.5)
    want = top_k_per_source_reference(src, dst, score, 5)
    _assert_same(top_k_per_source(src, dst, score, 5), want)  # unique-code path
    monkeypatch.setattr(topk_mod, "PACKED_KEY_MAX", 0)  # force the lexsort fallback
    _assert_same(top_k_per_source(src, dst, score, 5), want)


def test_tie_break_by_dst_and_negative_zero():
    src = np.array([5, 5, 5, 5, 5, 1, 1])
    dst = np.array([9, 3, 7, 5, 2, 4, 8])
    score = np.array([0.5, 0.5, 0.9, 1.0, -0.0, 0.0, 0.0])
    s, d, x, r = top_k_per_source(src, dst, score, 3)
    np.testing.assert_array_equal(s, [1, 1, 5, 5, 5])
    np.testing.assert_array_equal(d, [4, 8, 7, 3, 9])  # src 5: self row (dst 5) dropped
    np.testing.assert_array_equal(x, [0.0, 0.0, 0.9, 0.5, 0.5])
    np.testing.assert_array_equal(r, [1, 2, 1, 2, 3])


def test_empty_and_k_zero():
    for args in (([], [], [], 3), ([1], [1], [0.3], 3), ([1], [2], [0.3], 0)):
        out = top_k_per_source(*args)
        assert [a.shape[0] for a in out] == [0, 0, 0, 0]
        assert [a.dtype for a in out] == [np.int32, np.int32, np.float64, np.int32]


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        top_k_per_source([1, 2], [3], [0.1, 0.2], 1)
    with pytest.raises(ValueError):
        top_k_per_source([1], [2], [np.nan], 1)
    with pytest.raises(ValueError):
        top_k_per_source([1], [2], [0.1], -1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("capacity", [7, 1000, 1 << 16])
def test_visit_share_top_k_from_streamed_pairs(seed, capacity):
    """The distributed strategy's top-k: (src, dst) events streamed through KeyCounter in
    chunks, ranked by share of the source's events -- against a plain-Python count."""
    from collections import Counter

    from udfs.key_counter import KeyCounter
    from udfs.topk import pair_keys, top_k_by_share

    rng = np.random.default_rng(seed)
    n = 4000
    src = rng.integers(0, 30, n) * 70_000_000  # ids up to ~2**31: the key packs 32 + 32 bits
    dst = np.where(rng.random(n) < 0.2, src, rng.zipf(1.6, n) % 50)
    counter = KeyCounter(2**63, capacity, dense=False)
    for lo in range(0, n, 333):  # Arrow batches of one task
        keys = pair_keys(src[lo : lo + 333], dst[lo : lo + 333])
        counter.reserve(keys.shape[0])[:] = keys
    got = top_k_by_share(*counter.result(), 5)

    pairs = Counter(zip(src.tolist(), dst.tolist(), strict=True))
    totals = Counter(src.tolist())
    rows = [(s, d, c / totals[s]) for (s, d), c in pairs.items()]
    want = top_k_per_source_reference(*map(np.array, zip(*rows, strict=True)), 5)
    _assert_same(got, want)
    assert got[0].size and (got[0] != got[1]).all()  # the source itself is never ranked


def test_pair_keys_rejects_ids_outside_int32():
    from udfs.topk import pair_keys

    with pytest.raises(ValueError, match="2\\*\\*31"):
        pair_keys(np.array([2**31]), np.array([1]))
    with pytest.raises(ValueError, match="2\\*\\*31"):
        pair_keys(np.array([1]), np.array([-1]))
