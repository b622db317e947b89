"""The walk kernels' shared argument checks accept exactly what the config's `ppr` section
accepts, at every bound (udfs/ cannot import the config, so the ranges are written twice)."""

from __future__ import annotations

import typing

import pytest

from pipelines.config.sections import PprConfig
from udfs.walk_args import ESTIMATORS, check_walk_args

GOOD = dict(walks_per_source=10, alpha=0.3, seed=0, estimator="visits", max_steps=5, k=3)
# kernel argument -> the PprConfig field that feeds it
FIELDS = {
    "alpha": "alpha",
    "walks_per_source": "walks_per_node",
    "max_steps": "max_steps",
    "k": "top_k",
}
PROBES = [-1, 0, 1e-12, 0.5, 1 - 1e-12, 1, 2, 200]


def _config_accepts(field: str, value: float) -> bool:
    hint = typing.get_type_hints(PprConfig, include_extras=True)[field]
    bounds = [m for m in getattr(hint, "__metadata__", ()) if hasattr(m, "problem")]
    assert bounds, f"PprConfig.{field} has no Range"
    return all(b.problem(value) is None for b in bounds)


def _kernel_accepts(arg: str, value: float) -> bool:
    try:
        check_walk_args([1, 2], **{**GOOD, arg: value})
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("arg", sorted(FIELDS))
def test_ranges_match_the_config(arg):
    is_int = arg != "alpha"
    for value in PROBES:
        if is_int and value != int(value):
            continue
        assert _kernel_accepts(arg, value) == _config_accepts(FIELDS[arg], value), (arg, value)


def test_estimators_match_the_config():
    hint = typing.get_type_hints(PprConfig)["estimator"]
    assert set(typing.get_args(hint)) == set(ESTIMATORS)


def test_sources_distinct_sorted_and_in_range():
    assert check_walk_args([5, 1, 3], **GOOD, n=6).tolist() == [1, 3, 5]
    for bad in ([1, 1], [6], [-1]):
        with pytest.raises(ValueError):
            check_walk_args(bad, **GOOD, n=6)
    with pytest.raises(ValueError):
        check_walk_args([1], **{**GOOD, "seed": -1})
