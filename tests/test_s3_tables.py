"""The table commit protocol, the damage checks and the run lease, on a real S3 server
(SeaweedFS, tests/s3_server.py) and on local disk alike: what the manifest lists is what
every reader reads; a leftover version folder is ignored, then cleaned; a missing or
truncated data file is an error naming the table and the file; one writer per run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import polars as pl
import pyarrow as pa
import pytest

from pipelines import tableio
from pipelines.errors import RunLockedError, TableDamagedError
from pipelines.storage import Location
from tests.s3_fixtures import s3  # noqa: F401 - the module's S3 server

WHERE = ["local", "s3"]


def _rankings(n: int, user: str = "u") -> pa.Table:
    return pa.table(
        {
            "user_id": [f"{user}{i}" for i in range(n)],
            "item_id": [f"i{i}" for i in range(n)],
            "rank": pa.array(range(1, n + 1), pa.int32()),
            "score": [1.0 / (i + 1) for i in range(n)],
        }
    )


@pytest.fixture(params=WHERE)
def run_dir(request, tmp_path) -> Location:
    if request.param == "local":
        return Location(tmp_path / "run")
    request.getfixturevalue("s3")
    return Location(f"s3://walkrank/tables/{uuid.uuid4().hex[:8]}")


def _write(run: Location, table: pa.Table, key: str = "k") -> dict:
    return tableio.write_table(run, "rankings", table, stage="t", stage_key=key)


def test_readers_read_exactly_the_listed_files(run_dir):
    first = _write(run_dir, _rankings(3))
    second = _write(run_dir, _rankings(5, "w"), "k2")
    assert first["version"] != second["version"]
    (entry,) = second["files"]
    assert entry["path"].startswith(second["version"] + "/")
    assert entry["size"] == (run_dir / "rankings" / entry["path"]).size()
    assert ("etag" in entry) == (run_dir.scheme == "s3")
    # The replaced version is gone; a stray version folder (a killed writer's) is never read.
    stray = run_dir / "rankings" / "v-0000dead0000" / "part-00000.parquet"
    stray.write_bytes(b"PAR1 not a table at all")
    for read in (
        lambda: pl.from_arrow(tableio.read_arrow(run_dir, "rankings")),
        lambda: tableio.scan_polars(run_dir, "rankings").collect(),
        lambda: tableio.read_polars(run_dir, "rankings"),
    ):
        got = read().sort("rank")
        assert got["user_id"].to_list() == [f"w{i}" for i in range(5)]
    versions = {e.rel for e in (run_dir / "rankings").list() if e.rel.startswith("v-")}
    assert second["version"] in versions and first["version"] not in versions
    assert tableio.clean_uncommitted(run_dir) == ["rankings/v-0000dead0000"]
    assert not stray.exists()
    assert tableio.verify_table(run_dir, "rankings")["stage_key"] == "k2"


def test_a_missing_or_truncated_file_or_a_bad_manifest_names_the_table(run_dir):
    m = _write(run_dir, _rankings(40))
    data = run_dir / "rankings" / m["files"][0]["path"]
    whole = data.read_bytes()
    data.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(TableDamagedError) as cut:
        tableio.verify_table(run_dir, "rankings")
    assert "table 'rankings'" in str(cut.value) and data.name in str(cut.value)
    assert f"has {len(whole) // 2} bytes, the manifest lists {len(whole)}" in str(cut.value)
    data.delete()
    with pytest.raises(TableDamagedError, match=f"{data.name} is missing"):
        tableio.verify_table(run_dir, "rankings")
    # The same write again (what --force does) repairs it.
    _write(run_dir, _rankings(40))
    assert tableio.verify_table(run_dir, "rankings")["rows"] == 40

    (run_dir / "rankings" / tableio.MANIFEST).write_text('{"table": "rankings", "fi')
    assert tableio.is_committed(run_dir, "rankings")  # damaged, not absent: never skipped
    with pytest.raises(TableDamagedError, match="table 'rankings' .* does not parse"):
        tableio.read_manifest(run_dir, "rankings")
    _write(run_dir, _rankings(2))
    assert tableio.read_polars(run_dir, "rankings").height == 2


def test_linked_table_reads_the_source_files(run_dir):
    _write(run_dir, _rankings(4))
    fit = run_dir / "fit"
    tableio.link_table(run_dir, "rankings", fit)
    assert (
        tableio.read_manifest(fit, "rankings")["fingerprint"]
        == (tableio.read_manifest(run_dir, "rankings")["fingerprint"])
    )
    assert tableio.read_polars(fit, "rankings").height == 4
    assert tableio.clean_uncommitted(fit) == []  # the link owns no version folder
    _write(run_dir, _rankings(6), "k2")
    tableio.link_table(run_dir, "rankings", fit)  # refreshed before the fit pass reads it
    assert tableio.verify_table(fit, "rankings")["rows"] == 6


def test_a_second_writer_is_refused_while_the_lease_is_held(s3):  # noqa: F811
    from pipelines.lease import LEASE, Lease
    from pipelines.run_dir import run_lock

    run = Location(f"s3://walkrank/locks/{uuid.uuid4().hex[:8]}")
    with run_lock(run, lease_seconds=30) as held:
        assert (run / LEASE).is_file()
        body = json.loads((run / LEASE).read_text())
        assert body["pid"] == os.getpid() and body["expires"] > time.time()
        with (
            pytest.raises(RunLockedError, match="being written by another process"),
            run_lock(run, lease_seconds=30),
        ):
            pass
        held.check()
        assert json.loads((run / LEASE).read_text())["token"] == held.token  # not wiped
    assert not (run / LEASE).exists()

    # An expired lease, and one whose holder on this host is gone (SIGKILL), are taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    for holder in (
        {"host": "elsewhere", "pid": 1, "token": "x", "expires": time.time() - 1},
        {"host": os.uname().nodename, "pid": int(dead.stdout), "token": "y",
         "expires": time.time() + 3600},
    ):  # fmt: skip
        (run / LEASE).write_text(json.dumps(holder))
        with run_lock(run, lease_seconds=30) as held:
            assert json.loads((run / LEASE).read_text())["token"] == held.token
    # A live holder elsewhere, not expired: refused, and its lease left as it was.
    alive = {"host": "elsewhere", "pid": 1, "token": "z", "expires": time.time() + 3600}
    (run / LEASE).write_text(json.dumps(alive))
    with pytest.raises(RunLockedError, match="pid 1 on elsewhere"):
        Lease(run, 30).acquire()
    assert json.loads((run / LEASE).read_text()) == alive


def test_the_lease_is_renewed_and_a_lost_lease_stops_the_writer(s3):  # noqa: F811
    from pipelines.lease import LEASE, Lease

    run = Location(f"s3://walkrank/locks/{uuid.uuid4().hex[:8]}")
    held = Lease(run, 0.6)  # renewed every 0.2 s
    held.acquire()
    try:
        first = json.loads((run / LEASE).read_text())["expires"]
        # A hang guard of 300 renewal periods, not a speed bound: the loops end at the first
        # renewal (0.2 s) and at the takeover's next renewal.
        deadline = time.monotonic() + 60
        while json.loads((run / LEASE).read_text())["expires"] == first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
        # Another writer takes it over (as after an expiry): the holder notices and stops.
        (run / LEASE).write_text(json.dumps({"host": "b", "pid": 2, "token": "t", "expires": 0}))
        while not held.lost.is_set():
            assert time.monotonic() < deadline, "the takeover went unnoticed"
            time.sleep(0.05)
        with pytest.raises(RunLockedError, match="lost the lease"):
            held.check()
    finally:
        held.release()
    assert json.loads((run / LEASE).read_text())["token"] == "t"  # the new holder's, kept


def test_a_partitioned_table_reads_back_from_its_version_folder(run_dir):
    m = tableio.write_table(
        run_dir, "rankings", _rankings(4), stage="t", stage_key="k", partition_by=["item_id"]
    )
    assert sorted(f["path"].split("/")[1] for f in m["files"]) == [
        f"item_id=i{i}" for i in range(4)
    ]
    assert all(f["path"].startswith(m["version"] + "/") for f in m["files"])
    got = pl.from_arrow(tableio.read_arrow(run_dir, "rankings")).sort("rank")
    assert got["user_id"].to_list() == [f"u{i}" for i in range(4)]
    assert got["item_id"].to_list() == [f"i{i}" for i in range(4)]  # from the hive paths
    scanned = tableio.scan_polars(run_dir, "rankings").collect().sort("rank")
    assert scanned["item_id"].to_list() == got["item_id"].to_list()
    assert tableio.verify_table(run_dir, "rankings")["rows"] == 4
