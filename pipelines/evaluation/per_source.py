"""Per-source views of a candidates table: each source's own ranking and source overlap.

The candidates table has one `score_<source>` column per source (null where the source did
not propose the item); the sources, in column order, are in its manifest (`extra.sources`). A source's ranking is its non-null rows ordered by that column
(ties: item_id), so every source can be scored alone with the same metrics as the fusion.
It is the source's list as far as it survived the fused top_n cut: a source item outside the
fused top_n is missing from it (exact per-source figures: run with that source alone).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines import tableio

SCORE_PREFIX = "score_"


def source_names(run_dir: str | Path) -> list[str]:
    """The candidate sources of a run, as the candidates stage recorded them."""
    return list(tableio.read_manifest(run_dir, "candidates")["extra"]["sources"])


def source_ranking(cands: pl.DataFrame, source: str) -> pl.DataFrame:
    """user_id, item_id, rank (1 = best) of one source's non-null scores."""
    col = f"{SCORE_PREFIX}{source}"
    return (
        cands.filter(pl.col(col).is_not_null())
        .sort(["user_id", col, "item_id"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("user_id").alias("rank"))
        .select("user_id", "item_id", "rank")
    )


def source_overlap(cands: pl.DataFrame, names: list[str], k: int) -> pl.DataFrame:
    """Pairwise overlap of the sources' top-k lists: columns source, other, overlap.

    overlap(a, b) = Σ_u |top_k(a, u) ∩ top_k(b, u)| / Σ_u |top_k(a, u)|, the share of a's
    top-k slots that b also has in its top-k (asymmetric; 1 on the diagonal).
    """
    tops = {
        s: source_ranking(cands, s).filter(pl.col("rank") <= k).select("user_id", "item_id")
        for s in names
    }
    rows = []
    for a in names:
        total = tops[a].height
        for b in names:
            shared = tops[a].join(tops[b], on=["user_id", "item_id"], how="semi").height
            rows.append({"source": a, "other": b, "overlap": shared / total if total else 0.0})
    return pl.DataFrame(
        rows, schema={"source": pl.String, "other": pl.String, "overlap": pl.Float64}
    )


def overlap_markdown(overlap: pl.DataFrame, k: int) -> str:
    """A markdown matrix: row = source, column = other source."""
    if overlap.height == 0:
        return f"## Source overlap (top {k})\n\nNo source columns."
    names = overlap.get_column("source").unique(maintain_order=True).to_list()
    cell = {(r["source"], r["other"]): r["overlap"] for r in overlap.iter_rows(named=True)}
    lines = [
        f"## Source overlap (top {k})",
        "",
        f"Share of the row source's top-{k} slots that the column source also has in its top-{k}.",
        "",
        "| source | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
    ]
    for a in names:
        lines.append(f"| {a} | " + " | ".join(f"{cell[(a, b)]:.3f}" for b in names) + " |")
    return "\n".join(lines)
