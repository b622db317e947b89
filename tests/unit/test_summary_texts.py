"""What summary_embeddings embeds: non-empty summaries without an error, hashed with the
encoder (an unchanged hash is what the stage reuses)."""

from __future__ import annotations

import polars as pl

from pipelines.stages.summary_embeddings import summary_texts
from udfs.text_vectors import text_hash


def test_summary_texts_keep_non_empty_summaries_without_error():
    rows = pl.DataFrame(
        {
            "user_id": ["a", "b", "c", "d"],
            "summary": ["  likes jazz ", "", "likes rock", "   "],
            "error": [None, None, "timeout", None],
        }
    )
    out = summary_texts(rows, "enc1")
    assert out["user_id"].to_list() == ["a"]
    assert out["text"].to_list() == ["likes jazz"]
    assert out["text_hash"].to_list() == [text_hash("likes jazz", "enc1")]
    # Another encoder, another hash: its rows are embedded again, not reused.
    assert summary_texts(rows, "enc2")["text_hash"][0] != out["text_hash"][0]
