"""Item text and text vectors: what an item's embedding is computed from, its hash, and the
user side (a recency-weighted mean of the user's history item embeddings); pure numpy, each
with a plain-Python reference twin (`*_reference`) that tests compare against.

Layout of per-user histories (CSR): user u's events are positions offsets[u]:offsets[u + 1]
of `item_rows` (rows of the item vector matrix, oldest event first; -1 for an item without
an embedding) and of `weights`.

Cost, with E history events in all, U users and d dimensions:
- history_weights:   O(E) time and memory
- user_text_vectors, weighted_unit_sums: O(E·d) time; O(E·d + U·d) memory (the weighted
                     rows, then the sums): call them on chunks of users when E·d is large
"""

from __future__ import annotations

import hashlib

import numpy as np

TEXT_SEPARATOR = ". "


def item_text(title: str | None, text: str | None) -> str | None:
    """The text an item is embedded from: its title and its text, each stripped, joined by
    ". " (just a space when the title already ends a sentence); None when both are empty."""
    parts = [p.strip() for p in (title, text) if p is not None and p.strip()]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    head, tail = parts
    sep = " " if head[-1] in ".!?:;" else TEXT_SEPARATOR
    return f"{head}{sep}{tail}"


def text_hash(text: str, encoder_key: str) -> str:
    """Hash of the exact text and the encoder that embeds it (model, settings): equal hashes
    mean an embedding can be reused."""
    return hashlib.sha256(f"{encoder_key}\x00{text}".encode()).hexdigest()[:32]


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero); float64 accumulation."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.where(norms > 0, norms, 1.0)[:, None]


def history_weights(offsets: np.ndarray, half_life: float) -> np.ndarray:
    """Per event of a CSR history: 0.5 ** (age / half_life), age = events after it in the
    same user's history (0 for the newest)."""
    if half_life <= 0:
        raise ValueError(f"half_life must be > 0, got {half_life}")
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    total = int(offsets[-1]) if len(offsets) else 0
    ends = np.repeat(offsets[1:], counts)  # one past each event's user's last event
    age = ends - 1 - np.arange(offsets[0] if len(offsets) else 0, total)
    return 0.5 ** (age / half_life)


def user_text_vectors(
    offsets: np.ndarray, item_rows: np.ndarray, weights: np.ndarray, item_vecs: np.ndarray
) -> np.ndarray:
    """(U x d) float32: `weighted_unit_sums` of the user's history item embeddings."""
    return weighted_unit_sums(offsets, item_rows, weights, item_vecs).astype(np.float32)


def weighted_unit_sums(
    offsets: np.ndarray, item_rows: np.ndarray, weights: np.ndarray, item_vecs: np.ndarray
) -> np.ndarray:
    """(U x d) float64: per user, the direction of the weighted sum of the vectors of their
    history items (rows < 0, items without a vector, are left out), L2-normalised; a zero
    row for a user with no history item that has a vector. Each user's terms are added in
    their CSR order."""
    offsets = np.asarray(offsets, dtype=np.int64)
    rows = np.asarray(item_rows, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    vecs = np.asarray(item_vecs)
    n_users, d = len(offsets) - 1, vecs.shape[1]
    if rows.shape != w.shape or len(rows) != offsets[-1] - offsets[0]:
        raise ValueError("item_rows and weights must have one entry per history event")
    seg = np.repeat(np.arange(n_users), np.diff(offsets))
    keep = rows >= 0
    seg, rows, w = seg[keep], rows[keep], w[keep]
    sums = np.zeros((n_users, d), dtype=np.float64)
    if rows.size:
        weighted = vecs[rows].astype(np.float64) * w[:, None]
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])  # seg is non-decreasing
        sums[seg[starts]] = np.add.reduceat(weighted, starts, axis=0)
    # The mean divides by the weight sum, a positive per-user factor: normalising removes it.
    return l2_normalize(sums)


# ---- plain-Python reference twins (tests) ----


def history_weights_reference(offsets: list[int], half_life: float) -> list[float]:
    out = []
    for u in range(len(offsets) - 1):
        n = offsets[u + 1] - offsets[u]
        out += [0.5 ** ((n - 1 - p) / half_life) for p in range(n)]
    return out


def user_text_vectors_reference(
    offsets: list[int], item_rows: list[int], weights: list[float], item_vecs: list[list[float]]
) -> list[list[float]]:
    d = len(item_vecs[0]) if item_vecs else 0
    out = []
    for u in range(len(offsets) - 1):
        acc, total = [0.0] * d, 0.0
        for e in range(offsets[u], offsets[u + 1]):
            if item_rows[e] < 0:
                continue
            total += weights[e]
            for j in range(d):
                acc[j] += weights[e] * item_vecs[item_rows[e]][j]
        mean = [v / total for v in acc] if total > 0 else acc
        norm = sum(v * v for v in mean) ** 0.5
        out.append([v / norm for v in mean] if norm > 0 else [0.0] * d)
    return out


def history_affinity_batches(
    batches, item_vecs: np.ndarray, half_life: float
):  # Iterator[pa.RecordBatch] -> Iterator[pa.RecordBatch]
    """The text-affinity feature, per user in a `mapInArrow` task: rows (user_id, hist: the
    user's train item_idx oldest first, cand_id, cand_idx: the candidates) -> rows
    (user_id, item_id, text_cos) = cosine(recency-weighted history vector, item vector), null
    where the item or the whole history has no vector (a zero row of `item_vecs`).
    Cost: O((history + candidates) x d) per user."""
    import pyarrow as pa

    has = np.einsum("ij,ij->i", item_vecs, item_vecs) > 0
    unit = l2_normalize(item_vecs)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        hist = batch.column("hist")
        offsets = np.asarray(hist.offsets, dtype=np.int64)
        offsets = offsets - offsets[0]  # a batch may be a slice of its list arrays
        rows = np.asarray(hist.flatten(), dtype=np.int64)
        rows = np.where(has[rows], rows, -1)
        users = user_text_vectors(offsets, rows, history_weights(offsets, half_life), item_vecs)
        cands = batch.column("cand_idx")
        c_off = np.asarray(cands.offsets, dtype=np.int64)
        c_rows = np.asarray(cands.flatten(), dtype=np.int64)
        per_user = np.repeat(np.arange(batch.num_rows), np.diff(c_off))
        cos = np.einsum("ij,ij->i", users[per_user].astype(np.float64), unit[c_rows])
        valid = has[c_rows] & (np.abs(users[per_user]).sum(axis=1) > 0)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(
                    np.repeat(
                        np.asarray(batch.column("user_id").to_pylist(), dtype=object),
                        np.diff(c_off),
                    ),
                    pa.string(),
                ),
                batch.column("cand_id").flatten(),
                pa.array(cos, pa.float64(), mask=~valid),
            ],
            names=["user_id", "item_id", "text_cos"],
        )


def summary_affinity_batches(batches, item_vecs: np.ndarray):
    # Iterator[pa.RecordBatch] -> Iterator[pa.RecordBatch]
    """The summary-affinity feature, per user in a `mapInArrow` task: rows (user_id,
    embedding: the user's summary vector, cand_id, cand_idx: the candidates) -> rows
    (user_id, item_id, summary_cos) = cosine(summary vector, item vector), null where the
    item has no vector (a zero row of `item_vecs`) or the summary vector is zero.
    Cost: O(candidates x d) per user."""
    import pyarrow as pa

    has = np.einsum("ij,ij->i", item_vecs, item_vecs) > 0
    unit = l2_normalize(item_vecs)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        flat = np.asarray(batch.column("embedding").flatten(), dtype=np.float64)
        users = l2_normalize(flat.reshape(batch.num_rows, -1))
        if users.shape[1] != unit.shape[1]:
            raise ValueError(
                f"summary vectors have {users.shape[1]} dimensions, item vectors "
                f"{unit.shape[1]}: embed both with the same encoder (embeddings.model)"
            )
        cands = batch.column("cand_idx")
        c_off = np.asarray(cands.offsets, dtype=np.int64)
        c_rows = np.asarray(cands.flatten(), dtype=np.int64)
        per_user = np.repeat(np.arange(batch.num_rows), np.diff(c_off))
        cos = np.einsum("ij,ij->i", users[per_user], unit[c_rows])
        valid = has[c_rows] & (np.abs(users[per_user]).sum(axis=1) > 0)
        ids = np.asarray(batch.column("user_id").to_pylist(), dtype=object)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(np.repeat(ids, np.diff(c_off)), pa.string()),
                batch.column("cand_id").flatten(),
                pa.array(cos, pa.float64(), mask=~valid),
            ],
            names=["user_id", "item_id", "summary_cos"],
        )
