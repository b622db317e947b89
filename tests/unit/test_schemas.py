"""Table contracts: the Spark DDL that producers pass to mapInArrow equals the derived type."""

from __future__ import annotations

import pytest

from schemas import CONTRACTS, ContractError


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_spark_ddl_matches_the_derived_struct_type(name):
    c = CONTRACTS[name]
    expected = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in c.spark_type().fields)
    assert c.spark_ddl() == expected


def test_unknown_arrow_type_has_no_ddl():
    import pyarrow as pa

    from schemas.contract import TableContract

    with pytest.raises(ContractError, match="no Spark DDL"):
        TableContract("x", pa.schema([pa.field("d", pa.decimal128(5, 2))])).spark_ddl()


def test_a_producer_cannot_write_a_column_its_contract_does_not_list(tmp_path):
    import polars as pl

    from pipelines import tableio

    rankings = pl.DataFrame(
        {"user_id": ["u"], "item_id": ["i"], "rank": [1], "score": [1.0]},
        schema_overrides={"rank": pl.Int32},
    )
    with pytest.raises(ContractError, match="column 'debug' is not in its contract"):
        tableio.write_table(
            tmp_path, "rankings", rankings.with_columns(debug=pl.lit(1)), stage="t", stage_key="k"
        )
    assert not tableio.is_committed(tmp_path, "rankings")
    # Declared extras pass: optional columns, and one score column per candidate source.
    ok = rankings.with_columns(score_ppr=pl.lit(0.5), llm_score=pl.lit(None, pl.Float64))
    tableio.write_table(tmp_path, "rankings", ok, stage="t", stage_key="k")
    with pytest.raises(ContractError, match="score_ppr"):  # ... with their declared type
        tableio.write_table(
            tmp_path, "rankings", rankings.with_columns(score_ppr=pl.lit("x")), stage="t",
            stage_key="k",
        )  # fmt: skip
