"""Counting int64 keys in bounded memory: sorted distinct keys and their multiplicities.

Executor-side kernel: numpy only.  Used by the broadcast walk kernel (visit counts per
(source, node) key) and by the distributed strategy's top-k (visits per (src, dst) pair).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KeyCounter", "merge_counts", "run_lengths"]


def run_lengths(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and their multiplicities of a sorted array.  O(k)."""
    k = sorted_keys.shape[0]
    if k == 0:
        return sorted_keys[:0].astype(np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    starts = np.concatenate(([0], starts))
    counts = np.diff(np.append(starts, k))
    return sorted_keys[starts].astype(np.int64), counts


def merge_counts(k1, c1, k2, c2) -> tuple[np.ndarray, np.ndarray]:
    """Merge two (sorted distinct keys, counts) pairs.  O(len1 + len2 * log len1)."""
    if k1.shape[0] < k2.shape[0]:  # insert the shorter into the longer
        k1, c1, k2, c2 = k2, c2, k1, c1
    if k2.shape[0] == 0:
        return k1, c1
    at = np.searchsorted(k1, k2)
    found = at < k1.shape[0]
    found[found] = k1[at[found]] == k2[found]
    c1 = c1.copy()
    c1[at[found]] += c2[found]
    new = ~found
    return np.insert(k1, at[new], k2[new]), np.insert(c1, at[new], c2[new])


class KeyCounter:
    """Counts keys in [0, nbins) in bounded memory.

    dense: ``np.bincount`` into nbins int64 counters (O(nbins + keys));
    sparse: keys go to a buffer of at most ``capacity`` entries (uint32 when nbins <= 2**32:
    half the bytes of int64 to sort and move); a full buffer is sorted in place and run-length
    encoded, and the partial counts are merged: O(keys log keys), memory O(capacity +
    distinct keys).
    """

    def __init__(self, nbins: int, capacity: int, dense: bool):
        self.nbins = nbins
        self.dense = dense
        self.counts = np.zeros(nbins, dtype=np.int64) if dense else None
        self.keys = np.empty(0, np.int64)
        self.kcounts = np.empty(0, np.int64)
        self.dtype = np.dtype(np.uint32) if nbins <= 2**32 else np.dtype(np.int64)
        self.buf = np.empty(max(capacity, 1), dtype=np.int64 if dense else self.dtype)
        self.off = 0

    def reserve(self, m: int) -> np.ndarray:
        """A buffer slice of length m to write keys into (``np.add(..., casting="unsafe")``)."""
        if self.off + m > self.buf.shape[0]:
            self.flush()
            if m > self.buf.shape[0]:
                self.buf = np.empty(m, dtype=self.buf.dtype)
        out = self.buf[self.off : self.off + m]
        self.off += m
        return out

    def flush(self) -> None:
        if self.off == 0:
            return
        chunk = self.buf[: self.off]
        self.off = 0
        if self.dense:
            self.counts += np.bincount(chunk, minlength=self.nbins)
        else:
            chunk.sort()
            keys, counts = run_lengths(chunk)
            self.keys, self.kcounts = merge_counts(self.keys, self.kcounts, keys, counts)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct keys (int64) and their counts."""
        self.flush()
        if self.dense:
            keys = np.flatnonzero(self.counts != 0)
            return keys, self.counts[keys]
        return self.keys, self.kcounts
