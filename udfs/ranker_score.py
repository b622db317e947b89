"""Scoring candidate rows with a fitted LightGBM model, batch by batch (executor side).

`score_batches` is the body of a `mapInArrow` task: the model text arrives once (broadcast),
the booster is built once per task, and each Arrow batch becomes a batch of
(user_id, item_id, score). Memory: one batch of features at a time (rows x features
doubles). Cost: O(rows x trees x depth).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa


def feature_matrix(batch: pa.RecordBatch | pa.Table, names: Sequence[str]) -> np.ndarray:
    """The feature columns as a float64 matrix, nulls as NaN (LightGBM's missing value)."""
    cols = []
    for n in names:
        col = batch.column(n)
        cols.append(col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
    return np.column_stack(cols) if cols else np.empty((batch.num_rows, 0))


def score_batches(
    batches: Iterator[pa.RecordBatch],
    model_text: str,
    names: Sequence[str],
    keep: Sequence[str] = (),
) -> Iterator[pa.RecordBatch]:
    """Batches with user_id, item_id, the features and the `keep` columns -> (user_id,
    item_id, *keep, score) batches."""
    import lightgbm as lgb

    booster = lgb.Booster(model_str=model_text)
    out = ["user_id", "item_id", *keep]
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pred = booster.predict(feature_matrix(batch, names), num_threads=1)
        yield pa.RecordBatch.from_arrays(
            [*(batch.column(c) for c in out), pa.array(pred, pa.float64())],
            names=[*out, "score"],
        )
