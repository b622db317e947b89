"""graph stage: the Spark transform against a plain-Python model of the same rules."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict

import pyarrow.parquet as pq
import pytest

from pipelines import tableio
from pipelines.config import GraphConfig, check_section, load_config
from pipelines.errors import ConfigError
from pipelines.graph import build_graph
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from pipelines.stages import graph as graph_stage
from schemas.tables import ITEMS, TRAIN
from tests.pipeline_fixtures import random_events, write_events

pytestmark = pytest.mark.spark

TOL = 1e-12
US = dt.timedelta(microseconds=1)


def build_transition_graph(train_df, items_df, cfg: GraphConfig):
    """(graph_nodes, graph_edges) DataFrames of the transform, as the graph stage writes them."""
    g = build_graph(train_df, items_df, cfg)
    return g.nodes, g.edges


# --------------------------------------------------------------------------- the model


def model_graph(train: list[dict], items: list[dict], cfg: GraphConfig):
    """The rules of pipelines.graph.transitions with dicts and loops.

    -> (edges {(src, dst): (weight, count, prob)}, nodes {id: (...)}, info).
    The weight is evaluated as the module defines it (exact counts per distance, then
    F + reverse_weight * R, d ascending); `info["naive_weight"]` is the plain running sum of
    the transition weights in event order, which must agree within rounding.
    """
    by_user = defaultdict(list)
    for r in train:
        by_user[r["user_idx"]].append(r)
    fwd: dict[tuple[int, int], Counter] = defaultdict(Counter)  # (i, j) -> {d: n}
    rev: dict[tuple[int, int], Counter] = defaultdict(Counter)
    naive: dict[tuple[int, int], float] = defaultdict(float)
    self_loops: Counter = Counter()
    sessions, gap_at_limit = 0, 0
    for evs in by_user.values():
        evs = sorted(
            evs,
            key=lambda r: (r["ts"], r["item_id"], r["value"] is not None, r["value"] or 0.0),
        )
        session, sess = 0, []
        for k, e in enumerate(evs):
            gap_us = (e["ts"] - evs[k - 1]["ts"]) // US if k else 0
            if cfg.session_gap > 0 and gap_us > cfg.session_gap * 1e6:
                session += 1
            gap_at_limit += cfg.session_gap > 0 and gap_us == cfg.session_gap * 1e6
            sess.append(session)
        sessions += session + 1
        for p in range(len(evs)):
            for d in range(1, cfg.window + 1):
                q = p + d
                if q >= len(evs) or sess[q] != sess[p]:
                    break
                i, j = evs[p]["item_idx"], evs[q]["item_idx"]
                if i == j:
                    self_loops[i] += 1
                    continue
                w = cfg.decay ** (d - 1)
                fwd[(i, j)][d] += 1
                naive[(i, j)] += w
                if cfg.reverse_weight > 0:
                    rev[(j, i)][d] += 1
                    naive[(j, i)] += w * cfg.reverse_weight

    def decayed(c: Counter) -> float:
        acc = 0.0
        for d in range(1, cfg.window + 1):
            acc = acc + c[d] * cfg.decay ** (d - 1)
        return acc

    agg = {}
    for key in set(fwd) | set(rev):
        weight = decayed(fwd[key])
        if cfg.reverse_weight > 0:
            weight = weight + cfg.reverse_weight * decayed(rev[key])
        agg[key] = (weight, sum(fwd[key].values()) + sum(rev[key].values()))
    kept_min = {k: v for k, v in agg.items() if v[1] >= cfg.min_count}
    out = defaultdict(list)
    for (s, t), (w, c) in kept_min.items():
        out[s].append((t, w, c))
    edges, nodes_out, ties_at_cut = {}, {}, 0
    for s, lst in out.items():
        lst.sort(key=lambda x: (-x[1], x[0]))
        if 0 < cfg.max_out_degree < len(lst):
            ties_at_cut += lst[cfg.max_out_degree - 1][1] == lst[cfg.max_out_degree][1]
            lst = lst[: cfg.max_out_degree]
        total = 0.0
        for _, w, _ in lst:
            total += w
        nodes_out[s] = (len(lst), total)
        for t, w, c in lst:
            edges[(s, t)] = (w, c, w / total)
    in_deg = Counter(t for _, t in edges)
    pop = Counter(r["item_idx"] for r in train)
    nodes = {
        it["item_idx"]: (
            it["item_id"],
            nodes_out.get(it["item_idx"], (0, 0.0))[0],
            in_deg[it["item_idx"]],
            nodes_out.get(it["item_idx"], (0, 0.0))[1],
            pop[it["item_idx"]],
            self_loops[it["item_idx"]],
        )
        for it in items
    }
    info = {
        "naive_weight": naive,
        "sessions": sessions,
        "ties_at_cut": ties_at_cut,
        "gap_at_limit": gap_at_limit,  # consecutive gaps == session_gap (same session)
        "transitions": sum(sum(c.values()) for c in fwd.values()) + sum(self_loops.values()),
        "self_loops": sum(self_loops.values()),
        "edges_before_pruning": len(agg),
        "pruned_min_count": len(agg) - len(kept_min),
        "pruned_max_out_degree": len(kept_min) - len(edges),
        "edges": len(edges),
    }
    return edges, nodes, info


# --------------------------------------------------------------------------- helpers

NODE_COLS = ["item_id", "out_degree", "in_degree", "out_weight", "popularity", "self_loops"]


def graph_overrides(**kw) -> list[str]:
    return ["spark.shuffle_partitions=4", *(f"graph.{k}={v}" for k, v in kw.items())]


def run_graph(run_dir, rows, *, split: bool = False, **graph_kw):
    """graph on a fixture log; -> (cfg, train rows, item rows).

    split=True runs the split stage first; otherwise every event is a train event (written
    straight into the run, like write_events does for events), which saves a Spark stage.
    """
    write_events(run_dir, rows)
    cfg = load_config(None, graph_overrides(**graph_kw))
    stages = [graph_stage.STAGE]
    if split:
        stages.insert(0, STAGES["split"])
    else:
        events = tableio.read_arrow(run_dir, "events")
        tableio.write_table(run_dir, "train", events, stage="fixture", stage_key="fixture")
    assert set(run_stages(run_dir, cfg, stages).values()) == {"ran"}
    train = tableio.read_arrow(run_dir, "train").to_pylist()
    items = tableio.read_arrow(run_dir, "items").to_pylist()
    return cfg, train, items


def read_edges(run_dir) -> dict[tuple[int, int], tuple[float, int, float]]:
    t = tableio.read_arrow(run_dir, "graph_edges").to_pylist()
    out = {(r["src"], r["dst"]): (r["weight"], r["count"], r["prob"]) for r in t}
    assert len(out) == len(t), "duplicate (src, dst) edges"
    return out


def read_nodes(run_dir) -> dict[int, tuple]:
    t = tableio.read_arrow(run_dir, "graph_nodes").to_pylist()
    return {r["id"]: tuple(r[c] for c in NODE_COLS) for r in t}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def assert_same_edges(got, expected):
    assert set(got) == set(expected)
    for k, (w, c, p) in expected.items():
        gw, gc, gp = got[k]
        assert gc == c, k
        assert close(gw, w), (k, gw, w)
        assert close(gp, p), (k, gp, p)


def assert_same_nodes(got, expected):
    assert set(got) == set(expected)
    for k, exp in expected.items():
        g = got[k]
        assert g[:3] == exp[:3] and g[4:] == exp[4:], k
        assert close(g[3], exp[3]), (k, g[3], exp[3])


# --------------------------------------------------------------------------- model comparison

CASES = {
    # window 1, decay 1, no reverse, no pruning, no sessions: plain next-item counts.
    "next-item": dict(seed=11, window=1, decay=1.0, reverse_weight=0.0, min_count=1,
                      max_out_degree=0, session_gap=0.0),
    "decay-mincount-topk": dict(seed=12, window=3, decay=0.5, reverse_weight=0.0, min_count=2,
                                max_out_degree=2, session_gap=0.0),
    "reverse-sessions": dict(seed=13, window=3, decay=0.5, reverse_weight=0.2, min_count=1,
                             max_out_degree=3, session_gap=7200.0),
    # integer-ish weights: ties at the max_out_degree cut; gaps of exactly 3 h do not split.
    "ties-gap-boundary": dict(seed=14, window=1, decay=1.0, reverse_weight=0.2, min_count=1,
                              max_out_degree=2, session_gap=10800.0),
    "odd-decay-mincount": dict(seed=15, window=2, decay=0.7, reverse_weight=0.5, min_count=2,
                               max_out_degree=1, session_gap=3600.0),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_matches_python_model(spark, tmp_path, case):
    kw = dict(CASES[case])
    rows = random_events(kw.pop("seed"), n_users=60)
    cfg, train, items = run_graph(tmp_path, rows, **kw)

    # The log has what the rules must handle: ts ties, one-event users, repeated items.
    per_user = Counter(r["user_id"] for r in train)
    assert min(per_user.values()) == 1
    assert len({(r["user_id"], r["ts"]) for r in train}) < len(train)
    assert len({(r["user_id"], r["item_id"]) for r in train}) < len(train)

    expected, nodes, info = model_graph(train, items, cfg.graph)
    assert info["edges"] >= 5 and info["self_loops"] > 0
    if cfg.graph.max_out_degree:
        assert info["pruned_max_out_degree"] > 0  # the cap binds
    if cfg.graph.min_count > 1:
        assert info["pruned_min_count"] > 0
    if cfg.graph.session_gap > 0:
        assert info["sessions"] > len(per_user)  # some users' logs are split
    if case == "ties-gap-boundary":
        assert info["gap_at_limit"] > 0  # gaps equal to session_gap occur (and do not split)
        assert info["ties_at_cut"] > 0  # equal weights straddle the max_out_degree cut
    for k, (w, _, _) in expected.items():  # the canonical weight is the plain sum
        assert close(w, info["naive_weight"][k]), k

    assert_same_edges(read_edges(tmp_path), expected)
    assert_same_nodes(read_nodes(tmp_path), nodes)
    extra = tableio.read_manifest(tmp_path, "graph_edges")["extra"]
    for key in ("transitions", "self_loops", "edges_before_pruning", "pruned_min_count",
                "pruned_max_out_degree", "edges"):  # fmt: skip
        assert extra[key] == info[key], key
    assert extra["config"]["graph"]["window"] == cfg.graph.window


# --------------------------------------------------------------------------- hand-made log

HAND_ITEMS = {"z": 0, "y": 1, "x": 2, "w": 3}  # idx order != id order; w has no events


def hand_frames(spark, events: list[tuple[str, str, int]]):
    """(user, item, ts seconds) -> train and items DataFrames in the contract schemas."""
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    users = {u: k for k, u in enumerate(sorted({e[0] for e in events}))}
    train = [
        {"user_id": u, "item_id": i, "ts": base + dt.timedelta(seconds=t), "event_type": None,
         "value": 1.0, "user_idx": users[u], "item_idx": HAND_ITEMS[i]}
        for u, i, t in events
    ]  # fmt: skip
    items = [
        {"item_id": i, "item_idx": k, "title": None, "text": None, "popularity": 0}
        for i, k in HAND_ITEMS.items()
    ]
    return (
        spark.createDataFrame(train, TRAIN.spark_type()),
        spark.createDataFrame(items, ITEMS.spark_type()),
    )


HAND_LOG = [
    ("a", "x", 0), ("a", "y", 10), ("a", "x", 20), ("a", "z", 30),
    ("b", "y", 0),
    ("c", "z", 100), ("c", "x", 100), ("c", "y", 5000),  # ts tie: x before z (item_id order)
]  # fmt: skip


def collect(nodes_df, edges_df):
    x = HAND_ITEMS
    name = {v: k for k, v in x.items()}
    edges = {
        (name[r["src"]], name[r["dst"]]): (r["weight"], r["count"], r["prob"])
        for r in edges_df.collect()
    }
    nodes = {name[r["id"]]: tuple(r[c] for c in NODE_COLS[1:]) for r in nodes_df.collect()}
    return edges, nodes


def test_hand_made_log_window_2(spark):
    """a: x y x z  ->  x>y 1, x>x 0.5 (self-loop), y>x 1, y>z 0.5, x>z 1
    b: y          ->  nothing
    c: x z | y    ->  x>z 1, x>y 0.5, z>y 1   (ts tie x/z ordered by item_id)"""
    train, items = hand_frames(spark, HAND_LOG)
    cfg = GraphConfig(window=2, decay=0.5, session_gap=0.0, reverse_weight=0.0, min_count=1,
                      max_out_degree=0)  # fmt: skip
    edges, nodes = collect(*build_transition_graph(train, items, cfg))
    assert edges == {
        ("x", "y"): (1 + 0.5, 2, 1.5 / 3.5),
        ("x", "z"): (1 + 1, 2, 2 / 3.5),
        ("y", "x"): (1, 1, 1 / 1.5),
        ("y", "z"): (0.5, 1, 0.5 / 1.5),
        ("z", "y"): (1, 1, 1.0),
    }
    # (out_degree, in_degree, out_weight, popularity, self_loops)
    assert nodes == {
        "x": (2, 1, 3.5, 3, 1),
        "y": (2, 2, 1.5, 3, 0),
        "z": (1, 2, 1.0, 2, 0),
        "w": (0, 0, 0.0, 0, 0),
    }


def test_hand_made_log_sessions_reverse_pruning(spark):
    """session_gap 60 s splits c into [x z] [y]; reverse_weight 0.5 adds the mirrored edges:
    x>y 1 + rev(y>x) 0.5 = 1.5 (2)   y>x 1 + rev(x>y) 0.5 = 1.5 (2)   x>z 1 + 1 = 2 (2)
    z>x rev 0.5 + 0.5 = 1 (2)        y>z 0.5 (1)   z>y rev 0.25 (1)
    min_count 2 drops y>z, z>y; max_out_degree 1 keeps x>z, y>x, z>x."""
    train, items = hand_frames(spark, HAND_LOG)
    cfg = GraphConfig(window=2, decay=0.5, session_gap=60.0, reverse_weight=0.5, min_count=2,
                      max_out_degree=1)  # fmt: skip
    edges, nodes = collect(*build_transition_graph(train, items, cfg))
    assert edges == {
        ("x", "z"): (2.0, 2, 1.0),
        ("y", "x"): (1.5, 2, 1.0),
        ("z", "x"): (1.0, 2, 1.0),
    }
    assert nodes == {
        "x": (1, 2, 2.0, 3, 1),
        "y": (1, 0, 1.5, 3, 0),
        "z": (1, 1, 1.0, 2, 0),
        "w": (0, 0, 0.0, 0, 0),
    }


def test_top_k_ties_keep_smaller_dst(spark):
    """x>y and x>z both weigh 1; with max_out_degree 1 the smaller dst index (z = 0) wins,
    although 'y' < 'z' as item ids."""
    train, items = hand_frames(spark, [("a", "x", 0), ("a", "y", 1), ("b", "x", 0), ("b", "z", 1)])
    cfg = GraphConfig(window=1, decay=1.0, reverse_weight=0.0, min_count=1, max_out_degree=1)
    edges, _ = collect(*build_transition_graph(train, items, cfg))
    assert edges == {("x", "z"): (1.0, 1, 1.0)}


def test_bad_config_is_rejected():
    for key, value in [
        ("window", 0),
        ("decay", 0.0),
        ("decay", 1.5),
        ("session_gap", -1.0),
        ("reverse_weight", -0.1),
        ("min_count", 0),
        ("max_out_degree", -1),
    ]:
        cfg = GraphConfig(**{key: value})
        with pytest.raises(ConfigError, match=f"graph.{key}"):
            check_section(cfg, "graph")
    check_section(GraphConfig(), "graph")


# --------------------------------------------------------------------------- invariants


@pytest.fixture(scope="module")
def default_run(spark, tmp_path_factory):
    """split + graph with the default graph config on a larger log: (run_dir, model)."""
    run_dir = tmp_path_factory.mktemp("graph-default")
    rows = random_events(21, n_users=120, n_items=80, max_len=20)
    cfg, train, items = run_graph(run_dir, rows, split=True)
    return run_dir, model_graph(train, items, cfg.graph)


def test_split_then_graph_matches_model(default_run):
    run_dir, (expected, nodes, info) = default_run
    assert info["edges"] > 100
    assert_same_edges(read_edges(run_dir), expected)
    assert_same_nodes(read_nodes(run_dir), nodes)


def test_prob_sums_to_one_per_src(default_run):
    default_run, _ = default_run
    edges = tableio.read_arrow(default_run, "graph_edges").to_pylist()
    assert edges
    sums, weights = defaultdict(float), defaultdict(float)
    for e in edges:
        sums[e["src"]] += e["prob"]
        weights[e["src"]] += e["weight"]
        assert 0 < e["prob"] <= 1 and e["weight"] > 0 and e["count"] >= 1
    for src, total in sums.items():
        assert total == pytest.approx(1.0, abs=1e-12), src
    nodes = tableio.read_arrow(default_run, "graph_nodes").to_pylist()
    with_out = {n["id"] for n in nodes if n["out_degree"] > 0}
    assert with_out == set(sums)
    for n in nodes:
        assert n["out_weight"] == pytest.approx(weights.get(n["id"], 0.0), rel=TOL, abs=TOL)


def test_edges_are_written_in_csr_order(default_run):
    default_run, _ = default_run
    m = tableio.read_manifest(default_run, "graph_edges")
    keys, file_of_src = [], {}
    for f in [e["path"] for e in m["files"]]:
        t = pq.read_table(default_run / "graph_edges" / f, columns=["src", "dst"])
        for s, d in zip(t["src"].to_pylist(), t["dst"].to_pylist(), strict=True):
            keys.append((s, d))
            assert file_of_src.setdefault(s, f) == f, f"src {s} spans files"
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    nodes_m = tableio.read_manifest(default_run, "graph_nodes")
    ids = []
    for f in [e["path"] for e in nodes_m["files"]]:
        ids += pq.read_table(default_run / "graph_nodes" / f, columns=["id"])["id"].to_pylist()
    assert ids == sorted(ids) == list(range(len(ids)))
    assert nodes_m["extra"]["nodes"] == len(ids)
    assert nodes_m["extra"]["nodes_with_out_edges"] == len({s for s, _ in keys})
    assert m["columns"]["src"] == "int32" and m["columns"]["count"] == "int64"
    assert nodes_m["columns"]["self_loops"] == "int64"


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_amazon_toys(spark, tmp_path, amazon_toys_path):
    cfg = load_config(
        None,
        [
            "spark.shuffle_partitions=4",
            f'ingest.input="{amazon_toys_path}"',
            "ingest.format=sequences",
            "graph.max_out_degree=50",
            "graph.min_count=1",
        ],
    )
    stages = [STAGES["ingest"], STAGES["split"], graph_stage.STAGE]
    run_stages(tmp_path, cfg, stages)
    train = tableio.read_arrow(
        tmp_path, "train", ["user_idx", "item_idx", "item_id", "ts", "value"]
    ).to_pylist()
    items = tableio.read_arrow(tmp_path, "items", ["item_id", "item_idx"]).to_pylist()
    expected, nodes, info = model_graph(train, items, cfg.graph)
    assert info["edges"] > 10_000 and info["pruned_max_out_degree"] > 0
    assert_same_edges(read_edges(tmp_path), expected)
    assert_same_nodes(read_nodes(tmp_path), nodes)
