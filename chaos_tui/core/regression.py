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
    # Fewer than this: no baseline yet (with 3 the spread of recovery times is not known:
    # 3.2, 3.2, 3.2 s outages, then a 4.9 s one with nothing changed).
    min_runs: int = Field(5, ge=3, le=1000)
    time_pct: float = Field(20.0, gt=0, le=1000)  # durations and latencies: +20 %
    throughput_pct: float = Field(15.0, gt=0, le=100)  # rates: -15 %
    count_pct: float = Field(20.0, gt=0, le=1000)  # backlog peak, DLQ growth: +20 %
    error_rate_points: float = Field(5.0, gt=0, le=100)  # error rates: +5 points
    # A value must also be worse than the median by this many times the baseline's spread
    # (p95 - median), and by an absolute floor. Chosen on thirty runs of
    # postgres_restart_outbox on the sandbox with nothing changed, each judged against the
    # runs before it as they came (tests/test_baseline.py): recovery times vary by a second
    # or more (a backlog drain of 0.3-5.4 s), so their floor is 1 s and the spread counts 2.5
    # times; a latency (job or load p95, in ms) is steadier: 50 ms.
    noise: float = Field(2.5, ge=0, le=100)
    floor_s: float = Field(1.0, ge=0)
    floor_ms: float = Field(50.0, ge=0)
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
        if unit == "ms":  # a latency: steadier and smaller than a recovery time
            return self.time_pct, self.floor_ms
        if unit == "/s":
            return (self.throughput_pct if better == "higher" else self.time_pct), self.floor_per_s
        return self.count_pct, self.floor_count
