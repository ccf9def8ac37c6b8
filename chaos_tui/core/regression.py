"""The regression rule's numbers (core/baseline.py applies them): how many runs make a baseline
and how much worse than its median a metric must be to count as a regression. Apart from the
baseline code so that settings can hold the global default without importing it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Better = Literal["lower", "higher"]


class RegressionPolicy(BaseModel):
    """How many runs make a baseline and how much worse counts as a regression. The global
    default is in settings (CHAOS_REGRESSION__*); a scenario file's `regression:` block
    overrides it field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: int = Field(10, ge=3, le=1000)  # the last N passing runs make the baseline
    min_runs: int = Field(3, ge=3, le=1000)  # fewer than this: no baseline yet
    time_pct: float = Field(20.0, gt=0, le=1000)  # durations and latencies: +20 %
    throughput_pct: float = Field(15.0, gt=0, le=100)  # rates: -15 %
    count_pct: float = Field(20.0, gt=0, le=1000)  # backlog peak, DLQ growth: +20 %
    error_rate_points: float = Field(5.0, gt=0, le=100)  # error rates: +5 points
    # A value must also be worse than the median by this many times the baseline's spread
    # (p95 - median): chosen on ten runs of postgres_restart_outbox on the sandbox, where 2
    # flags none of them against the nine others and does flag an outage of 10 s (README
    # "Baselines and regressions").
    noise: float = Field(2.0, ge=0, le=100)
    # Absolute floors: below them a change is too small to matter, however steady the past.
    floor_s: float = Field(0.25, ge=0)
    floor_count: float = Field(50.0, ge=0)
    floor_per_s: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _enough_runs(self) -> RegressionPolicy:
        if self.min_runs > self.runs:
            raise ValueError(f"min_runs ({self.min_runs}) is more than runs ({self.runs})")
        return self

    def rule(self, unit: str, better: Better) -> tuple[float | None, float]:
        """(threshold_pct, floor) for a metric of this unit."""
        if unit == "%":
            return None, self.error_rate_points
        if unit == "s":
            return self.time_pct, self.floor_s
        if unit == "/s":
            return (self.throughput_pct if better == "higher" else self.time_pct), self.floor_per_s
        return self.count_pct, self.floor_count
