"""summaries, llm_scores and rank on a real local Ray with a tiny random model, checked
against in-process references (one prompt at a time, no Ray, no shared KV cache); the
switch-off path; and kill -9 during llm_scores, then the same command again."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
import torch

from pipelines import tableio
from pipelines.config import load_config
from pipelines.faults import FAULT_ENV
from pipelines.llm.encode import PromptEncoder
from pipelines.llm.infer import generate, score_padded
from pipelines.llm.model import ModelSpec, load_model
from pipelines.runner import run_stages
from pipelines.stage_registry import STAGES
from tests.llm_fixtures import build_tiny_model, write_llm_run
from udfs.prompts import (
    PROMPT_VERSION,
    parse_summary,
    quote_item,
    score_messages,
    split_at_slot,
    summary_messages,
)
from udfs.rank_fusion import fit_llm_weight_reference

pytestmark = pytest.mark.ray
LLM = [STAGES[s] for s in ("summaries", "llm_scores", "rank")]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module", autouse=True)
def ray_local():
    """The module's Ray (in-process, and in the `walkrank` subprocesses, which inherit the
    environment) keeps its sessions in a RAY_TMPDIR of its own, not the machine's /tmp/ray;
    a short path under /tmp because Ray puts unix sockets there (108-byte limit)."""
    private = tempfile.mkdtemp(prefix="wr-llm-", dir="/tmp")
    env = pytest.MonkeyPatch()
    env.setenv("RAY_TMPDIR", private)
    try:
        yield
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        env.undo()
        shutil.rmtree(private, ignore_errors=True)


def _quoted(run: Path) -> dict[str, str | None]:
    items = tableio.read_polars(run, "items")
    return {
        r["item_id"]: quote_item(r["title"], r["text"], 120) for r in items.iter_rows(named=True)
    }


def _history(run: Path, user: str, n: int) -> list[str]:
    q = _quoted(run)
    train = tableio.read_polars(run, "train").filter(pl.col("user_id") == user)
    ordered = train.sort("ts", "item_id")["item_id"].to_list()
    return [q[i] for i in ordered if q[i] is not None][-n:]


def test_llm_stages_match_in_process_reference(tmp_path, tiny_path, ray_local):
    run = tmp_path / "run"
    write_llm_run(run)
    cfg_sets = [
        f"llm.model={tiny_path}",
        "llm.max_users=0",
        "llm.score_top_m=6",
        "llm.shard_users=3",
        "eval.target=valid",
        "summaries.max_new_tokens=5",
        "ray.num_cpus=2",
    ]
    cfg = load_config(None, cfg_sets)
    assert run_stages(run, cfg, LLM) == dict.fromkeys(("summaries", "llm_scores", "rank"), "ran")
    model, tok = load_model(ModelSpec(str(tiny_path), "tiny", "cpu", "float32"))
    enc = PromptEncoder(tok)

    summaries = tableio.read_polars(run, "user_summaries").sort("user_id")
    users = summaries["user_id"].to_list()
    assert users == [f"u{u:02d}" for u in range(12)]
    for row in summaries.iter_rows(named=True):
        hist = _history(run, row["user_id"], 10)
        new = generate(
            model,
            [enc.chat_ids(summary_messages(hist, enc.mark))],
            pad_id=tok.pad_token_id,
            max_new_tokens=5,
            batch=1,
        )[0]
        assert row["summary"] == parse_summary(tok.decode(new, skip_special_tokens=True))
        assert row["n_history"] == len(hist) and row["error"] is None

    scores = tableio.read_polars(run, "llm_scores")
    m = tableio.read_manifest(run, "llm_scores")["extra"]
    q = _quoted(run)
    cands = tableio.read_polars(run, "candidates").filter(pl.col("rank") <= 6)
    titled = cands.filter(pl.col("item_id").is_in([i for i, v in q.items() if v is not None]))
    assert m["skipped_untitled_candidates"] == cands.height - titled.height > 0
    assert sorted(zip(scores["user_id"], scores["item_id"], strict=True)) == sorted(
        zip(titled["user_id"], titled["item_id"], strict=True)
    )
    assert m["errors"] == 0 and m["shards"] == 4 and m["shards_computed"] == 4
    gpu = torch.cuda.is_available()
    assert (m["device"], m["dtype"], m["resources"]) == (
        ("cuda", "bfloat16", {"num_gpus": 1}) if gpu else ("cpu", "float32", {"num_cpus": 0.5})
    )
    yes_no = (
        tok.encode("yes", add_special_tokens=False)[0],
        tok.encode("no", add_special_tokens=False)[0],
    )
    summ = dict(zip(summaries["user_id"], summaries["summary"], strict=True))
    for user in users:
        mine = titled.filter(pl.col("user_id") == user).sort("rank")
        rendered = enc.render(
            score_messages(summ[user], _history(run, user, 10), "yes_no", enc.mark)
        )
        parts = [split_at_slot(rendered, enc.mark(q[i]), "yes_no") for i in mine["item_id"]]
        with torch.inference_mode():
            ref = score_padded(
                model,
                enc.encode(parts[0][0]),
                [enc.encode(s) for _, s in parts],
                scorer="yes_no",
                yes_no=yes_no,
                pad_id=tok.pad_token_id,
                batch=1,
            )
        got = scores.filter(pl.col("user_id") == user).sort("item_id")
        expected = dict(zip(mine["item_id"], ref, strict=True))
        assert got["llm_score"].to_list() == pytest.approx(
            [expected[i] for i in got["item_id"]], abs=1e-4
        )

    # rank: the fitted weight and the order, from a plain-Python model of the fusion.
    hold = tableio.read_polars(run, "holdout")
    target = dict(zip(hold["user_id"], hold["item_id"], strict=True))
    joined = titled.join(scores, on=["user_id", "item_id"]).sort("user_id", "rank")
    groups = []
    for user in users:
        g = joined.filter(pl.col("user_id") == user)
        items = g["item_id"].to_list()
        t = items.index(target[user]) if target[user] in items else None
        groups.append((g["score"].to_list(), g["llm_score"].to_list(), t, items, user))
    w, _ = fit_llm_weight_reference([g[:3] for g in groups], cfg.rank.grid, cfg.rank.fit_k)
    assert tableio.read_manifest(run, "rankings")["extra"]["llm_weight"] == w
    assert (run / "rank_weights.toml").read_text() == f"[rank]\nllm_weight = {w!r}\n"
    rankings = tableio.read_polars(run, "rankings").sort("user_id", "rank")
    all_cands = tableio.read_polars(run, "candidates").sort("user_id", "rank")
    for cand, llm, _, items, user in groups:

        def z(xs):
            sd = statistics.pstdev(xs)
            return [0.0] * len(xs) if sd == 0 else [(x - statistics.fmean(xs)) / sd for x in xs]

        fused = [a + w * b for a, b in zip(z(cand), z(llm), strict=True)]
        top = [items[i] for i in sorted(range(len(items)), key=lambda i: (-fused[i], i))]
        rest = [i for i in all_cands.filter(pl.col("user_id") == user)["item_id"] if i not in top]
        got = rankings.filter(pl.col("user_id") == user)
        assert got["item_id"].to_list() == top + rest
        assert got["rank"].to_list() == list(range(1, len(top) + len(rest) + 1))

    assert run_stages(run, cfg, LLM) == dict.fromkeys(
        ("summaries", "llm_scores", "rank"), "skipped"
    )

    # Bounded memory: a cap far below the candidates table fuses users a bucket at a time,
    # with the same weight and the same rankings as one bucket.
    n_cands = tableio.read_manifest(run, "candidates")["rows"]
    capped = load_config(None, [*cfg_sets, f"eval.max_rows_in_memory={n_cands // 5}"])
    run_stages(run, capped, [STAGES["rank"]], force=True)
    assert len(tableio.read_manifest(run, "rankings")["files"]) >= 5
    assert tableio.read_manifest(run, "rankings")["extra"]["llm_weight"] == w
    assert tableio.read_polars(run, "rankings").sort("user_id", "rank").equals(rankings)

    # Incremental summaries: only the user whose history changed is summarised again.
    train = tableio.read_arrow(run, "train")
    extra = train.slice(0, 1).to_pylist()[0]
    extra.update(item_id="i026", item_idx=26, ts=extra["ts"].replace(year=2025))
    tableio.write_table(
        run,
        "train",
        pa.concat_tables([train, pa.Table.from_pylist([extra], schema=train.schema)]),
        stage="fixture",
        stage_key="fixture2",
    )
    before = dict(zip(summaries["user_id"], summaries["history_fingerprint"], strict=True))
    run_stages(run, cfg, [STAGES["summaries"]])
    m = tableio.read_manifest(run, "user_summaries")["extra"]
    assert (m["kept_unchanged"], m["users_computed"]) == (11, 1)
    assert (m["reused_this_run"], m["reused_from"], m["computed"]) == (11, None, 1)
    after = tableio.read_polars(run, "user_summaries")
    changed = [
        u
        for u, fp in zip(after["user_id"], after["history_fingerprint"], strict=True)
        if before[u] != fp
    ]
    assert changed == [extra["user_id"]]


def test_failing_user_gets_error_rows_and_the_job_goes_on(tmp_path, ray_local):
    """A GPT-2 with a short position table fails (IndexError) on users whose prompt is too
    long: their rows carry the error and a null score, everyone else is scored."""
    run = tmp_path / "run"
    write_llm_run(run, seed=3)
    users = [f"u{u:02d}" for u in range(12)]
    _fixture_summaries(run, users)
    probe = build_tiny_model(tmp_path / "probe")
    _, tok = load_model(ModelSpec(str(probe), "probe", "cpu", "float32"))
    enc = PromptEncoder(tok)
    q = _quoted(run)
    cands = tableio.read_polars(run, "candidates").filter(pl.col("rank") <= 4)
    need = {}
    for u in users:
        rendered = enc.render(
            score_messages("likes films", _history(run, u, 10), "yes_no", enc.mark)
        )
        mine = [q[i] for i in cands.filter(pl.col("user_id") == u)["item_id"] if q[i]]
        need[u] = max(
            len(enc.encode(a)) + len(enc.encode(b))
            for a, b in (split_at_slot(rendered, enc.mark(c), "yes_no") for c in mine)
        )
    limit = sorted(need.values())[len(need) // 2]  # about half the users fit
    failing = {u for u, n in need.items() if n > limit}
    assert 0 < len(failing) < len(users)
    model = build_tiny_model(tmp_path / "gpt2", gpt2_positions=limit)
    cfg = load_config(
        None,
        [f"llm.model={model}", "llm.max_users=0", "llm.score_top_m=4", "ray.num_cpus=2",
         "rank.method=fusion"],
    )  # fmt: skip
    run_stages(run, cfg, [STAGES["llm_scores"], STAGES["rank"]])
    scores = tableio.read_polars(run, "llm_scores")
    bad = scores.filter(pl.col("error").is_not_null())
    assert set(bad["user_id"]) == failing
    assert bad["llm_score"].null_count() == bad.height
    assert all("IndexError" in e for e in bad["error"])
    good = scores.filter(pl.col("error").is_null())
    assert set(good["user_id"]) == set(users) - failing and good["llm_score"].null_count() == 0
    assert tableio.read_manifest(run, "llm_scores")["extra"]["errors"] == bad.height
    assert (
        tableio.read_manifest(run, "rankings")["rows"]
        == tableio.read_manifest(run, "candidates")["rows"]
    )


def _fixture_summaries(run: Path, users: list[str]) -> None:
    n = len(users)
    tableio.write_table(
        run,
        "user_summaries",
        pl.DataFrame(
            {
                "user_id": users,
                "summary": ["likes films"] * n,
                "model": ["fixture"] * n,
                "prompt_version": [PROMPT_VERSION] * n,
                "history_fingerprint": ["x"] * n,
                "n_history": pl.Series([1] * n, dtype=pl.Int32),
            }
        ),
        stage="fixture",
        stage_key="fixture",
    )


def test_llm_disabled_keeps_candidate_order(tmp_path):
    run = tmp_path / "run"
    write_llm_run(run)
    cfg = load_config(
        None, ["llm.enabled=false", "llm.model=/does/not/matter", "rank.method=fusion"]
    )
    run_stages(run, cfg, LLM)
    assert tableio.read_manifest(run, "user_summaries")["rows"] == 0
    assert tableio.read_manifest(run, "llm_scores")["extra"]["disabled"] is True
    cands = tableio.read_polars(run, "candidates").sort("user_id", "rank")
    ranks = tableio.read_polars(run, "rankings").sort("user_id", "rank")
    assert ranks.select("user_id", "item_id", "rank", "score").equals(
        cands.select("user_id", "item_id", "rank", "score")
    )


def test_kill_9_during_llm_scores_then_resume(tmp_path):
    """A real `walkrank run` process is killed (SIGKILL, from the fault hook) right after
    shard 3's data file is written and before its marker; the same command again reuses the
    shards committed before the kill and adds no duplicates."""
    path = build_tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    run = out / "r"
    write_llm_run(run, seed=5, n_users=40)
    _fixture_summaries(run, [f"u{u:02d}" for u in range(40)])
    cmd = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "--out",
        str(out),
        "--run-id",
        "r",
        "--stages",
        "llm_scores",
        "--set",
        f"llm.model={path}",
        "--set",
        "llm.max_users=0",
        "--set",
        "llm.shard_users=2",
        "--set",
        "llm.user_batch=1",
        "--set",
        "llm.pair_batch=2",
        "--set",
        "ray.num_cpus=2",
    ]
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV} | {"HF_HUB_OFFLINE": "1"}
    log = tmp_path / "killed.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd, cwd=root, env={**env, FAULT_ENV: "llm_scores/shard3:kill"},
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        try:
            proc.wait(timeout=600)
        finally:
            # The driver's Ray processes (its own session) go with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    killed = log.read_text()
    assert proc.returncode == -signal.SIGKILL, killed[-3000:]
    assert "[fault] kill at llm_scores/shard3: shard-00003.parquet written, marker absent" in (
        killed
    )
    work = run / "_work"
    (shard_dir,) = work.glob("llm_scores-*")
    assert (shard_dir / "shard-00003.parquet").exists()
    committed = {int(p.stem[len("shard-") :]) for p in shard_dir.glob("shard-*.done")}
    # Every shard the process said it committed has its marker, and no other shard does.
    said = {int(s) for s in re.findall(r"\] shard (\d+) committed: ", killed)}
    assert committed == said and committed and 3 not in committed, (committed, said)
    assert not tableio.is_committed(run, "llm_scores")

    again = subprocess.run(
        [*cmd, "--set", "run.progress_seconds=0.01"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming: {len(committed)} of 20 shards already committed" in again.stderr
    todo = 40 - 2 * len(committed)
    assert f"[llm_scores] llm [{'#' * 20}] 100% {todo}/{todo} users" in again.stderr
    m = tableio.read_manifest(run, "llm_scores")["extra"]
    assert (m["shards_reused"], m["shards_computed"]) == (len(committed), 20 - len(committed))
    assert m["users_computed"] == 40 - 2 * len(committed)
    scores = tableio.read_polars(run, "llm_scores")
    cands = tableio.read_polars(run, "candidates")
    q = _quoted(run)
    expected = sorted(
        (u, i)
        for u, i, r in zip(cands["user_id"], cands["item_id"], cands["rank"], strict=True)
        if r <= 20 and q[i] is not None
    )
    assert sorted(zip(scores["user_id"], scores["item_id"], strict=True)) == expected
    assert scores["llm_score"].null_count() == 0
    assert not work.exists()  # shards are removed once the table is committed


def test_resume_with_another_shard_size_recomputes_every_user_once(
    tmp_path, tiny_path, ray_local, monkeypatch
):
    """Shards of llm.shard_users=2 are committed, then the run stops (an injected fault at
    shard 3); the re-run with shard_users=5 must not reuse them under the new numbering
    (users dropped or doubled): its table equals a clean shard_users=5 run's."""
    from pipelines.errors import InjectedFaultError

    users = [f"u{u:02d}" for u in range(12)]
    base = [
        f"llm.model={tiny_path}",
        "llm.max_users=0",
        "llm.score_top_m=4",
        "ray.num_cpus=2",
        "reuse.run=none",
    ]  # the clean run computes every user (no rows of "resumed")
    runs = {}
    for name in ("resumed", "clean"):
        runs[name] = tmp_path / name
        write_llm_run(runs[name], seed=2)
        _fixture_summaries(runs[name], users)
    stage = [STAGES["llm_scores"]]
    monkeypatch.setenv(FAULT_ENV, "llm_scores/shard3:raise")
    with pytest.raises(InjectedFaultError):
        run_stages(runs["resumed"], load_config(None, [*base, "llm.shard_users=2"]), stage)
    monkeypatch.delenv(FAULT_ENV)
    done = list((runs["resumed"] / "_work").glob("llm_scores-*/shard-*.done"))
    assert done and not tableio.is_committed(runs["resumed"], "llm_scores")
    five = load_config(None, [*base, "llm.shard_users=5"])
    run_stages(runs["resumed"], five, stage)
    run_stages(runs["clean"], five, stage)
    m = tableio.read_manifest(runs["resumed"], "llm_scores")["extra"]
    assert (m["shards"], m["shards_reused"], m["users_computed"]) == (3, 0, 12)
    assert tableio.read_manifest(runs["clean"], "llm_scores")["extra"]["users_computed"] == 12
    got, want = (
        tableio.read_polars(runs[n], "llm_scores").sort("user_id", "item_id")
        for n in ("resumed", "clean")
    )
    assert got.select("user_id", "item_id").is_duplicated().sum() == 0
    assert got.equals(want)


def test_a_changed_item_title_recomputes_the_summaries_that_quote_it(
    tmp_path, tiny_path, ray_local
):
    run = tmp_path / "run"
    write_llm_run(run, seed=4)
    cfg = load_config(
        None,
        [f"llm.model={tiny_path}", "llm.max_users=0", "summaries.max_new_tokens=3",
         "ray.num_cpus=2"],
    )  # fmt: skip
    run_stages(run, cfg, [STAGES["summaries"]])
    before = tableio.read_polars(run, "user_summaries")
    items = tableio.read_arrow(run, "items")
    changed = "i005"
    titles = [
        "A new title for five" if i == changed else t
        for i, t in zip(items["item_id"].to_pylist(), items["title"].to_pylist(), strict=True)
    ]
    tableio.write_table(
        run,
        "items",
        items.set_column(items.schema.get_field_index("title"), "title", pa.array(titles)),
        stage="fixture",
        stage_key="fixture-retitled",
    )
    quoting = {
        u for u in before["user_id"] if changed in _history_ids(run, u, cfg.summaries.history)
    }
    assert 0 < len(quoting) < before.height
    run_stages(run, cfg, [STAGES["summaries"]])
    m = tableio.read_manifest(run, "user_summaries")["extra"]
    assert (m["users_computed"], m["kept_unchanged"]) == (
        len(quoting),
        before.height - len(quoting),
    )
    after = tableio.read_polars(run, "user_summaries")
    old = dict(zip(before["user_id"], before["history_fingerprint"], strict=True))
    assert {u for u, fp in zip(after["user_id"], after["history_fingerprint"], strict=True)
            if old[u] != fp} == quoting  # fmt: skip


def _history_ids(run: Path, user: str, n: int) -> list[str]:
    q = _quoted(run)
    train = tableio.read_polars(run, "train").filter(pl.col("user_id") == user)
    return [i for i in train.sort("ts", "item_id")["item_id"].to_list() if q[i] is not None][-n:]
