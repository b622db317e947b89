"""Ingest on Spark: quarantine (line, reason) pairs written out by hand, accepted events
against a plain-Python model of the same rules, exact line numbers, formats, dense ids and
real data (ml-100k, Amazon Toys)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from pipelines.config import IngestConfig
from pipelines.errors import InputFormatError
from pipelines.ingest import detect_format, run_ingest
from pipelines.ingest.columns import resolve
from pipelines.ingest.line_numbers import read_numbered_lines
from schemas.tables import EVENTS, ITEMS, QUARANTINE

pytestmark = pytest.mark.spark

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
SITE = Path(pytest.__file__).resolve().parents[1]  # the venv's site-packages
ML100K = SITE / "recbole" / "dataset_example" / "ml-100k" / "ml-100k.inter"

# Lines that a text editor would not keep: put in as bytes when a fixture is copied.
BAD_BYTES = {
    "events.csv": b"u\xff4,i5,1700000000,click,1",
    "events.tsv": b"c\xff5\tp1\t1700000000\t1",
    "events.jsonl": b'{"user_id": "u\xff5", "item_id": "i1", "ts": 1700000000}',
    "events.inter": b"u\xff5\ti1\t1\t1700000000",
    "ratings.dat": b"9\xff::1::5::978300760",
    "sequences.txt": b"u\xff9 i1 i2",
}
LATIN1_MOVIE = b"3::Les Mis\xe9rables (1995)::Drama"


def materialize(tmp_path: Path, name: str) -> Path:
    """Copy a fixture (file or folder) into tmp_path, putting the byte lines in."""
    src = FIXTURES / name
    dst = tmp_path / name
    if src.is_dir():
        shutil.copytree(src, dst)
        files = [p for p in dst.iterdir() if p.is_file()]
    else:
        shutil.copy(src, dst)
        files = [dst]
    for f in files:
        data = f.read_bytes().replace(b"@@BAD_BYTES@@", BAD_BYTES.get(f.name, b""))
        f.write_bytes(data.replace(b"@@LATIN1@@", LATIN1_MOVIE))
    return dst


# ---------------------------------------------------------------- the plain-Python model

WS = " \t\n\r\f\v"
NUM = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LO, HI = 0, (dt.datetime(2100, 1, 1, tzinfo=dt.UTC) - EPOCH) // dt.timedelta(microseconds=1)


def clean(s: str | None) -> str | None:
    return (s.strip(WS) or None) if s is not None else None


def model_micros(text: str) -> int | None:
    if NUM.fullmatch(text):
        x = float(text)
        return round(x * (1e6 if abs(x) < 1e11 else 1e3 if abs(x) < 1e14 else 1.0))
    try:
        d = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    d = d if d.tzinfo else d.replace(tzinfo=dt.UTC)
    return (d - EPOCH) // dt.timedelta(microseconds=1)


def model_event(user, item, ts, etype, value, ts_pos=None):
    """(reason, None) or (None, (user, item, ts_micros, event_type, value))."""
    user, item, ts, etype, value = map(clean, (user, item, ts, etype, value))
    if user is None:
        return "missing user_id", None
    if item is None:
        return "missing item_id", None
    if ts_pos is not None:
        us = ts_pos * 1_000_000
    else:
        us = model_micros(ts) if ts is not None else None
        if us is None:
            return "unparsable timestamp", None
        if not LO <= us < HI:
            return "timestamp out of range", None
    if value is not None and not (NUM.fullmatch(value) and math.isfinite(float(value))):
        return "non-numeric value", None
    return None, (user, item, us, etype, None if value is None else float(value))


def json_text(v):
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v)  # true, 4, 1.5: the JSON text, as Spark's string map gives it


def model_ingest(path: Path, fmt: str, cols: dict[str, int] | None = None):
    """Quarantined (line, reason) pairs and accepted events (before dedup) of one file."""
    quarantine, accepted = [], []
    lines = path.read_bytes().split(b"\n")
    lines = lines[:-1] if lines and lines[-1] == b"" else lines
    header = fmt in ("csv", "tsv", "recbole")
    n_cols = None
    for no, raw in enumerate(lines, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            quarantine.append((no, "undecodable bytes"))
            continue
        if header and no == 1:
            n_cols = len(text.split("\t" if fmt != "csv" else ","))
            continue
        rows = []  # (reason, fields, ts_pos)
        if fmt == "sequences":
            # ASCII whitespace only, as documented (str.split() also splits on \x1c-\x1f, \xa0).
            tokens = [t for t in re.split(r"[ \t\n\x0b\f\r]+", text) if t]
            if len(tokens) < 2:
                quarantine.append((no, "empty sequence"))
                continue
            rows = [
                (tokens[0], item, None, None, None, pos) for pos, item in enumerate(tokens[1:], 1)
            ]
        elif fmt == "jsonl":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                quarantine.append((no, "malformed json"))
                continue

            def get(*keys, obj=obj):
                return next((json_text(obj[k]) for k in keys if obj.get(k) is not None), None)

            rows = [
                (
                    get("user_id", "user", "userId", "uid"),
                    get("item_id", "item", "itemId", "movieId", "iid"),
                    get("ts", "timestamp", "time", "datetime"),
                    get("event_type", "event", "type", "action"),
                    get("value", "rating", "score"),
                    None,
                )
            ]
        else:
            if fmt in ("csv", "tsv"):
                try:
                    reader = csv.reader(
                        [text], delimiter="," if fmt == "csv" else "\t", strict=True
                    )
                    fields = next(reader, [])
                except csv.Error:  # unterminated quote, or text after a closing quote
                    quarantine.append((no, "malformed quoting"))
                    continue
            else:
                fields = text.split("::" if fmt == "movielens" else "\t") if text else []
            expected = n_cols if header else 4
            if len(fields) != expected:
                quarantine.append(
                    (no, f"wrong field count (expected {expected}, got {len(fields)})")
                )
                continue

            def at(name, fields=fields):
                return fields[cols[name]] if name in cols else None

            rows = [(at("user"), at("item"), at("ts"), at("type"), at("value"), None)]
        for user, item, ts, etype, value, pos in rows:
            reason, event = model_event(user, item, ts, etype, value, ts_pos=pos)
            if reason:
                quarantine.append((no, reason))
            else:
                accepted.append(event)
    return quarantine, accepted


# ---------------------------------------------------------------- helpers


def event_tuples(res) -> list[tuple]:
    rows = res.events.select(
        "user_id", "item_id", F.unix_micros("ts").alias("us"), "event_type", "value"
    ).collect()
    return sorted((tuple(r) for r in rows), key=repr)  # repr: None sorts with strings


def quarantine_pairs(res, source: Path) -> list[tuple[int, str]]:
    rows = res.quarantine.where(F.col("source") == str(source)).select("line", "reason").collect()
    return sorted((r["line"], r["reason"]) for r in rows)


def check(res, path: Path, fmt: str, expected_quarantine, cols=None) -> None:
    """Spark = hand-written quarantine = model; accepted events = model; counts add up."""
    got_q = quarantine_pairs(res, path)
    assert got_q == sorted(expected_quarantine)
    model_q, model_accepted = model_ingest(path, fmt, cols)
    assert sorted(model_q) == sorted(expected_quarantine)  # the model agrees with the hand list
    assert event_tuples(res) == sorted(set(model_accepted), key=repr)
    c = res.counts
    assert res.format == fmt
    assert c["rows_accepted"] == res.events.count() == len(set(model_accepted))
    assert c["rows_quarantined"] == len(expected_quarantine)
    assert c["duplicates_collapsed"] == len(model_accepted) - len(set(model_accepted))
    assert c["rows_in"] == c["rows_accepted"] + c["rows_quarantined"] + c["duplicates_collapsed"]
    assert c["rows_in"] == len(model_accepted) + len(expected_quarantine)
    keys = {}
    for _, reason in expected_quarantine:
        key = "quarantine_" + re.sub(r"[^a-z0-9]+", "_", reason.split(" (")[0]).strip("_")
        keys[key] = keys.get(key, 0) + 1
    assert {k: v for k, v in c.items() if k.startswith("quarantine_") and v} == keys
    for df, contract in ((res.events, EVENTS), (res.items, ITEMS), (res.quarantine, QUARANTINE)):
        want = [(f.name, f.dataType) for f in contract.spark_type().fields]
        assert [(f.name, f.dataType) for f in df.schema.fields] == want


# ---------------------------------------------------------------- formats with every bad kind


@pytest.fixture(scope="module")
def csv_run(spark, tmp_path_factory):
    path = materialize(tmp_path_factory.mktemp("csv"), "events.csv")
    return path, run_ingest(spark, IngestConfig(input=str(path)))


def test_csv_quarantine_and_model(csv_run):
    path, res = csv_run
    check(
        res,
        path,
        "csv",
        [
            (7, "missing user_id"),
            (8, "missing item_id"),
            (9, "unparsable timestamp"),
            (10, "timestamp out of range"),
            (11, "non-numeric value"),
            (12, "wrong field count (expected 5, got 4)"),
            (13, "undecodable bytes"),
            (17, "timestamp out of range"),
            (18, "non-numeric value"),
            (19, "wrong field count (expected 5, got 6)"),
            (20, "wrong field count (expected 5, got 0)"),
            (21, "missing user_id"),
        ],
        cols={"user": 0, "item": 1, "ts": 2, "type": 3, "value": 4},
    )
    assert res.counts["rows_in"] == 23 and res.counts["duplicates_collapsed"] == 2
    events = {(u, i): (us, v) for u, i, us, _, v in event_tuples(res)}
    assert ("u1", "i2,with comma") in events  # quoted comma
    assert ("u5", 'i"7') in events  # doubled quote inside quotes
    assert events[("u7", "i1")] == (1_700_000_000_000_000, None)  # +01:00, trimmed id
    assert events[("u4", "i5")][0] == events[("u4", "i6")][0] == 1_700_000_000_000_000  # ms, us
    raw = res.quarantine.where(F.col("line") == 13).first()["raw"]
    assert raw == "u\ufffd4,i5,1700000000,click,1"


def test_tsv_with_column_mapping(spark, tmp_path):
    path = materialize(tmp_path, "events.tsv")
    mapping = {"user_id": "customer", "item_id": "product", "ts": "when", "value": "stars"}
    res = run_ingest(spark, IngestConfig(input=str(path), columns=mapping))
    check(
        res,
        path,
        "tsv",
        [
            (6, "missing item_id"),
            (7, "wrong field count (expected 4, got 3)"),
            (8, "undecodable bytes"),
            (10, "non-numeric value"),
        ],
        cols={"user": 0, "item": 1, "ts": 2, "value": 3},
    )
    assert ("c4", "p 4") in {(u, i) for u, i, *_ in event_tuples(res)}
    header = ["customer", "product", "when", "stars"]
    with pytest.raises(InputFormatError, match="its columns are: customer, product, when, stars"):
        resolve(header, {"user_id": "nope"}, str(path))
    with pytest.raises(InputFormatError, match="no user_id column"):
        resolve(header, {}, str(path))
    with pytest.raises(InputFormatError, match="unknown key"):
        resolve(header, {"user": "customer"}, str(path))
    # Defaults: exact candidates first, then case-insensitive ones.
    assert resolve(["UserId", "item", "Rating"], {}, "x") == {
        "user_id": ("UserId",),
        "item_id": ("item",),
        "ts": (),
        "event_type": (),
        "value": ("Rating",),
    }


def test_jsonl_quarantine_and_model(spark, tmp_path):
    path = materialize(tmp_path, "events.jsonl")
    res = run_ingest(spark, IngestConfig(input=str(path)))
    check(
        res,
        path,
        "jsonl",
        [
            (4, "malformed json"),
            (5, "malformed json"),
            (6, "missing user_id"),
            (7, "missing item_id"),
            (8, "undecodable bytes"),
            (10, "unparsable timestamp"),
            (11, "malformed json"),
            (12, "unparsable timestamp"),
            (13, "non-numeric value"),
        ],
    )
    assert ("42", "7", 1_700_000_000_000_000, "view", 2.5) in event_tuples(res)


def test_recbole_with_item_catalog(spark, tmp_path):
    path = materialize(tmp_path, "events.inter")
    shutil.copy(FIXTURES / "events.item", tmp_path / "events.item")
    res = run_ingest(spark, IngestConfig(input=str(path)))
    check(
        res,
        path,
        "recbole",
        [
            (5, "missing item_id"),
            (6, "non-numeric value"),
            (7, "wrong field count (expected 4, got 5)"),
            (9, "undecodable bytes"),
        ],
        cols={"user": 0, "item": 1, "value": 2, "ts": 3},
    )
    items = {r["item_id"]: r.asDict() for r in res.items.collect()}
    # Event items plus the catalog-only i9, indexed in id order ('"' sorts before 'i').
    assert {k: v["item_idx"] for k, v in items.items()} == {
        '"quoted"': 0,
        "i1": 1,
        "i2": 2,
        "i9": 3,
    }
    assert {k: v["popularity"] for k, v in items.items()} == {
        '"quoted"': 1,
        "i1": 2,
        "i2": 1,
        "i9": 0,
    }
    assert items["i1"]["title"] == "Movie One"  # the first catalog row wins
    assert items["i1"]["text"] == "release_year: 1999; class: Drama"
    assert items["i9"]["title"] == "Catalog Only" and items['"quoted"']["title"] is None
    catalog = tmp_path / "events.item"
    assert quarantine_pairs(res, catalog) == [(5, "missing item_id"), (6, "duplicate item_id")]
    assert res.counts["catalog_rows_quarantined"] == 2 and res.counts["catalog_rows_in"] == 5


def test_movielens_with_latin1_catalog(spark, tmp_path):
    folder = materialize(tmp_path, "movielens")
    path = folder / "ratings.dat"
    res = run_ingest(spark, IngestConfig(input=str(path)))
    check(
        res,
        path,
        "movielens",
        [
            (4, "non-numeric value"),
            (5, "wrong field count (expected 4, got 3)"),
            (7, "undecodable bytes"),
            (8, "missing user_id"),
        ],
        cols={"user": 0, "item": 1, "value": 2, "ts": 3},
    )
    items = {r["item_id"]: (r["item_idx"], r["title"], r["text"]) for r in res.items.collect()}
    assert items == {
        "1": (0, "Toy Story (1995)", "Animation, Children's, Comedy"),
        "2": (1, "Jumanji (1995)", "Adventure, Children's, Fantasy"),
        "3": (2, "Les Misérables (1995)", "Drama"),  # latin-1 line decoded
        "4": (3, None, None),  # its catalog line is quarantined
    }
    assert quarantine_pairs(res, folder / "movies.dat") == [
        (4, "wrong field count (expected 3, got 2)")
    ]


def test_sequences(spark, tmp_path):
    path = materialize(tmp_path, "sequences.txt")
    res = run_ingest(spark, IngestConfig(input=str(path)))
    check(
        res,
        path,
        "sequences",
        [(3, "empty sequence"), (4, "empty sequence"), (5, "undecodable bytes")],
    )
    seconds = [(u, i, us // 1_000_000) for u, i, us, _, _ in event_tuples(res)]
    # Repeated items are different events; u1's second line restarts at 1 (a duplicate).
    assert [s for s in seconds if s[0] == "u2"] == [
        ("u2", "i2", 1),
        ("u2", "i2", 2),
        ("u2", "i4", 3),
    ]
    assert res.counts["duplicates_collapsed"] == 1


def test_parquet_input(spark, tmp_path):
    (tmp_path / "a b+c").mkdir()
    path = tmp_path / "a b+c" / "events.parquet"  # Spark URL-encodes the space, not the '+'
    ts = [dt.datetime(2024, 1, 1, h, tzinfo=dt.UTC) for h in range(4)]
    pq.write_table(
        pa.table(
            {
                "user": ["a", None, "b", "a"],
                "item": ["x", "y", "y", "x"],
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "rating": [1.0, 2.0, 3.0, 4.0],
            }
        ),
        path,
    )
    res = run_ingest(spark, IngestConfig(input=str(path)))
    assert res.format == "parquet"
    q = res.quarantine.collect()
    assert [(r["source"], r["line"], r["reason"]) for r in q] == [
        (str(path), None, "missing user_id")
    ]
    assert json.loads(q[0]["raw"])["item"] == "y"
    base = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z (a UTC timestamp column)
    assert event_tuples(res) == [
        ("a", "x", base, None, 1.0),
        ("a", "x", base + 3 * 3_600_000_000, None, 4.0),
        ("b", "y", base + 2 * 3_600_000_000, None, 3.0),
    ]
    pq.write_table(pa.table({"user_id": ["a"], "item_id": ["x"]}), tmp_path / "no_ts.parquet")
    with pytest.raises(InputFormatError, match="no ts column"):
        run_ingest(spark, IngestConfig(input=str(tmp_path / "no_ts.parquet")))


def test_csv_without_ts_is_positional(spark, tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("user,item,score\na,x,1\nb,y,\na,x,1\n")
    # ts = the data row's number (line - 1) in seconds; positional ts is never range-checked.
    res = run_ingest(spark, IngestConfig(input=str(path), min_ts="2000-01-01"))
    assert event_tuples(res) == [
        ("a", "x", 1_000_000, None, 1.0),
        ("a", "x", 3_000_000, None, 1.0),
        ("b", "y", 2_000_000, None, None),
    ]
    assert res.counts["rows_in"] == 3 and res.counts["duplicates_collapsed"] == 0


# ---------------------------------------------------------------- line numbers, formats, ids


def test_line_numbers_exact_with_tiny_blocks(spark, tmp_path):
    lf = "\n".join(f"{n}:" + "x" * ((n * 37) % 300) for n in range(1, 1200)) + "\n"
    lf = lf.replace("\n7:", "\n\n7:")  # an empty line
    crlf = "\r\n".join(f"row {n}" + "y" * (n % 2000) for n in range(1, 60))
    (tmp_path / "a.txt").write_text(lf)
    (tmp_path / "b.txt").write_bytes(crlf.encode())
    key = "spark.sql.files.maxPartitionBytes"
    old = spark.conf.get(key, None)
    spark.conf.set(key, "1024")
    try:
        numbered = read_numbered_lines(spark, [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
        assert numbered.df.rdd.getNumPartitions() > 100  # many blocks per file
        rows = numbered.df.select("source", "line", "value").collect()
    finally:
        spark.conf.unset(key) if old is None else spark.conf.set(key, old)
    got = sorted((r["source"], r["line"], r["value"]) for r in rows)
    want = sorted(
        [(str(tmp_path / "a.txt"), n, v) for n, v in enumerate(lf.split("\n")[:-1], 1)]
        + [(str(tmp_path / "b.txt"), n, v) for n, v in enumerate(crlf.split("\r\n"), 1)]
    )
    assert got == want
    assert numbered.first_lines == {
        str(tmp_path / "a.txt"): "1:" + "x" * 37,
        str(tmp_path / "b.txt"): "row 1y",
    }


def test_detect_format(tmp_path):
    files = {
        "a.csv": "u,i\n",
        "a.tsv.gz": None,
        "a.jsonl": "{}\n",
        "a.dat": "1::2::3::4\n",
        "a.inter": "user_id:token\titem_id:token\n",
        "seq.txt": "1 2 3\n4 5\n",
        "json.txt": '{"user_id": 1}\n',
        "comma.txt": "user,item\n1,2\n",
        "ml.txt": "1::2::3::4\n",
        "rb.txt": "user_id:token\titem_id:token\n",
    }
    want = {
        "a.csv": "csv",
        "a.tsv.gz": "tsv",
        "a.jsonl": "jsonl",
        "a.dat": "movielens",
        "a.inter": "recbole",
        "seq.txt": "sequences",
        "json.txt": "jsonl",
        "comma.txt": "csv",
        "ml.txt": "movielens",
        "rb.txt": "recbole",
    }
    for name, text in files.items():
        (tmp_path / name).write_bytes(b"\x1f\x8b" if text is None else text.encode())
    assert {name: detect_format(str(tmp_path / name)) for name in files} == want
    pq.write_table(pa.table({"user_id": ["a"]}), tmp_path / "noext")
    assert detect_format(str(tmp_path / "noext")) == "parquet"  # magic number wins
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(2):
        pq.write_table(pa.table({"user_id": ["a"]}), folder / f"part-{k}.parquet")
    (folder / "_SUCCESS").write_text("")
    assert detect_format(str(folder)) == "parquet"
    (tmp_path / "x.xyz").write_text("hello\n")
    (tmp_path / "word.txt").write_text("hello\n")
    for name in ("x.xyz", "word.txt"):
        with pytest.raises(InputFormatError, match="cannot tell the format") as exc:
            detect_format(str(tmp_path / name))
        assert "csv, tsv, parquet, jsonl, movielens, recbole, sequences" in str(exc.value)
    with pytest.raises(InputFormatError, match="not found"):
        detect_format(str(tmp_path / "missing.csv"))
    with pytest.raises(InputFormatError, match="unknown input format 'xml'"):
        run_ingest(None, IngestConfig(input=str(tmp_path / "a.csv"), format="xml"))


def test_dense_ids_contiguous_and_deterministic(spark, csv_run):
    path, first = csv_run
    runs = [first, run_ingest(spark, IngestConfig(input=str(path)))]
    maps = []
    for res in runs:
        users = dict(res.events.select("user_id", "user_idx").distinct().collect())
        items = dict(res.items.select("item_id", "item_idx").collect())
        assert sorted(users.values()) == list(range(len(users)))
        assert sorted(items.values()) == list(range(len(items)))
        assert [u for u, _ in sorted(users.items(), key=lambda kv: kv[1])] == sorted(users)
        assert [i for i, _ in sorted(items.items(), key=lambda kv: kv[1])] == sorted(items)
        event_items = dict(res.events.select("item_id", "item_idx").distinct().collect())
        assert all(items[i] == idx for i, idx in event_items.items())
        maps.append((users, items))
    assert maps[0] == maps[1]


# ---------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_ml100k_recbole(spark):
    if not ML100K.exists():
        pytest.skip(f"recbole's ml-100k not installed at {ML100K}")
    res = run_ingest(spark, IngestConfig(input=str(ML100K)))
    assert res.format == "recbole"
    assert res.events.count() == 100_000 and res.counts["rows_quarantined"] == 0
    assert res.counts["users"] == 943 and res.counts["items"] == 1682
    items = res.items.agg(
        F.count("title").alias("titled"), F.sum("popularity").alias("pop"), F.max("item_idx")
    ).first()
    assert (items["titled"], items["pop"], items[2]) == (1682, 100_000, 1681)
    toy = res.items.where(F.col("item_id") == "1").first()
    assert toy["title"] == "Toy Story" and "Animation" in toy["text"]


@pytest.mark.realdata
def test_real_amazon_toys_sequences(spark, amazon_toys_path):
    tokens = users = 0
    for line in amazon_toys_path.read_text().splitlines():
        tokens += len(line.split())
        users += 1
    res = run_ingest(spark, IngestConfig(input=str(amazon_toys_path)))
    assert res.format == "sequences"
    assert res.counts["rows_quarantined"] == 0 and res.counts["duplicates_collapsed"] == 0
    assert res.events.count() == tokens - users
    assert res.counts["users"] == users


def test_events_manifest_counts_conserve_the_rows_of_the_file(spark, tmp_path):
    """The ingest stage's `events` manifest, read back: each count against the file itself
    (lines, quarantine rows, exact duplicates by the plain-Python model) and the identity."""
    from pipelines import tableio
    from pipelines.config import load_config
    from pipelines.runner import run_stages
    from pipelines.stage_registry import STAGES

    path = materialize(tmp_path, "events.csv")
    cfg = load_config(None, [f"ingest.input={json.dumps(str(path))}", "spark.master='local[2]'"])
    run_stages(tmp_path / "run", cfg, [STAGES["ingest"]])
    c = tableio.read_manifest(tmp_path / "run", "events")["extra"]["counts"]
    lines = path.read_bytes().split(b"\n")
    data_lines = len(lines) - 1 - (lines[-1] == b"")  # minus the header and a final newline
    cols = {"user": 0, "item": 1, "ts": 2, "type": 3, "value": 4}
    _, model_accepted = model_ingest(path, "csv", cols)
    quarantine = tableio.read_polars(tmp_path / "run", "quarantine")
    assert c["rows_in"] == data_lines == 23
    assert c["rows_accepted"] == tableio.read_manifest(tmp_path / "run", "events")["rows"]
    assert c["rows_quarantined"] == quarantine.filter(quarantine["source"] == str(path)).height
    assert c["duplicates_collapsed"] == len(model_accepted) - len(set(model_accepted)) == 2
    assert c["rows_in"] == c["rows_accepted"] + c["rows_quarantined"] + c["duplicates_collapsed"]
