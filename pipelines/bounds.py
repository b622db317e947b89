"""The annotations config fields are validated by: `Range` bounds, the `NonFinite` opt-in and
the bounded number types.

Kept apart from pipelines/config/ (which re-exports them) and importing nothing: the settings
of candidate sources (pipelines/candidates/settings.py) declare their fields with these, and
the config builds its candidates section from those settings, so neither side may import the
other's package just to read a bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric field (or of every element of a list field)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: float) -> str | None:
        ok = (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )
        # NaN fails every comparison above only when a bound is set; reject it always.
        if ok and value == value:
            return None
        return f"must be {self.describe()}"

    def describe(self) -> str:
        parts = [
            f"{op} {_num(b)}"
            for op, b in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if b is not None
        ]
        return " and ".join(parts) or "a number"


@dataclass(frozen=True)
class NonFinite:
    """Opts a float field (or each element of a list or dict field) into values that every
    other float field refuses at load: +-inf with `inf`, NaN with `nan`. A NaN passes no
    comparison, so a bound or threshold set to one silently disables its check; a field that
    means something by inf (no limit) says so with `Annotated[float, NonFinite()]`."""

    inf: bool = True
    nan: bool = False


def _num(b: float) -> str:
    return str(int(b)) if float(b).is_integer() else str(b)


Count = Annotated[int, Range(ge=1)]  # sizes and counts that must be positive
NonNegInt = Annotated[int, Range(ge=0)]  # 0 is meaningful ("all", "off", "derive")
NonNeg = Annotated[float, Range(ge=0)]  # weights, durations
Probability = Annotated[float, Range(gt=0, lt=1)]  # open interval (restart probability)
Decay = Annotated[float, Range(gt=0, le=1)]  # per-step multiplicative weights
Fraction = Annotated[float, Range(ge=0, lt=1)]
