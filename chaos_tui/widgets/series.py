"""Which of a probe's two numbers is worth drawing: its latency or its value.

A counter (a backlog, jobs/s, a sequence) is drawn by its value. A health check is drawn by
its latency: its value, when it has one, is an HTTP status, 200 on every sample, a flat line
that hides everything a fault does. The choice is made once per probe and kept, so a panel
never swaps its measure in the middle of a run. Textual-free, like the rest of the drawing
helpers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from chaos_tui.core.model import ProbeSample

Measure = Literal["latency", "value"]

STATUS_UNITS = {"status", "http status", "status code"}
STATUS_MARK = "value = status"  # what HttpProbe's description says when its value is the code
STATUS_EVIDENCE = 5  # samples of one unchanging code before a unitless value counts as one


def says_status(unit: str, description: str) -> bool:
    return unit.strip().lower() in STATUS_UNITS or STATUS_MARK in description


def looks_like_status(values: list[float]) -> bool:
    """Every value the same whole number in the HTTP status range: a status code."""
    first = values[0] if values else 0.0
    return len(set(values)) == 1 and first.is_integer() and 100 <= first < 600


class SeriesChoice:
    """Remembers, per probe, which measure was chosen once a sample could tell."""

    def __init__(self) -> None:
        self._chosen: dict[str, Measure] = {}

    def measure(
        self, probe: str, unit: str, description: str, samples: Iterable[ProbeSample]
    ) -> Measure:
        if (known := self._chosen.get(probe)) is not None:
            return known
        if says_status(unit, description):
            self._chosen[probe] = "latency"
            return "latency"
        values = [s.value for s in samples if s.ok and s.value is not None]
        if not values:
            return "latency"  # nothing told yet; decided when a value arrives
        if len(values) < STATUS_EVIDENCE and not unit:
            return "value"  # too few to tell a status code from a counter that sits still
        chosen: Measure = "latency" if looks_like_status(values) and not unit else "value"
        self._chosen[probe] = chosen
        return chosen


def metric(sample: ProbeSample, measure: Measure) -> float | None:
    return sample.value if measure == "value" else sample.latency_ms


def measure_label(measure: Measure, unit: str) -> str:
    if measure == "latency":
        return "latency ms"
    return unit or "value"
