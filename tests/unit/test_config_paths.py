"""Path-valued settings are looked up when the config loads (pipelines/config/paths.py): a
missing input, ranker folder or model folder is a problem line naming the key and the path,
on the local filesystem and on S3 (the tests' S3 server, a real one)."""

from __future__ import annotations

import json

import pytest

from pipelines.config import config_to_toml, load_config
from pipelines.errors import ConfigError, ModelNotFoundError
from tests.s3_fixtures import s3  # noqa: F401 - the module's S3 server


def _problems(sets: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(None, sets)
    return [ln.removeprefix("  - ") for ln in str(err.value).splitlines() if ln.startswith("  - ")]


def _ranker_folder(path):
    path.mkdir(parents=True)
    (path / "meta.json").write_text("{}")
    return path


def test_a_missing_rank_model_folder_is_refused_at_load_naming_key_and_path(tmp_path):
    missing = tmp_path / "runs" / "r" / "models" / "ranker"
    assert _problems([f"rank.model={missing}"]) == [f"rank.model = '{missing}': no such folder"]
    # a relative path is shown as the folder it was looked up as
    assert _problems(["rank.model=no/such/ranker"])[0].startswith(
        "rank.model = 'no/such/ranker': no such folder (/"
    )
    model_file = tmp_path / "model.txt"
    model_file.write_text("tree")
    assert _problems([f"rank.model={model_file}"]) == [
        f"rank.model = '{model_file}': a file, not a folder"
    ]
    folder = _ranker_folder(missing)
    assert load_config(None, [f"rank.model={folder}"]).rank.model == str(folder)


def test_rank_model_latest_and_empty_name_no_folder():
    assert load_config(None, ["eval.target=serve", "rank.model=latest"]).rank.model == "latest"
    assert load_config(None, ["rank.model="]).rank.model == ""


def test_missing_inputs_are_refused_and_present_ones_load(tmp_path):
    events, items = tmp_path / "events.csv", tmp_path / "items"
    sets = [f"ingest.input={json.dumps(str(events))}", f"ingest.items={json.dumps(str(items))}"]
    assert _problems(sets) == [
        f"ingest.input = '{events}': no such file or folder",
        f"ingest.items = '{items}': no such file or folder",
    ]
    events.write_text("user_id,item_id,ts\nu,i,1\n")
    items.mkdir()  # a folder is an input too
    cfg = load_config(None, sets)
    assert (cfg.ingest.input, cfg.ingest.items) == (str(events), str(items))


@pytest.mark.parametrize("key", ["llm.model", "embeddings.model"])
def test_a_model_that_can_only_be_a_path_must_be_a_folder(tmp_path, key):
    section = key.split(".")[0]
    for missing in (str(tmp_path / "nope"), "./no-such-model", "~/no-such-walkrank-model", "a/b/c"):
        (line,) = _problems([f"{key}={json.dumps(missing)}"])
        assert line.startswith(f"{key} = '{missing}': no such folder"), line
    # A URI is no local folder: the resolvers would refuse it too.
    assert _problems([f"{key}=s3://walkrank/models/m"])[0].startswith(f"{key} = 's3://")
    # Not a path: an org/name id (looked up in the Hugging Face cache when the stage runs).
    assert getattr(load_config(None, [f"{key}=org/name"]), section).model == "org/name"
    # Unused: llm.enabled / embeddings.enabled = false never reads it.
    load_config(None, [f"{key}=/does/not/matter", f"{section}.enabled=false"])
    folder = tmp_path / "model"
    folder.mkdir()
    assert getattr(load_config(None, [f"{key}={folder}"]), section).model == str(folder)


def test_the_refused_model_paths_are_what_the_resolvers_refuse(tmp_path):
    """The load check and the resolvers share one rule: what load refuses, the stage would
    have refused as 'path not found' after the stages before it ran."""
    from pipelines.embeddings.encoder import resolve_encoder
    from pipelines.llm.model import resolve_model

    for missing in (str(tmp_path / "nope"), "./no-such-model", "a/b/c", "s3://walkrank/m"):
        for resolve, key in ((resolve_model, "llm.model"), (resolve_encoder, "embeddings.model")):
            with pytest.raises(ModelNotFoundError, match="path not found"):
                resolve(missing)
            assert _problems([f"{key}={json.dumps(missing)}"])


def test_check_paths_false_reads_back_a_run_whose_input_has_gone(tmp_path):
    """evaluate and gate read a finished run's config.toml: its input and model may be gone
    by then, and neither reads them."""
    from pipelines.quality_gate import gate_config
    from pipelines.storage import Location

    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,ts\nu,i,1\n")
    ranker = _ranker_folder(tmp_path / "models" / "ranker")
    cfg = load_config(None, [f"ingest.input={json.dumps(str(events))}", f"rank.model={ranker}"])
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(config_to_toml(cfg))
    events.unlink()
    (ranker / "meta.json").unlink()
    ranker.rmdir()
    with pytest.raises(ConfigError, match="ingest.input = .*: no such file or folder"):
        load_config(run / "config.toml")
    assert load_config(run / "config.toml", check_paths=False) == cfg
    assert gate_config(Location(run)) == cfg


def test_a_stage_job_checks_the_paths_its_stage_reads(tmp_path):
    """jobs/stage_job.py passes its stage's config_keys: a Spark stage's job, on a machine
    without the LLM's folder, is not refused for it; the LLM stage's job is."""
    from pipelines.stage_registry import STAGES

    missing = {
        "ingest.input": json.dumps(str(tmp_path / "events.csv")),
        "rank.model": str(tmp_path / "ranker"),
        "llm.model": str(tmp_path / "llm"),
        "embeddings.model": str(tmp_path / "encoder"),
    }
    sets = [f"{k}={v}" for k, v in missing.items()]
    checked = {}
    for stage in ("graph", "ingest", "rank", "llm_scores", "item_embeddings"):
        try:
            load_config(None, sets, check_paths=STAGES[stage].config_keys)
            checked[stage] = []
        except ConfigError as err:
            lines = [ln for ln in str(err).splitlines() if ln.startswith("  - ")]
            checked[stage] = [ln.removeprefix("  - ").split(" = ")[0] for ln in lines]
    assert checked == {
        "graph": [],
        "ingest": ["ingest.input"],
        "rank": ["rank.model"],
        "llm_scores": ["llm.model"],
        "item_embeddings": ["embeddings.model"],
    }
    assert len(_problems(sets)) == 4  # the default: every one


def test_s3_paths_are_looked_up_in_the_object_store(s3):  # noqa: F811 - the fixture
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="in/events.csv", Body=b"user_id,item_id,ts\n")
    client.put_object(Bucket=s3.bucket, Key="runs/r/models/ranker/meta.json", Body=b"{}")
    root = f"s3://{s3.bucket}"
    cfg = load_config(
        None, [f'ingest.input="{root}/in/events.csv"', f'rank.model="{root}/runs/r/models/ranker"']
    )
    assert cfg.rank.model == f"{root}/runs/r/models/ranker"
    # s3a:// (Spark's spelling) names the same objects.
    load_config(None, [f'ingest.input="s3a://{s3.bucket}/in/events.csv"'])
    assert _problems(
        [f'ingest.input="{root}/in/nope.csv"', f'rank.model="{root}/runs/other/models/ranker"']
    ) == [
        f"ingest.input = '{root}/in/nope.csv': no such file or folder",
        f"rank.model = '{root}/runs/other/models/ranker': no such folder",
    ]
