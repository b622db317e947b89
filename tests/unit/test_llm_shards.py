"""The LLM shard store: its key covers the execution settings, markers name their users, and
a resume reuses a shard only for exactly those users."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.llm.shards import ShardStore, shard_key


def _rows(users: list[str]) -> pa.Table:
    return pa.table({"user_id": users, "llm_score": [1.0] * len(users)})


def test_key_changes_with_every_setting():
    base = {"shard_users": 8, "pair_batch": 32, "batching": "shared_prefix", "device": "auto"}
    keys = {shard_key("k", base), shard_key("k2", base)}
    for name, other in (
        ("shard_users", 3),
        ("pair_batch", 4),
        ("batching", "padded"),
        ("device", "cpu"),
    ):
        keys.add(shard_key("k", {**base, name: other}))
    assert len(keys) == 6
    assert shard_key("k", base) == shard_key("k", dict(reversed(base.items())))


def test_a_shard_is_reused_only_for_the_users_its_marker_names(tmp_path):
    store = ShardStore(tmp_path, "llm_scores", "key")
    store.commit(0, _rows(["a", "b"]), users=["b", "a"])
    store.commit(1, _rows(["c"]), users=["c"])
    assert store.done() == {0, 1}
    assert store.user_ids(0) == ["a", "b"]
    ok, wrong = store.verified_done({0: ["a", "b"], 1: ["c", "d"], 2: ["e"]})
    assert (ok, wrong) == ({0}, {1})
    assert store.read([0, 1], _rows([]).schema).num_rows == 3


def test_a_shard_whose_rows_are_not_its_marker_users_is_an_error(tmp_path):
    store = ShardStore(tmp_path, "llm_scores", "key")
    store.commit(0, _rows(["a", "x"]), users=["a", "b"])
    with pytest.raises(RuntimeError, match="holds users other than its marker names"):
        store.read([0], _rows([]).schema)


def test_stale_folders_of_other_keys_are_dropped(tmp_path):
    old = ShardStore(tmp_path, "llm_scores", shard_key("k", {"shard_users": 2}))
    old.commit(0, _rows(["a"]), users=["a"])
    new = ShardStore(tmp_path, "llm_scores", shard_key("k", {"shard_users": 3}))
    assert new.clear_stale() == [old.dir.name]
    assert not old.dir.exists() and new.done() == set()


def test_a_shard_computed_again_replaces_data_and_marker(tmp_path):
    store = ShardStore(tmp_path, "summaries", "key")
    store.commit(0, _rows(["a", "b"]), users=["a", "b"])
    store.commit(0, _rows(["a", "c"]), users=["a", "c"])
    assert store.verified_done({0: ["a", "c"]}) == ({0}, set())
    assert sorted(store.read([0], _rows([]).schema).column("user_id").to_pylist()) == ["a", "c"]
