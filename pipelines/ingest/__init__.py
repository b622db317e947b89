"""Ingest: raw events (+ item catalog) -> validated events, items and a quarantine table.

Public API: `run_ingest(spark, cfg) -> IngestResult`, `detect_format(path) -> str`.
Formats, rules and reasons are documented in the modules: formats.py (detection),
text_readers.py / json_parquet.py (parsing), typed_events.py (typing rules), reasons.py
(quarantine reasons and their precedence), catalog.py, dense_ids.py, ingest.py (flow, counts).
"""

from pipelines.ingest.formats import FORMATS, detect_format
from pipelines.ingest.ingest import IngestResult, run_ingest

__all__ = ["FORMATS", "IngestResult", "detect_format", "run_ingest"]
