"""Rankings from a fitted model, on Spark: the candidate rows with their features, scored and
ordered per user in the same `mapInArrow` task that computes their per-user features
(udfs/pair_features.py), the model text broadcast once. One shuffle (the candidates by user);
nothing per user runs on the driver, and a task holds one block of users at a time."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import score_column


def learned_rankings(
    candidates,
    train,
    items,
    graph_edges,
    sources: Sequence[str],
    model_text: str,
    names: Sequence[str],
    recent_fraction: float,
    half_life: float = 10.0,
    **inputs,
):
    """The candidates ordered by a LightGBM model's score (`model_text`, over the features
    `names`): DataFrame[user_id, item_id, rank, score, candidate_score, *score_<s>], per user
    1 = the highest score (ties: the better candidate rank), rows in (user, rank) order
    within each partition. The features are candidate_features' (`inputs`: pair_rows'
    item_vecs, llm_scores, summary_embeddings, partitions); a feature the model
    knows but this run lacks (a source switched off) is null."""
    from pipelines.ranker.features import pair_rows
    from udfs.pair_features import ranked_batches

    rows, edges, _ = pair_rows(
        candidates, train, items, graph_edges, sources, recent_fraction,
        half_life=half_life, text="text_cos" in names, **inputs,
    )  # fmt: skip
    names, keep = list(names), [score_column(s) for s in sources]
    text = rows.sparkSession.sparkContext.broadcast(model_text)
    schema = ", ".join(
        ["user_id string", "item_id string", "rank int", "score double", "candidate_score double"]
        + [f"{c} double" for c in keep]
    )
    return rows.mapInArrow(
        lambda batches: ranked_batches(batches, sources, edges.value, text.value, names, keep),
        schema,
    )
