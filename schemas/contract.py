"""A table contract: the pyarrow schema is the truth; the Spark type is derived from it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

# Bumped whenever a contract changes incompatibly; written into every manifest.
SCHEMA_VERSION = 1


def score_column(source: str) -> str:
    """The column of a candidate source's own score in the candidates and rankings tables
    (null where the source did not propose the item); the one spelling of that name."""
    return f"score_{source}"


_SCORE_PREFIX = score_column("")


def sources_of(schema: pa.Schema) -> list[str]:
    """The candidate sources of a candidates or rankings table, in column order: the names of
    its `score_column`s (the fused `score` itself is not one)."""
    return [n.removeprefix(_SCORE_PREFIX) for n in schema.names if n.startswith(_SCORE_PREFIX)]


class ContractError(ValueError):
    """A table does not satisfy its contract; the message names the first offending column."""


def _same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    # Spark writes `string`, Polars `large_string`: both are the same logical type for readers.
    if pa.types.is_string(expected) or pa.types.is_large_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    if pa.types.is_list(expected) or pa.types.is_large_list(expected):
        return (pa.types.is_list(actual) or pa.types.is_large_list(actual)) and _same_type(
            actual.value_type, expected.value_type
        )
    if pa.types.is_timestamp(expected):
        return (
            pa.types.is_timestamp(actual)
            and actual.unit == expected.unit
            and (actual.tz or "").upper() in {(expected.tz or "").upper(), "+00:00", "ETC/UTC"}
        )
    return actual.equals(expected)


_DDL = {
    pa.int8(): "tinyint",
    pa.int16(): "smallint",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.string(): "string",
    pa.large_string(): "string",
    pa.binary(): "binary",
}


def _ddl_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{_ddl_type(t.value_type)}>"
    if t in _DDL:
        return _DDL[t]
    raise ContractError(f"no Spark DDL name for arrow type {t}")


@dataclass(frozen=True)
class TableContract:
    """The columns of one pipeline table: `schema` must be there; `optional` columns and
    columns named `<prefix><anything>` for a prefix of `patterns` (one per candidate source,
    `score_column(source)`) may be; anything else is an error naming the column."""

    name: str
    schema: pa.Schema
    docs: dict[str, str] = field(default_factory=dict)
    description: str = ""
    optional: pa.Schema = field(default_factory=lambda: pa.schema([]))
    patterns: tuple[tuple[str, pa.DataType], ...] = ()

    def allowed_type(self, column: str) -> pa.DataType | None:
        """The type an extra (optional or patterned) column must have; None: not allowed."""
        idx = self.optional.get_field_index(column)
        if idx >= 0:
            return self.optional.field(idx).type
        return next((t for prefix, t in self.patterns if column.startswith(prefix)), None)

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    def validate(self, table: pa.Table | pa.Schema) -> None:
        """Raise ContractError naming the first required column that is missing or mistyped."""
        schema = table if isinstance(table, pa.Schema) else table.schema
        for fld in self.schema:
            idx = schema.get_field_index(fld.name)
            if idx < 0:
                raise ContractError(
                    f"table '{self.name}': missing column '{fld.name}' ({fld.type}); "
                    f"got columns {schema.names}"
                )
            actual = schema.field(idx).type
            if not _same_type(actual, fld.type):
                raise ContractError(
                    f"table '{self.name}': column '{fld.name}' has type {actual}, expected {fld.type}"
                )
        for fld in schema:
            if fld.name in self.schema.names:
                continue
            expected = self.allowed_type(fld.name)
            if expected is None:
                raise ContractError(
                    f"table '{self.name}': column '{fld.name}' is not in its contract "
                    f"(schemas/tables.py); required {self.schema.names}, optional "
                    f"{self.optional.names}"
                    + (f", or {[p + '*' for p, _ in self.patterns]}" if self.patterns else "")
                )
            if not _same_type(fld.type, expected) and not pa.types.is_null(fld.type):
                raise ContractError(
                    f"table '{self.name}': column '{fld.name}' has type {fld.type}, "
                    f"expected {expected}"
                )
        if isinstance(table, pa.Table):
            for fld in self.schema:
                if not fld.nullable and table.column(fld.name).null_count:
                    raise ContractError(
                        f"table '{self.name}': column '{fld.name}' has "
                        f"{table.column(fld.name).null_count} nulls but is not nullable"
                    )

    def conform(self, table: pa.Table) -> pa.Table:
        """Cast required columns to their exact contract types, keeping extra columns after them."""
        self.validate(table.schema)
        cols, fields = [], []
        for fld in self.schema:
            cols.append(table.column(fld.name).cast(fld.type))
            fields.append(fld)
        for name in table.schema.names:
            if name not in self.schema.names:
                cols.append(table.column(name))
                fields.append(table.schema.field(name))
        return pa.Table.from_arrays(cols, schema=pa.schema(fields))

    def spark_type(self):  # -> pyspark.sql.types.StructType
        """The Spark StructType derived from the pyarrow schema (pyspark imported lazily)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        return from_arrow_schema(self.schema)

    @property
    def full_schema(self) -> pa.Schema:
        """The required columns, then the optional ones (patterned columns excluded)."""
        return pa.schema([*self.schema, *self.optional])

    def spark_ddl(self) -> str:
        """The columns as a Spark DDL string ("src int, dst int, ..."), for `mapInArrow` and
        `createDataFrame` schemas; derived from the pyarrow schema without importing pyspark."""
        return ", ".join(f"{f.name} {_ddl_type(f.type)}" for f in self.schema)

    def empty(self) -> pa.Table:
        return self.schema.empty_table()
