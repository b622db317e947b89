"""LightGBM's input from Arrow columns (executor side): the matrix a fitted booster scores
(udfs/pair_features.py). O(rows x features) to copy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def feature_matrix(batch: pa.RecordBatch | pa.Table, names: Sequence[str]) -> np.ndarray:
    """The feature columns as a float64 matrix, nulls as NaN (LightGBM's missing value)."""
    cols = []
    for n in names:
        col = batch.column(n)
        cols.append(col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
    return np.column_stack(cols) if cols else np.empty((batch.num_rows, 0))
