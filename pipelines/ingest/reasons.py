"""Quarantine reasons: fixed strings, their count keys and their precedence.

A row is checked in this order and the first failing check is its reason:

1. ``undecodable bytes``   the line is not valid UTF-8 (or holds U+FFFD, the mark of an
                            earlier failed decode)
2. ``malformed json``       (jsonl) the line is not one JSON object
   ``malformed quoting``    (csv, tsv) a field opens a double quote that never closes, or
                            text follows a closing quote (Python's ``csv`` in strict mode
                            rejects the same lines); its field count would mean nothing
   ``wrong field count (expected N, got M)``  (csv, tsv, movielens, recbole)
   ``empty sequence``       (sequences) a blank line, or a user with no items
3. ``missing user_id``      null, empty or whitespace-only
4. ``missing item_id``
5. ``unparsable timestamp`` empty, or neither a number nor an ISO-8601 string
6. ``timestamp out of range``  outside [ingest.min_ts, ingest.max_ts)
7. ``non-numeric value``    a non-empty value that is not a finite decimal number

Structural checks come first because the fields of a broken row mean nothing.
Catalog rows have their own two reasons: ``missing item_id`` and ``duplicate item_id``
(a later row of an item id already seen; the first row wins).
"""

from __future__ import annotations

import re

UNDECODABLE = "undecodable bytes"
MALFORMED_JSON = "malformed json"
MALFORMED_QUOTING = "malformed quoting"
EMPTY_SEQUENCE = "empty sequence"
MISSING_USER = "missing user_id"
MISSING_ITEM = "missing item_id"
UNPARSABLE_TS = "unparsable timestamp"
TS_OUT_OF_RANGE = "timestamp out of range"
NON_NUMERIC_VALUE = "non-numeric value"
DUPLICATE_CATALOG_ITEM = "duplicate item_id"
WRONG_FIELD_COUNT = "wrong field count"  # written "wrong field count (expected N, got M)"

# Every event reason, in precedence order.
EVENT_REASONS: tuple[str, ...] = (
    UNDECODABLE,
    MALFORMED_JSON,
    MALFORMED_QUOTING,
    WRONG_FIELD_COUNT,
    EMPTY_SEQUENCE,
    MISSING_USER,
    MISSING_ITEM,
    UNPARSABLE_TS,
    TS_OUT_OF_RANGE,
    NON_NUMERIC_VALUE,
)
CATALOG_REASONS: tuple[str, ...] = (
    UNDECODABLE,
    WRONG_FIELD_COUNT,
    MISSING_ITEM,
    DUPLICATE_CATALOG_ITEM,
)


def reason_key(reason: str) -> str:
    """'wrong field count (expected 4, got 3)' -> 'wrong_field_count'; 'missing user_id' -> 'missing_user_id'."""
    stem = reason.split(" (", 1)[0]
    return re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")


EVENT_REASON_KEYS: tuple[str, ...] = tuple(reason_key(r) for r in EVENT_REASONS)
CATALOG_REASON_KEYS: tuple[str, ...] = tuple(reason_key(r) for r in CATALOG_REASONS)
