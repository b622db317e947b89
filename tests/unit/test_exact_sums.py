"""exact_sums: means equal the exactly rounded mean of the values (fractions.Fraction), in any
order and any split into buckets."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import polars as pl
import pytest

from pipelines.evaluation.exact_sums import add_sums, float_sums, means_of_sums


def _values(rng: random.Random, n: int) -> list[float]:
    # Magnitudes from 1e-300 to 1e6, both signs, and exact zeros: sums that floats round.
    return [
        0.0
        if rng.random() < 0.05
        else rng.choice([-1, 1]) * rng.random() * 10.0 ** rng.randint(-300, 6)
        for _ in range(n)
    ]


def _frame(groups: list[str], a: list[float], b: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"g": groups, "a": a, "b": b})


def _means(frames: list[pl.DataFrame]) -> pl.DataFrame:
    sums = None
    for frame in frames:
        sums = add_sums(sums, float_sums(frame, ["g"], ["a", "b"]))
    return means_of_sums(sums, ["g"])


def test_means_are_the_exactly_rounded_means_in_any_split():
    rng = random.Random(3)
    n = 5000
    groups = [rng.choice("xyz") for _ in range(n)]
    a, b = _values(rng, n), _values(rng, n)
    frame = _frame(groups, a, b)
    whole = _means([frame])
    for g, column, value, count in whole.iter_rows():
        vals = [v for gg, v in zip(groups, a if column == "a" else b, strict=True) if gg == g]
        assert count == len(vals)
        assert value == float(sum(map(Fraction, vals), Fraction(0)) / len(vals))
    # The plain float mean differs somewhere: the exact one is not a relabelled np.mean.
    naive = {
        (g, c): np.mean([v for gg, v in zip(groups, a if c == "a" else b, strict=True) if gg == g])
        for g, c, *_ in whole.iter_rows()
    }
    assert any(naive[(g, c)] != v for g, c, v, _ in whole.iter_rows())

    order = list(range(n))
    for parts in (2, 7, 50):
        rng.shuffle(order)
        shuffled = frame[order]
        cuts = sorted(rng.sample(range(1, n), parts - 1))
        pieces = [shuffled[lo:hi] for lo, hi in zip([0, *cuts], [*cuts, n], strict=True)]
        assert _means(pieces).equals(whole)


def test_state_rows_do_not_grow_with_the_values():
    rng = random.Random(5)
    large = _frame(["x"] * 100_000, [rng.random() for _ in range(100_000)], [1.0] * 100_000)
    # Values in [0, 1): one row per exponent, and 2^-60 is below what random() gives here.
    assert float_sums(large, ["g"], ["a", "b"]).height <= 60 + 1


def test_non_finite_and_null_values_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        float_sums(_frame(["x"], [float("nan")], [1.0]), ["g"], ["a", "b"])
    with pytest.raises(ValueError, match="non-finite"):
        float_sums(pl.DataFrame({"g": ["x"], "a": [None], "b": [1.0]}), ["g"], ["a", "b"])
