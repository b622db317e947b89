"""udfs.multihop against its plain-Python definition on random graphs."""

from __future__ import annotations

import numpy as np
import pytest

from udfs.multihop import multi_hop_reference, multi_hop_topk


def _random_csr(seed, n=30, max_deg=6):
    rng = np.random.default_rng(seed)
    indptr, indices, prob = [0], [], []
    for i in range(n):
        deg = 0 if i % 7 == 3 else int(rng.integers(1, max_deg + 1))  # some sinks
        dst = np.sort(rng.choice(n, deg, replace=False))
        w = rng.random(deg)
        indices.extend(dst.tolist())
        prob.extend((w / w.sum()).tolist() if deg else [])
        indptr.append(len(indices))
    return np.array(indptr, np.int64), np.array(indices, np.int32), np.array(prob)


@pytest.mark.parametrize(
    "seed,hops,beam,k", [(0, 1, 5, 4), (1, 2, 3, 6), (2, 3, 4, 10), (3, 3, 100, 30)]
)
def test_kernel_equals_reference(seed, hops, beam, k):
    indptr, indices, prob = _random_csr(seed)
    sources = [0, 3, 5, 9, 29, 5]  # 3 is a sink; a repeated source is answered twice
    s, d, sc, r = multi_hop_topk(
        indptr, indices, prob, np.unique(sources), hops=hops, hop_decay=0.6, beam=beam, k=k
    )
    for src in np.unique(sources):
        want = multi_hop_reference(
            indptr, indices, prob, int(src), hops=hops, hop_decay=0.6, beam=beam, k=k
        )
        sel = s == src
        assert d[sel].tolist() == [j for j, _ in want], src
        assert sc[sel] == pytest.approx([v for _, v in want], rel=1e-12)
        assert r[sel].tolist() == list(range(1, len(want) + 1))
    assert not (s == 3).any()  # a sink reaches nothing


def test_one_hop_is_the_transition_row():
    indptr, indices, prob = _random_csr(4)
    s, d, sc, _ = multi_hop_topk(indptr, indices, prob, [1], hops=1, hop_decay=0.5, beam=1, k=100)
    row = dict(
        zip(
            indices[indptr[1] : indptr[2]].tolist(),
            prob[indptr[1] : indptr[2]].tolist(),
            strict=True,
        )
    )
    row.pop(1, None)
    assert dict(zip(d.tolist(), sc.tolist(), strict=True)) == pytest.approx(row)


@pytest.mark.parametrize("seed", range(3))
def test_many_sources_on_a_larger_graph_equal_the_definition(seed):
    indptr, indices, prob = _random_csr(100 + seed, n=300, max_deg=12)
    sources = np.arange(0, 300, 3)
    kw = dict(hops=3, hop_decay=0.5, beam=7, k=15)
    s, d, sc, r = multi_hop_topk(indptr, indices, prob, sources, **kw)
    assert (np.diff(s) >= 0).all()
    for src in sources:
        want = multi_hop_reference(
            indptr,
            indices,
            prob,
            int(src),
            **{x: kw[x] for x in ("hops", "hop_decay", "beam", "k")},
        )
        sel = s == src
        assert d[sel].tolist() == [j for j, _ in want]
        assert sc[sel] == pytest.approx([v for _, v in want], rel=1e-12)


def test_walks_that_all_end_in_sinks():
    """Sinks only, and a source whose one out-edge leads to a sink: the frontier empties
    before the last hop; the kernel answers what the definition answers."""
    # 0 -> 1 (sink); 2 -> 0; 3, 4 sinks; 5 -> 2, 4
    indptr = np.array([0, 1, 1, 2, 2, 2, 4], np.int64)
    indices = np.array([1, 0, 2, 4], np.int32)
    prob = np.array([1.0, 1.0, 0.5, 0.5])
    kw = dict(hops=3, hop_decay=0.5, beam=2, k=5)
    for sources in ([3, 4], [0], [0, 2, 3, 5]):
        s, d, sc, _ = multi_hop_topk(indptr, indices, prob, sources, **kw)
        for src in sources:
            want = multi_hop_reference(indptr, indices, prob, src, **kw)
            sel = s == src
            assert d[sel].tolist() == [j for j, _ in want]
            assert sc[sel] == pytest.approx([v for _, v in want], rel=1e-12)
