"""Per-source views of a candidates table: each source's own ranking and source overlap.

The candidates table has one `score_column(source)` per source (null where the source did
not propose the item); the sources, in column order: `tableio.candidate_sources`. A source's
ranking is its non-null rows ordered by that column (ties: item_id), so every source can be
scored alone with the same metrics as the fusion.
It is the source's list as far as it survived the fused top_n cut: a source item outside the
fused top_n is missing from it (exact per-source figures: run with that source alone).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines import tableio
from pipelines.evaluation.buckets import n_buckets, read_buckets
from schemas import score_column


def source_ranking(cands: pl.DataFrame, source: str) -> pl.DataFrame:
    """user_id, item_id, rank (1 = best) of one source's non-null scores."""
    col = score_column(source)
    return (
        cands.filter(pl.col(col).is_not_null())
        .sort(["user_id", col, "item_id"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("user_id").alias("rank"))
        .select("user_id", "item_id", "rank")
    )


def overlap_counts(cands: pl.DataFrame, names: list[str], k: int) -> dict[tuple[str, str], int]:
    """Σ_u |top_k(a, u) ∩ top_k(b, u)| for every pair of sources (a, a: a's top-k slots).
    Sums over users, so the counts of disjoint sets of users add up."""
    tops = {
        s: source_ranking(cands, s).filter(pl.col("rank") <= k).select("user_id", "item_id")
        for s in names
    }
    return {
        (a, b): tops[a].join(tops[b], on=["user_id", "item_id"], how="semi").height
        for a in names
        for b in names
    }


def overlap_of_counts(counts: dict[tuple[str, str], int], names: list[str]) -> pl.DataFrame:
    """Pairwise overlap of the sources' top-k lists (columns source, other, overlap) from
    (summed) `overlap_counts`: overlap(a, b) = Σ_u |top_k(a, u) ∩ top_k(b, u)| / Σ_u
    |top_k(a, u)|, the share of a's top-k slots that b also has (asymmetric; 1 on the
    diagonal)."""
    rows = []
    for a in names:
        total = counts[(a, a)]
        for b in names:
            rows.append(
                {"source": a, "other": b, "overlap": counts[(a, b)] / total if total else 0.0}
            )
    return pl.DataFrame(
        rows, schema={"source": pl.String, "other": pl.String, "overlap": pl.Float64}
    )


def run_source_overlap(run_dir: str | Path, k: int, max_rows_in_memory: int) -> pl.DataFrame:
    """The sources' pairwise overlap (`overlap_of_counts`) in a run's candidates table, read
    in buckets of users (a user's whole candidate list is needed: a source's top-k can sit
    anywhere in the fused order)."""
    names = tableio.candidate_sources(run_dir)
    columns = ["user_id", "item_id", *map(score_column, names)]
    scan = tableio.scan_polars(run_dir, "candidates").select(columns)
    count = n_buckets(tableio.read_manifest(run_dir, "candidates")["rows"], max_rows_in_memory)
    totals = dict.fromkeys(((a, b) for a in names for b in names), 0)
    for bucket in read_buckets(scan, count):
        for pair, n in overlap_counts(bucket.rows, names, k).items():
            totals[pair] += n
    return overlap_of_counts(totals, names)


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
