"""Sums of doubles over shuffled rows that do not depend on the order the rows arrive in.

`F.sum` of doubles adds partial aggregates in whatever order a shuffle delivers them, and
float addition is not associative: two runs of the same job (a clean one and one resumed
after a kill) can differ in the last bits, and a tie in the ranking can flip. `exact_sum`
adds in fixed point instead: each term is rounded once to DECIMAL(38, 18) (18 digits after
the point, an absolute resolution of 1e-18), the decimal sum is exact and so associative,
and the total is cast back to double. The result is a function of the multiset of terms.
Terms and sums must stay below 1e20 in magnitude (weights, similarities, probabilities here).
"""

from __future__ import annotations

EXACT = "decimal(38,18)"


def exact_sum(col, over=None):  # -> Column
    """Σ col, computed exactly in DECIMAL(38, 18), as a double; in groupBy().agg(), or over
    the window `over`."""
    from pyspark.sql import functions as F

    if isinstance(col, str):
        col = F.col(col)
    total = F.sum(col.cast(EXACT))
    if over is not None:
        total = total.over(over)
    return total.cast("double")
