"""What the learned ranker reads besides candidates, for rank and fit_ranker alike: the item
embedding matrix (text and summary features), the LLM scores and the summary embeddings.

A model trained with a feature needs that feature's table among the run's inputs; when the
setting that plans the table is off, the error names it.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import ConfigError
from pipelines.stage import StageContext


def _feature_table(ctx: StageContext, table: str, feature: str, setting: str) -> None:
    if table not in ctx.stage.inputs_for(ctx.config):
        raise ConfigError(
            f"the ranker uses the feature {feature} but this run does not read {table}",
            hint=f"--set {setting}=true",
        )


def text_vectors(ctx: StageContext, wanted: bool) -> Any:
    """The item embedding matrix for the text and summary features, when the model uses one."""
    from pipelines.ranker.artifact import item_vector_matrix

    if not wanted:
        return None
    _feature_table(ctx, "item_embeddings", "text_cos", "rank.text_features")
    n_items = ctx.manifest("items")["rows"]
    return item_vector_matrix(ctx.read_arrow("item_embeddings", ["item_idx", "embedding"]), n_items)


def llm_score_table(ctx: StageContext, wanted: bool, table: str = "llm_scores") -> Any:
    """The llm_scores table (Spark; `table` may name a nested run's), when the model uses the
    LLM score feature."""
    if not wanted:
        return None
    _feature_table(ctx, table, "llm_score", "rank.llm_feature")
    return ctx.read_spark(table)


def summary_table(ctx: StageContext, wanted: bool, table: str = "summary_embeddings") -> Any:
    """The summary_embeddings table (Spark), when the model uses the summary feature."""
    if not wanted:
        return None
    _feature_table(ctx, table, "summary_cos", "rank.summary_feature")
    return ctx.read_spark(table)
