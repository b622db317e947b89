"""Table contracts: one pyarrow schema per pipeline table (pyarrow only)."""

from schemas.contract import (
    SCHEMA_VERSION,
    ContractError,
    TableContract,
    score_column,
    sources_of,
)
from schemas.tables import CONTRACTS, contract

__all__ = [
    "CONTRACTS",
    "SCHEMA_VERSION",
    "ContractError",
    "TableContract",
    "contract",
    "score_column",
    "sources_of",
]
