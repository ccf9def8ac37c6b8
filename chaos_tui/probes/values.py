"""The one rule for turning what a probe read into its value."""

from __future__ import annotations

import math


def finite_or_none(value: float) -> float | None:
    """NaN and the infinities are no measurement (a rate over no data, an empty ratio) and
    cannot be written into a result's JSON: they become "ok, no value"."""
    return value if math.isfinite(value) else None


def number_or_none(text: str) -> float | None:
    """A number written as text (a command's output, a metric), else None."""
    try:
        return finite_or_none(float(text))
    except ValueError:
        return None
