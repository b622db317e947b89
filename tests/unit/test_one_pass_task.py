"""The one-pass task (pipelines/candidates/one_pass.py `fuse_user_batch`) on Arrow batches,
against the plain-Python references of its two kernels, without Spark."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow as pa
import pytest

from pipelines.candidates.one_pass import TaskPlan, fuse_user_batch
from udfs.fuse_lists import fuse_lists_reference
from udfs.weighted_topk import csr_from_triples, weighted_row_sum_topk_reference

N_ITEMS = 20


def _table(rng, n_rows, levels):
    rows, cols, vals = [], [], []
    for i in range(n_rows):
        deg = int(rng.integers(0, 6))
        rows += [i] * deg
        cols += rng.choice(N_ITEMS, deg, replace=False).tolist()
        vals += rng.choice(levels, deg).tolist()
    return csr_from_triples(np.array(rows), np.array(cols), np.array(vals), n_rows)


def _batch(rng, n_users):
    """Users with 0..4 entries per source (nulls for none, as a left join gives), and seen
    lists (some null)."""
    cols = {"user_id": [f"u{u}" for u in range(n_users)]}
    for i in (0, 1):
        rows, ws = [], []
        for _ in range(n_users):
            m = int(rng.integers(0, 5))
            rows.append(None if m == 0 else rng.integers(0, N_ITEMS, m).tolist())
            ws.append(None if m == 0 else rng.choice([0.1, 0.25, 0.5, 0.3], m).tolist())
        cols[f"_r{i}"] = pa.array(rows, pa.list_(pa.int32()))
        cols[f"_w{i}"] = pa.array(ws, pa.list_(pa.float64()))
    seen = [None if u % 4 == 0 else rng.integers(0, N_ITEMS, 3).tolist() for u in range(n_users)]
    cols["seen"] = pa.array(seen, pa.list_(pa.int32()))
    return pa.RecordBatch.from_pydict(cols)


def _reference(rb, csrs, plan):
    """Each source's weighted_row_sum_topk_reference list, fused by fuse_lists_reference."""
    n = rb.num_rows
    d = rb.to_pydict()
    seen = [s or [] for s in d["seen"]]
    seen_offsets = np.cumsum([0] + [len(s) for s in seen])
    lists = []
    for i, csr in enumerate(csrs):
        c = plan.entries[i]
        if c is not None:
            rows = [r or [] for r in d[f"_r{c}"]]
            ws = [w or [] for w in d[f"_w{c}"]]
        else:
            rows, ws = [[0]] * n, [[1.0]] * n
        offsets = np.cumsum([0] + [len(r) for r in rows])
        got = weighted_row_sum_topk_reference(
            offsets,
            [x for r in rows for x in r],
            [x for w in ws for x in w],
            *csr,
            seen_offsets,
            [x for s in seen for x in s],
            plan.k,
            plan.positive_only[i],
        )
        lists.append(tuple(np.array([g[c] for g in got]) for c in range(3)))
    fused = fuse_lists_reference(
        lists, plan.names, plan.weights, plan.method, plan.rrf_k, plan.top_n
    )
    out = []
    for u, j, r, f, per in fused:
        sources = [name for name, x in zip(plan.names, per, strict=True) if x is not None]
        out.append((d["user_id"][u], j, r, f, sources, *per))
    return out


def _rows(rb):
    d = rb.to_pydict()
    return list(zip(*d.values(), strict=True))


@pytest.mark.parametrize("method", ["weighted", "rrf"])
@pytest.mark.parametrize("seed,k,top_n", [(0, 3, 5), (1, 6, 100), (2, 2, 1)])
def test_task_equals_the_references(seed, k, top_n, method):
    rng = np.random.default_rng(seed)
    csrs = [
        _table(rng, N_ITEMS, [-0.5, 0.25, 0.5, 1.0]),  # item -> item, signed
        _table(rng, N_ITEMS, [0.1, 0.2, 0.4]),
        # popular: one row, every user sums it with weight 1
        csr_from_triples(np.zeros(8), rng.choice(N_ITEMS, 8, replace=False), np.arange(8.0), 1),
    ]
    plan = TaskPlan(
        names=("item_cf", "transition", "popular"),
        weights=(2.0, 1.5, 0.25),
        entries=(0, 1, None),
        positive_only=(False, True, False),
        k=k,
        method=method,
        rrf_k=60.0,
        top_n=top_n,
    )
    rb = _batch(rng, 12)
    out = fuse_user_batch(rb, csrs, plan)
    assert out.schema.names == [
        "user_id",
        "item_idx",
        "rank",
        "score",
        "sources",
        "score_item_cf",
        "score_transition",
        "score_popular",
    ]
    got = _rows(out)
    assert got == _reference(rb, csrs, plan)  # bit-identical
    assert all(not math.isnan(x) for r in got for x in r[5:] if x is not None)
    # Two sources with the same entries read one pair of columns.
    shared = dataclasses.replace(plan, entries=(0, 0, None))
    assert _rows(fuse_user_batch(rb, csrs, shared)) == _reference(rb, csrs, shared)
    # A slice of the batch gives that slice's users' rows (tasks fuse in slices).
    part = _rows(fuse_user_batch(rb.slice(5, 4), csrs, plan))
    assert part == [r for r in got if r[0] in {f"u{u}" for u in range(5, 9)}]


def test_non_finite_input_is_an_error_naming_the_source():
    from types import SimpleNamespace

    from pipelines.candidates.broadcast_topk import RowSum
    from pipelines.candidates.one_pass import fused_candidates

    good = csr_from_triples(np.zeros(2), np.array([1, 2]), np.array([1.0, 2.0]), 1)
    bad = csr_from_triples(np.zeros(2), np.array([1, 2]), np.array([1.0, np.inf]), 1)
    inputs = SimpleNamespace(spark=None, per_source=3)  # raised before Spark is touched
    forms = {"ppr": RowSum(None, good), "popular": RowSum(None, bad)}
    with pytest.raises(ValueError, match=r"candidate source 'popular' produced a non-finite"):
        fused_candidates(inputs, forms, {}, "weighted", 60.0, 10)

    rng = np.random.default_rng(0)
    rb = _batch(rng, 4)
    ws = rb.column("_w1").to_pylist()
    ws = [None if w is None else [float("nan")] * len(w) for w in ws]
    rb = rb.set_column(
        rb.schema.get_field_index("_w1"), "_w1", pa.array(ws, pa.list_(pa.float64()))
    )
    table = _table(rng, N_ITEMS, [0.5, 1.0])
    plan = TaskPlan(("ppr", "item_cf"), (1.0, 1.0), (0, 1), (False, False), 3, "rrf", 60.0, 5)
    with pytest.raises(ValueError, match=r"candidate source 'item_cf': score must not contain NaN"):
        fuse_user_batch(rb, [table, table], plan)


def test_forms_with_equal_entries_keys_share_a_column():
    from pipelines.candidates.broadcast_topk import RowSum
    from pipelines.candidates.one_pass import entry_columns

    csr = csr_from_triples(np.zeros(1), np.array([1]), np.array([1.0]), 1)
    forms = {
        "transition": RowSum("e0", csr, entries_key=("recent", 2, 0.5)),
        "ppr": RowSum("e1", csr, entries_key=("recent", 10, 0.7)),
        "item_cf": RowSum("e2", csr, entries_key=("recent", 10, 0.7)),
        "user_cf": RowSum("e3", csr),
        "popular": RowSum(None, csr),
    }
    assert entry_columns(forms) == (0, 1, 1, 3, None)
