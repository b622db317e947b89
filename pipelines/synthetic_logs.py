"""Synthetic interaction logs with the structure of real ones, at any size, deterministic by seed.

`walkrank generate --events N --seed S --out DIR` writes

    DIR/events/part-00000.parquet ...   user_id, item_id, ts (timestamp[us, UTC]), event_type
    DIR/items/items.parquet             item_id, title, text (the catalog)

and `walkrank run --input DIR` reads it (a directory with `events/` and `items/` is a dataset;
see `pipelines.ingest.formats.dataset_paths`).

The model (`LogModel`):
- items: `n_items` (default events / 50, at least 100), each in one of `n_clusters` taste
  clusters; item popularity is Zipf, weight ∝ (rank + 1) ** -zipf_a over a random
  permutation of the items, so popularity and cluster are independent;
- users: activity (events per user) is a discrete power law (Pareto with shape
  `activity_shape`, at least `min_activity`), rescaled so the lengths sum to exactly N, and
  capped as bot filtering caps a real log: no user has more than `max_activity` events nor
  more than `max_user_share` of the log (where N allows: at least `min_activity`); the
  capped users' excess goes to the others in proportion, and users are added if the caps
  leave too few to hold N; each user has a home cluster;
- sequence: the first item is drawn from the home cluster by popularity; every next item is,
  with probability `p_markov`, one of the previous item's `successors` (a sparse
  item-to-item Markov component, drawn once per item from its own cluster by popularity),
  else with probability `p_home` from the home cluster by popularity, else from the whole
  catalog by popularity (exploration);
- time: gaps within a session are exponential with mean `gap_seconds`, and with
  probability `p_new_session` a gap is a session break, exponential with mean
  `session_break_hours`; a user whose gaps add up to more than the log's span has them scaled
  down to fit, and each user starts at a uniform time that keeps their last event inside
  `[start, start + span_days)`: every timestamp is in the span, as in a real export.

Memory: the per-user arrays (n_users ints) and per-item arrays are held once; events are
generated and written `chunk_events` at a time (a chunk is a contiguous block of users), so
50M events never sit in memory at once. Time O(N) numpy work, vectorised across the users of
a chunk (one pass per position in the sequences).

Determinism: the catalog and user table come from `default_rng([seed, 0])`, chunk c from
`default_rng([seed, 1, c])`; chunk boundaries depend only on N and `chunk_events`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass(frozen=True)
class LogModel:
    """Parameters of the synthetic log; defaults look like a mid-size e-commerce log."""

    n_items: int = 0  # 0: max(100, events // 50)
    n_clusters: int = 50
    zipf_a: float = 1.0  # item popularity exponent
    activity_shape: float = 1.5  # Pareto shape of events per user (smaller = heavier tail)
    min_activity: int = 2
    mean_activity: float = 20.0
    max_activity: int = 5_000  # events of the heaviest user: a year at ~14 a day
    max_user_share: float = 0.01  # and at most this share of the log's events
    successors: int = 5  # Markov successors per item
    p_markov: float = 0.35
    p_home: float = 0.5
    start: str = "2024-01-01T00:00:00+00:00"
    span_days: float = 365.0
    gap_seconds: float = 120.0
    p_new_session: float = 0.15
    session_break_hours: float = 48.0
    chunk_events: int = 2_000_000


@dataclass(frozen=True)
class Catalog:
    cluster: np.ndarray  # int32[n_items]
    weight: np.ndarray  # float64[n_items], popularity weights (unnormalised)
    successors: np.ndarray  # int32[n_items, k]
    # Sampling by popularity within a cluster: items sorted by cluster, and `cum` holding
    # cluster + within-cluster CDF, so searchsorted(cum, c + u) draws from cluster c.
    by_cluster: np.ndarray  # int32[n_items]
    cum: np.ndarray  # float64[n_items]
    global_cdf: np.ndarray  # float64[n_items]


def _cluster_sampler(cluster: np.ndarray, weight: np.ndarray, n_clusters: int):
    order = np.lexsort((np.arange(cluster.size), cluster)).astype(np.int32)
    w = weight[order]
    c = cluster[order]
    csum = np.cumsum(w)
    starts = np.searchsorted(c, np.arange(n_clusters), side="left")
    ends = np.searchsorted(c, np.arange(n_clusters), side="right")
    before = np.where(starts > 0, csum[np.maximum(starts - 1, 0)], 0.0)
    total = np.where(ends > starts, csum[np.maximum(ends - 1, 0)] - before, 1.0)
    within = (csum - before[c]) / total[c]
    within = np.minimum(within, 1.0)
    return order, c + within


def _draw_in_cluster(cat: Catalog, clusters: np.ndarray, u: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(cat.cum, clusters + u, side="left")
    return cat.by_cluster[np.minimum(pos, cat.by_cluster.size - 1)]


def build_catalog(model: LogModel, n_items: int, rng: np.random.Generator) -> Catalog:
    """Clusters, Zipf popularity and Markov successors. O(n_items * successors) memory."""
    n_clusters = max(1, min(model.n_clusters, n_items))
    cluster = rng.integers(0, n_clusters, n_items).astype(np.int32)
    cluster[:n_clusters] = np.arange(n_clusters)  # no empty cluster
    rank = rng.permutation(n_items)
    weight = (rank + 1.0) ** -model.zipf_a
    by_cluster, cum = _cluster_sampler(cluster, weight, n_clusters)
    global_cdf = np.cumsum(weight) / weight.sum()
    u = rng.random((n_items, model.successors))
    succ = _draw_in_cluster(
        Catalog(cluster, weight, np.empty((0, 0), np.int32), by_cluster, cum, global_cdf),
        np.repeat(cluster, model.successors).reshape(n_items, model.successors),
        u,
    ).astype(np.int32)
    return Catalog(cluster, weight, succ, by_cluster, cum, global_cdf)


def activity_cap(n_events: int, model: LogModel) -> int:
    """Most events one user may have: `max_activity` and `max_user_share` of the log, but never
    under `min_activity` (a log under min_activity / max_user_share events cannot keep the
    share and still give each user min_activity events)."""
    share = math.floor(model.max_user_share * n_events)
    return max(model.min_activity, min(model.max_activity, share))


def user_lengths(n_events: int, model: LogModel, rng: np.random.Generator) -> np.ndarray:
    """Events per user: power-law, at least min_activity (where N allows), at most
    `activity_cap`, summing to exactly n_events.

    The scale of the Pareto draws is found by bisection so that the clipped lengths sum to N
    (water-filling: the excess of capped users goes to the rest in proportion to their draws).
    O(n_users · 60)."""
    cap = activity_cap(n_events, model)
    n_users = max(1, round(n_events / model.mean_activity), math.ceil(n_events / cap))
    raw = model.min_activity * (1.0 + rng.pareto(model.activity_shape, n_users))

    def clipped(scale: float) -> np.ndarray:
        return np.clip(np.floor(raw * scale), model.min_activity, cap).astype(np.int64)

    lo, hi = 0.0, n_events / raw.min()  # clipped(hi) is cap everywhere, >= N by n_users
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if clipped(mid).sum() <= n_events else (lo, mid)
    lengths = np.minimum(clipped(lo), n_events)
    diff = n_events - int(lengths.sum())
    # The rounding remainder: one more event for the longest users still under the cap, or
    # (a log smaller than n_users * min_activity) one fewer for the longest, down to 1.
    order = np.argsort(-lengths, kind="stable")
    if diff > 0:
        room = order[lengths[order] < cap]
        lengths[room[:diff]] += 1
        diff -= min(diff, room.size)
    i = 0
    while diff < 0:
        j = order[i % n_users]
        if lengths[j] > 1:
            lengths[j] -= 1
            diff += 1
        i += 1
    return lengths


def _chunk_events(
    model: LogModel,
    cat: Catalog,
    lengths: np.ndarray,
    home: np.ndarray,
    first_user: int,
    rng: np.random.Generator,
    t0_us: int,
) -> pa.Table:
    """Events of users first_user .. first_user + len(lengths) - 1, in user then time order."""
    n_u = lengths.size
    total = int(lengths.sum())
    offsets = np.zeros(n_u + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    items = np.empty(total, dtype=np.int32)
    gaps = np.empty(total, dtype=np.float64)
    # Position p of every user still that long: users sorted by length descending make the
    # active set a prefix, so each pass works on a slice without masks.
    order = np.argsort(-lengths, kind="stable")
    sorted_len = lengths[order]
    prev = np.empty(n_u, dtype=np.int32)
    max_len = int(sorted_len[0]) if n_u else 0
    for p in range(max_len):
        live = int(np.searchsorted(-sorted_len, -p, side="left"))  # lengths > p
        users = order[:live]
        u = rng.random((live, 3))
        h = home[users]
        pick = _draw_in_cluster(cat, h, u[:, 0])
        if p > 0:
            explore = u[:, 1] >= model.p_markov + model.p_home
            if explore.any():
                pick[explore] = np.searchsorted(cat.global_cdf, u[explore, 0]).astype(np.int32)
            markov = u[:, 1] < model.p_markov
            if markov.any():
                k = np.minimum(
                    (u[markov, 2] * model.successors).astype(np.int64), model.successors - 1
                )
                pick[markov] = cat.successors[prev[users[markov]], k]
        prev[users] = pick
        items[offsets[users] + p] = pick
        brk = rng.random(live) < model.p_new_session
        scale = np.where(brk, model.session_break_hours * 3600.0, model.gap_seconds)
        gaps[offsets[users] + p] = np.where(p == 0, 0.0, rng.exponential(1.0, live) * scale)
    span = model.span_days * 86400.0 * (1 - 1e-9)  # the last microsecond stays inside
    user_of = np.repeat(np.arange(n_u), lengths)
    # Cumulative gaps within each user (a segmented cumsum) from their first event; a user
    # longer than the span is scaled into it, then starts where their last event still fits.
    csum = np.cumsum(gaps)
    elapsed = csum - np.repeat(csum[offsets[:-1]] - gaps[offsets[:-1]], lengths)
    duration = elapsed[offsets[1:] - 1] if total else np.zeros(0)
    squeeze = np.where(duration > span, span / np.maximum(duration, 1e-300), 1.0)
    elapsed *= squeeze[user_of]
    start = rng.random(n_u) * np.maximum(span - duration * squeeze, 0.0)
    seconds = start[user_of] + elapsed
    ts = t0_us + np.round(seconds * 1e6).astype(np.int64)
    return pa.table(
        {
            "user_id": _ids("u", first_user + user_of),
            "item_id": _ids("i", items),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "event_type": pa.repeat(pa.scalar("view"), total),
        }
    )


def _iso(micros: float) -> str:
    return dt.datetime.fromtimestamp(micros / 1e6, dt.UTC).isoformat()


def _ids(prefix: str, ints: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(ints).cast(pa.string()), "")


def catalog_table(cat: Catalog) -> pa.Table:
    idx = np.arange(cat.cluster.size)
    return pa.table(
        {
            "item_id": _ids("i", idx),
            "title": _ids("Item ", idx),
            "text": _ids("genre ", cat.cluster),
        }
    )


def generate_logs(
    n_events: int, seed: int, out: str | Path, model: LogModel | None = None, progress=True
) -> dict:
    """Write DIR/events/*.parquet and DIR/items/items.parquet; returns the summary it writes
    to DIR/_generator.json. Refuses to write into a non-empty DIR."""
    model = model or LogModel()
    if n_events < 1:
        raise ValueError(f"--events must be >= 1, got {n_events}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        from pipelines.errors import ConfigError

        raise ConfigError(f"{out} is not empty", hint="give --out a new or empty directory")
    (out / "events").mkdir(parents=True, exist_ok=True)
    (out / "items").mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    rng = np.random.default_rng([seed, 0])
    n_items = model.n_items or max(100, n_events // 50)
    cat = build_catalog(model, n_items, rng)
    lengths = user_lengths(n_events, model, rng)
    home = rng.integers(0, max(1, min(model.n_clusters, n_items)), lengths.size).astype(np.int32)
    pq.write_table(catalog_table(cat), out / "items" / "items.parquet")
    t0_us = int(dt.datetime.fromisoformat(model.start).timestamp() * 1e6)
    ends = np.cumsum(lengths)
    n_chunks = max(1, math.ceil(n_events / model.chunk_events))
    # Chunk c holds the users whose events end in ((c) * chunk, (c + 1) * chunk].
    cuts = np.searchsorted(ends, np.arange(1, n_chunks) * model.chunk_events, side="left") + 1
    bounds = [0, *sorted(set(int(c) for c in cuts if 0 < c < lengths.size)), lengths.size]
    written, ts_range = 0, [math.inf, -math.inf]
    for c, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        table = _chunk_events(
            model, cat, lengths[a:b], home[a:b], a, np.random.default_rng([seed, 1, c]), t0_us
        )
        pq.write_table(table, out / "events" / f"part-{c:05d}.parquet")
        written += table.num_rows
        lo, hi = pc.min_max(table.column("ts").cast(pa.int64())).values()
        ts_range = [min(ts_range[0], lo.as_py()), max(ts_range[1], hi.as_py())]
        if progress:
            print(
                f"[generate] {written:,}/{n_events:,} events ({written / n_events:.0%})",
                file=sys.stderr,
                flush=True,
            )
    summary = {
        "events": written,
        "users": int(lengths.size),
        "items": int(n_items),
        "max_user_events": int(lengths.max()),
        "first_ts": _iso(ts_range[0]),
        "last_ts": _iso(ts_range[1]),
        "seed": seed,
        "model": asdict(model),
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    (out / "_generator.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
