"""numba's njit with its on-disk cache where it can have one.

Spark and Ray workers are fresh processes: with the cache, each loads the compiled machine
code from ``__pycache__`` in milliseconds instead of compiling again. Code shipped in a zip
(spark-submit --py-files) has no writable place for it, and then compiles once per process.
"""

from __future__ import annotations

from collections.abc import Callable

from numba import njit

__all__ = ["njit_cached"]


def njit_cached(**kw) -> Callable:
    """Decorator: njit(cache=True, **kw), or njit(cache=False, **kw) where caching fails."""

    def deco(fn):
        try:
            return njit(cache=True, **kw)(fn)
        except RuntimeError:
            return njit(cache=False, **kw)(fn)

    return deco
