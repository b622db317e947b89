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
