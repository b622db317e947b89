"""udfs/text_vectors.py against its plain-Python twins: item text, history weights, the user's
recency-weighted text vector."""

from __future__ import annotations

import numpy as np
import pytest

from udfs.text_vectors import (
    history_weights,
    history_weights_reference,
    item_text,
    l2_normalize,
    text_hash,
    user_text_vectors,
    user_text_vectors_reference,
)


def test_item_text_joins_title_and_text_and_skips_empty_items():
    assert item_text("Toy car", "red, die-cast") == "Toy car. red, die-cast"
    assert item_text("Really?", "yes") == "Really? yes"  # the title ends a sentence already
    assert item_text("  Toy car ", None) == "Toy car"
    assert item_text(None, " only text ") == "only text"
    assert item_text("", "  ") is None and item_text(None, None) is None


def test_text_hash_depends_on_the_text_and_the_encoder():
    assert text_hash("a", "m1") == text_hash("a", "m1")
    assert len({text_hash("a", "m1"), text_hash("b", "m1"), text_hash("a", "m2")}) == 3


def _csr(rng: np.random.Generator, n_users: int, n_items: int):
    lengths = rng.integers(0, 7, n_users)
    lengths[0] = 0  # a user without history
    offsets = np.r_[0, np.cumsum(lengths)]
    rows = rng.integers(-1, n_items, offsets[-1])  # -1: an item without a vector
    if n_users > 1 and lengths[1]:
        rows[offsets[1] : offsets[2]] = -1  # a user whose items all lack vectors
    return offsets, rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_user_text_vectors_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    n_items, d = 15, 8
    vecs = l2_normalize(rng.normal(size=(n_items, d))).astype(np.float32)
    offsets, rows = _csr(rng, 12, n_items)
    for half_life in (0.5, 2.0, 10.0):
        w = history_weights(offsets, half_life)
        assert np.allclose(w, history_weights_reference(offsets.tolist(), half_life), rtol=1e-12)
        got = user_text_vectors(offsets, rows, w, vecs)
        ref = np.array(
            user_text_vectors_reference(offsets.tolist(), rows.tolist(), w.tolist(), vecs.tolist())
        )
        assert got.dtype == np.float32 and got.shape == (12, d)
        assert np.allclose(got, ref, atol=1e-6)
        norms = np.linalg.norm(got, axis=1)
        assert np.allclose(norms[norms > 0], 1.0, atol=1e-6)
        assert not got[0].any()  # no history: a zero row


def test_history_weights_halve_every_half_life():
    w = history_weights(np.array([0, 3, 4]), half_life=1.0)
    assert w.tolist() == [0.25, 0.5, 1.0, 1.0]  # oldest first; the newest weighs 1
    with pytest.raises(ValueError):
        history_weights(np.array([0, 1]), 0.0)


def test_the_newest_item_dominates_with_a_short_half_life():
    vecs = np.eye(3, dtype=np.float32)
    offsets, rows = np.array([0, 3]), np.array([0, 1, 2])
    got = user_text_vectors(offsets, rows, history_weights(offsets, 0.1), vecs)
    assert np.argmax(got[0]) == 2 and got[0, 2] > 0.999
