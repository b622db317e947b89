"""Input formats: detection by extension (or a look at the first lines) and input file lists.

`detect_format` decides from the name first: ``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``,
``.jsonl``/``.ndjson``/``.json``, ``.dat`` (MovieLens), ``.inter`` (RecBole), each optionally
followed by a compression suffix (``.gz`` ...). Local ``.txt``/``.data``/extension-less files
are sniffed from their first lines (JSON object, ``::``, RecBole ``name:type`` header, tab,
comma, else whitespace-separated token sequences); a Parquet magic number wins over any name.
A local directory is judged by the files in it. Anything else is an InputFormatError that
names the valid formats.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from pipelines.config import CHOICES
from pipelines.errors import InputFormatError
from pipelines.storage import Location

FORMATS: tuple[str, ...] = tuple(f for f in CHOICES["ingest.format"] if f != "auto")
EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".dat": "movielens",
    ".inter": "recbole",
}
SNIFFED_EXTENSIONS = (".txt", ".data", "")
COMPRESSION = (".gz", ".bz2", ".deflate", ".zst", ".lz4", ".snappy")
# MovieLens side files that are never event files.
MOVIELENS_SIDE_FILES = ("movies.dat", "users.dat", "tags.dat")
RECBOLE_HEADER = re.compile(r"^[^:\s]+:(token|token_seq|float|float_seq)$")


def _hint() -> str:
    exts = ", ".join(f"{e}={f}" for e, f in EXTENSIONS.items())
    return f"set ingest.format (--set ingest.format=...) to one of: {', '.join(FORMATS)} (by extension: {exts})"


def visible(name: str) -> bool:
    """Spark's rule for data files: names starting with '.' or '_' are hidden."""
    return not name.startswith((".", "_")) and not name.endswith(".crc")


def extension(path: str) -> str:
    """The lower-case format extension, compression suffix stripped ('a.csv.gz' -> '.csv')."""
    name = Path(urlparse(path).path if "://" in path else path).name.lower()
    for comp in COMPRESSION:
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    return Path(name).suffix


def _open(p: Location):
    """The file's bytes, a .gz or .bz2 one decompressed by pyarrow's stream."""
    name = p.name.lower()
    codec = "gzip" if name.endswith(".gz") else "bz2" if name.endswith(".bz2") else None
    return p.fs.open_input_stream(p.path, compression=codec)


def _head_lines(p: Location, n: int = 5) -> list[str]:
    with _open(p) as fh:
        data = fh.read(1 << 16)
    raw = data.split(b"\n")
    if len(data) == 1 << 16 and len(raw) > 1:
        raw = raw[:-1]  # cut mid-line
    lines: list[str] = []
    for line in raw:
        text = line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r")
        if text.strip():
            lines.append(text)
        if len(lines) >= n:
            break
    return lines


def sniff(p: Location) -> str | None:
    """Guess a file's format from its first bytes and lines; None when nothing fits."""
    with p.fs.open_input_stream(p.path) as fh:
        if fh.read(4) == b"PAR1":
            return "parquet"
    lines = _head_lines(p)
    if not lines:
        return None
    first = lines[0]
    if first.lstrip().startswith("{"):
        return "jsonl"
    if "::" in first:
        return "movielens"
    if all(RECBOLE_HEADER.match(f) for f in first.split("\t")) and "\t" in first:
        return "recbole"
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    if all(re.fullmatch(r"\S+(\s+\S+)*", ln.strip()) for ln in lines) and any(
        len(ln.split()) >= 2 for ln in lines
    ):
        return "sequences"
    return None


def _detect_file(p: Location) -> str | None:
    ext = extension(p.path)
    if ext in SNIFFED_EXTENSIONS and p.is_file():
        return sniff(p)
    return EXTENSIONS.get(ext)


def _files(p: Location) -> list[Location]:
    return [p / e.rel for e in p.list() if not e.is_dir and visible(e.rel)]


def _detect_dir(p: Location) -> str | None:
    files = _files(p)
    if any(extension(f.name) == ".inter" for f in files):
        return "recbole"
    if (p / "ratings.dat").is_file():
        return "movielens"
    if not files and any(e.rel.endswith(".parquet") for e in p.list(recursive=True)):
        return "parquet"  # hive-partitioned: data files only in k=v/ subfolders
    found = {_detect_file(f) for f in files}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def detect_format(path: str) -> str:
    """The format of an events path (file or folder, local or a URI); InputFormatError when it
    cannot tell."""
    p = Location(path)
    if p.is_dir():
        fmt = _detect_dir(p)
    else:
        if not p.exists():
            raise InputFormatError(f"input not found: {path}", hint="check --input / ingest.input")
        fmt = _detect_file(p)
    if fmt is None:
        raise InputFormatError(f"cannot tell the format of {path}", hint=_hint())
    return fmt


def resolve_format(path: str, fmt: str) -> str:
    if fmt == "auto":
        return detect_format(path)
    if fmt not in FORMATS:
        raise InputFormatError(f"unknown input format '{fmt}'", hint=_hint())
    return fmt


def input_files(path: str, fmt: str) -> list[str]:
    """What to hand to Spark (`s3a://` for S3): the file itself, or the data files of a
    folder."""
    if not path:
        raise InputFormatError("no input given", hint="pass --input or set ingest.input")
    p = Location(path)
    if not p.exists():
        raise InputFormatError(f"input not found: {path}", hint="check --input / ingest.input")
    if not p.is_dir():
        return [p.spark_uri]
    if fmt == "parquet":
        return [p.spark_uri]  # Spark discovers files and hive partitions itself
    files = _files(p)
    if fmt == "movielens":
        files = [
            f for f in files if extension(f.name) == ".dat" and f.name not in MOVIELENS_SIDE_FILES
        ]
    elif fmt == "recbole":
        files = [f for f in files if extension(f.name) == ".inter"]
    else:
        matching = [f for f in files if EXTENSIONS.get(extension(f.name)) == fmt]
        files = matching or files
    if not files:
        raise InputFormatError(f"no {fmt} input files in directory {path}", hint=_hint())
    return [f.spark_uri for f in files]


def dataset_paths(path: str, items: str) -> tuple[str, str]:
    """(events path, catalog path). A folder holding `events/` (and optionally `items/`), as
    `walkrank generate` writes it, is one dataset: events from `events/`, the catalog from
    `items/` unless ingest.items names another."""
    if path:
        p = Location(path)
        if (p / "events").is_dir():
            catalog = p / "items"
            return str(p / "events"), items or (str(catalog) if catalog.is_dir() else "")
    return path, items


def catalog_format(path: str) -> str:
    """Format of an item catalog: .dat = MovieLens movies, .item = RecBole, else as for events."""
    ext = extension(path)
    if ext == ".dat":
        return "movielens"
    if ext == ".item":
        return "recbole"
    fmt = detect_format(path)
    if fmt in ("sequences",):
        raise InputFormatError(
            f"cannot read item catalog {path} as {fmt}",
            hint="give a csv, tsv, jsonl, parquet, MovieLens movies.dat or RecBole .item catalog",
        )
    return fmt


def find_catalogs(items: str, fmt: str, files: list[str]) -> list[str]:
    """The catalog files: ingest.items if given, else movies.dat / <stem>.item beside the input."""
    if items:
        if not Location(items).exists():
            raise InputFormatError(f"item catalog not found: {items}", hint="check ingest.items")
        return [Location(items).spark_uri]
    found: list[str] = []
    for f in files:
        p = Location(f)
        if fmt == "movielens":
            cand = p.parent / "movies.dat"
        elif fmt == "recbole":
            cand = p.parent / (Path(p.name).stem + ".item")
        else:
            continue
        if cand.is_file() and cand.spark_uri not in found:
            found.append(cand.spark_uri)
    return found
