"""Every table contract of the pipeline (DESIGN.md, "Table contracts")."""

from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract, score_column

TS = pa.timestamp("us", tz="UTC")


def _contract(
    name: str,
    description: str,
    *cols: tuple[str, pa.DataType, bool, str],
    optional: tuple[tuple[str, pa.DataType, str], ...] = (),
    patterns: tuple[tuple[str, pa.DataType, str], ...] = (),
):
    """Required columns (name, type, nullable, doc); optional ones (name, type, doc) and
    patterned ones (prefix, type, doc) that a producer may add."""
    schema = pa.schema([pa.field(n, t, nullable=nullable) for n, t, nullable, _ in cols])
    docs = {n: doc for n, _, _, doc in cols}
    docs |= {n: doc for n, _, doc in optional} | {f"{p}*": doc for p, _, doc in patterns}
    return TableContract(
        name,
        schema,
        docs,
        description,
        optional=pa.schema([pa.field(n, t) for n, t, _ in optional]),
        patterns=tuple((p, t) for p, t, _ in patterns),
    )


EVENTS = _contract(
    "events",
    "Validated, deduplicated interactions with dense indices.",
    ("user_id", pa.string(), False, "original user id"),
    ("item_id", pa.string(), False, "original item id"),
    ("ts", TS, False, "event time (UTC); for sequence files the position in the sequence"),
    ("event_type", pa.string(), True, "optional event type (view, click, rating, ...)"),
    ("value", pa.float64(), True, "optional numeric value (rating, dwell, ...)"),
    ("user_idx", pa.int32(), False, "dense user index (internal)"),
    ("item_idx", pa.int32(), False, "dense item index (internal), = items.item_idx"),
)
TRAIN = TableContract(
    "train",
    EVENTS.schema,
    EVENTS.docs,
    "The events the models are fitted on for eval.target (all but the held-out rows).",
)
ITEMS = _contract(
    "items",
    "Item catalog: every item of the events plus catalog-only items.",
    ("item_id", pa.string(), False, "original item id"),
    ("item_idx", pa.int32(), False, "dense item index"),
    ("title", pa.string(), True, "title from the catalog, if any"),
    ("text", pa.string(), True, "free text (genres, description) from the catalog, if any"),
    ("popularity", pa.int64(), False, "number of accepted events of the item"),
)
QUARANTINE = _contract(
    "quarantine",
    "Input rows that were rejected, with the reason; nothing is dropped silently.",
    ("source", pa.string(), False, "input file"),
    ("line", pa.int64(), True, "1-based line number in the file (null for columnar inputs)"),
    ("raw", pa.string(), False, "the raw row (truncated to 1000 characters)"),
    ("reason", pa.string(), False, "why it was rejected"),
)
HOLDOUT = _contract(
    "holdout",
    "Held-out events: 'valid' for tuning, 'test' for reporting (empty in a serve run).",
    ("user_id", pa.string(), False, "original user id"),
    ("item_id", pa.string(), False, "original item id"),
    ("ts", TS, False, "event time"),
    ("split", pa.string(), False, "'valid' or 'test'"),
)
GRAPH_NODES = _contract(
    "graph_nodes",
    "Item-transition graph nodes (GraphFrames convention: id).",
    ("id", pa.int32(), False, "= item_idx"),
    ("item_id", pa.string(), False, "original item id"),
    ("out_degree", pa.int32(), False, "number of out-edges after pruning"),
    ("in_degree", pa.int32(), False, "number of in-edges after pruning"),
    ("out_weight", pa.float64(), False, "sum of out-edge weights after pruning"),
    optional=(
        ("popularity", pa.int64(), "train events of the item"),
        ("self_loops", pa.int64(), "forward self-loop transitions (repeated items)"),
    ),
)
GRAPH_EDGES = _contract(
    "graph_edges",
    "Item-transition graph edges (GraphFrames convention: src, dst).",
    ("src", pa.int32(), False, "source item_idx"),
    ("dst", pa.int32(), False, "destination item_idx"),
    ("weight", pa.float64(), False, "decayed transition weight"),
    ("count", pa.int64(), False, "number of transitions behind the edge"),
    ("prob", pa.float64(), False, "weight / out_weight of src"),
)
ITEM_PPR = _contract(
    "item_ppr",
    "Top-K personalized PageRank per source item.",
    ("src", pa.int32(), False, "source item_idx"),
    ("dst", pa.int32(), False, "target item_idx"),
    ("score", pa.float64(), False, "estimated PPR(src, dst)"),
    ("rank", pa.int32(), False, "1 = highest score"),
)
ITEM_NEIGHBORS = _contract(
    "item_neighbors",
    "Top-K similar items per item.",
    ("item_idx", pa.int32(), False, "item"),
    ("neighbor_idx", pa.int32(), False, "similar item"),
    ("sim", pa.float64(), False, "similarity"),
    ("rank", pa.int32(), False, "1 = most similar"),
)
USER_NEIGHBORS = _contract(
    "user_neighbors",
    "Top-K similar users per user.",
    ("user_id", pa.string(), False, "user"),
    ("neighbor_id", pa.string(), False, "similar user"),
    ("sim", pa.float64(), False, "similarity"),
    ("rank", pa.int32(), False, "1 = most similar"),
)
ITEM_EMBEDDINGS = _contract(
    "item_embeddings",
    "Text embeddings of the items that have a title or text (others get no row).",
    ("item_id", pa.string(), False, "original item id"),
    ("item_idx", pa.int32(), False, "dense item index, = items.item_idx"),
    (
        "text_hash",
        pa.string(),
        False,
        "hash of the exact text embedded and the encoder (model, max_length, dtype): "
        "an unchanged hash is reused by the next run",
    ),
    ("embedding", pa.list_(pa.float32()), False, "mean-pooled encoder output, L2-normalised"),
    ("model", pa.string(), False, "model path or id"),
)
SUMMARY_EMBEDDINGS = _contract(
    "summary_embeddings",
    "Text embeddings of the users' LLM summaries (users without a summary get no row).",
    ("user_id", pa.string(), False, "original user id"),
    (
        "text_hash",
        pa.string(),
        False,
        "hash of the exact summary embedded and the encoder: an unchanged hash is reused",
    ),
    ("embedding", pa.list_(pa.float32()), False, "mean-pooled encoder output, L2-normalised"),
    ("model", pa.string(), False, "model path or id"),
)
# The columns named score_column(source): every name with that prefix.
SOURCE_SCORES = (
    score_column(""),
    pa.float64(),
    "one column per candidate source: its score (null: not proposed)",
)
CANDIDATES = _contract(
    "candidates",
    "Multi-source candidates per user; one extra score column per source (score_<source>).",
    ("user_id", pa.string(), False, "original user id"),
    ("item_id", pa.string(), False, "original item id"),
    ("rank", pa.int32(), False, "1 = best"),
    ("score", pa.float64(), False, "fused score"),
    ("sources", pa.list_(pa.string()), False, "sources that proposed the item"),
    patterns=(SOURCE_SCORES,),
)
USER_SUMMARIES = _contract(
    "user_summaries",
    "Offline LLM-generated user preference summaries.",
    ("user_id", pa.string(), False, "original user id"),
    ("summary", pa.string(), False, "generated profile"),
    ("model", pa.string(), False, "model path or id"),
    ("prompt_version", pa.string(), False, "prompt template version"),
    ("history_fingerprint", pa.string(), False, "hash of the history the summary was made from"),
    ("n_history", pa.int32(), False, "history items in the prompt"),
    optional=(("error", pa.string(), "why no summary was made (null when it was)"),),
)
LLM_SCORES = _contract(
    "llm_scores",
    "Pointwise LLM relevance scores of candidates.",
    ("user_id", pa.string(), False, "original user id"),
    ("item_id", pa.string(), False, "original item id"),
    ("llm_score", pa.float64(), True, "logit(yes) - logit(no) or length-normalised log-likelihood"),
    ("model", pa.string(), False, "model path or id"),
    ("prompt_version", pa.string(), False, "prompt template version"),
    optional=(
        ("scorer", pa.string(), "yes_no or title_loglik"),
        ("error", pa.string(), "why the pair has no score (null when it has one)"),
        (
            "score_fingerprint",
            pa.string(),
            "hash of the user's prompt (summary, history, scored candidates) and the scoring "
            "settings: a user whose hash is unchanged keeps these scores in a later run",
        ),
    ),
)
RANKINGS = _contract(
    "rankings",
    "Final ranking per user; component scores as extra columns.",
    ("user_id", pa.string(), False, "original user id"),
    ("item_id", pa.string(), False, "original item id"),
    ("rank", pa.int32(), False, "1 = best"),
    ("score", pa.float64(), False, "final score"),
    optional=(
        ("candidate_score", pa.float64(), "the fused candidate score (rank stage)"),
        ("llm_score", pa.float64(), "the LLM score where one was computed (rank stage)"),
    ),
    patterns=(SOURCE_SCORES,),
)
FALLBACK_RANKINGS = _contract(
    "fallback_rankings",
    "One list for users the log has never seen: the candidates.top_n most popular train items "
    "(the popular source's window, candidates.popular.window_days).",
    ("item_id", pa.string(), False, "original item id"),
    ("rank", pa.int32(), False, "1 = best"),
    ("score", pa.float64(), False, "train events of the item in the window"),
)
METRICS = _contract(
    "metrics",
    "Offline evaluation: one row per table x metric x k x segment.",
    ("table", pa.string(), False, "'rankings' or 'candidates'"),
    (
        "metric",
        pa.string(),
        False,
        "hr, recall, precision, ndcg, mrr, map, coverage, gini, novelty; serve runs also "
        "users, catalog_items, recommended_items (counts, k = the largest cut-off)",
    ),
    ("k", pa.int32(), False, "cut-off"),
    ("segment", pa.string(), False, "'all' or a segment name"),
    ("value", pa.float64(), False, "metric value"),
    ("n_users", pa.int64(), False, "evaluated users in the segment"),
)
RANKER_MODEL = _contract(
    "ranker_model",
    "The learned ranker fitted for the run: one row per feature with its importance (empty when "
    "the fit pass had too few labelled users); the model itself is <run>/models/ranker/.",
    ("feature", pa.string(), False, "feature name, in the model's order"),
    ("gain", pa.float64(), False, "total split gain of the feature"),
    ("splits", pa.int64(), False, "number of splits on the feature"),
)
SERVED_METRICS = TableContract(
    "served_metrics",
    METRICS.schema,
    METRICS.docs,
    "A serve run's rankings scored against events that arrived after it "
    "(`walkrank evaluate RUN --against EVENTS`): each user's first new event is the target.",
)

CONTRACTS: dict[str, TableContract] = {
    c.name: c
    for c in (
        EVENTS,
        TRAIN,
        ITEMS,
        QUARANTINE,
        HOLDOUT,
        GRAPH_NODES,
        GRAPH_EDGES,
        ITEM_PPR,
        ITEM_NEIGHBORS,
        USER_NEIGHBORS,
        ITEM_EMBEDDINGS,
        SUMMARY_EMBEDDINGS,
        CANDIDATES,
        USER_SUMMARIES,
        LLM_SCORES,
        RANKER_MODEL,
        RANKINGS,
        FALLBACK_RANKINGS,
        METRICS,
        SERVED_METRICS,
    )
}


def contract(name: str) -> TableContract:
    """The contract of a table by name; the error lists the known tables."""
    try:
        return CONTRACTS[name]
    except KeyError:
        raise KeyError(
            f"no contract for table '{name}'; known tables: {sorted(CONTRACTS)}"
        ) from None
