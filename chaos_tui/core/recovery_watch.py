"""The recovery metrics, read off the samples as they come rather than all over again.

The console shows the metrics while the run goes, every few seconds; reading every sample
since the fault each time made the work grow with the run (eight probes at 10 Hz are some
53,000 samples twenty minutes in). A RecoveryWatch keeps, per probe, what the metrics need
(the first failure, the first pass after the latest failure, the counts during the fault, the
backlog's peak and when it drained) and reads only the samples added since it last looked.
The saved result is read by a fresh watch over the whole series (Timeline.recovery): the same
code, so the console's figures are the result's.

A probe's tally starts over when what it counts from changes: the first fault's injection
(the start) or the last heal (the end of "during"). Both change a few times a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import TYPE_CHECKING

from chaos_tui.core.model import InjectionWindow, ProbeSample, RecoveryMetrics

if TYPE_CHECKING:
    from chaos_tui.core.series import SampleSeries

BACKLOG_STEADY_SAMPLES = 10  # passing values before the fault whose median is the steady level


@dataclass
class ProbeTally:
    start: float  # the first injection: samples from here on count
    end: float  # the last heal ("during" ends), inf while a fault is live
    steady: float  # the backlog's level before the fault (its probe only)
    next_index: int  # the series' absolute index of the next sample to read
    first_fail: ProbeSample | None = None
    back: ProbeSample | None = None  # the first sample after the latest failure
    awaiting_back: bool = False  # the latest sample failed
    during: int = 0
    failed_during: int = 0
    peak: ProbeSample | None = None  # the first highest passing value
    peak_value: float = 0.0
    drained: ProbeSample | None = None  # at or after the peak, back at the steady level

    def take(self, s: ProbeSample) -> None:
        if not s.ok:
            if self.first_fail is None:
                self.first_fail = s
            self.back, self.awaiting_back = None, True
        elif self.awaiting_back:
            self.back, self.awaiting_back = s, False
        if s.t <= self.end:
            self.during += 1
            self.failed_during += not s.ok
        if s.ok and s.value is not None:
            if self.peak is None or s.value > self.peak_value:
                self.peak, self.peak_value = s, s.value
                self.drained = None
            if self.drained is None and s.value <= self.steady:
                self.drained = s

    @property
    def error_rate(self) -> float | None:
        if not self.during:
            return None
        return round(self.failed_during / self.during, 4)


@dataclass
class RecoveryWatch:
    """One per timeline and reader; `read` costs the samples added since its last call."""

    series: dict[str, SampleSeries]
    windows: list[InjectionWindow]
    _tallies: dict[str, ProbeTally] = field(default_factory=dict)

    def read(self, probe: str | None, backlog_probe: str | None) -> RecoveryMetrics:
        metrics = RecoveryMetrics(probe=probe, backlog_probe=backlog_probe)
        if not self.windows:
            return metrics
        first = self.windows[0]
        injected = first.injected_at
        # Detection counts from the moment the fault was in place, not from the lease
        # request: an agent that takes 200 ms to apply it must not make detection look slower.
        landed = first.applied_at if first.applied_at is not None else injected
        metrics.detect_from = "applied" if first.applied_at is not None else "injected"
        heal_start = first_heal_start(self.windows)
        healed = [w.healed_at for w in self.windows]
        end = float("inf") if None in healed else max(h for h in healed if h is not None)
        tallies = {name: self._tally(name, injected, end) for name in self.series}
        if probe:
            tally = tallies.get(probe) or self._empty(injected, end)
            first_fail, back = tally.first_fail, tally.back
            if first_fail is not None:
                # A probe may see the fault before its inject call returns (a kill lands, then
                # the agent answers): detected as it landed, 0 s, never a negative time.
                metrics.time_to_detect_s = round(max(0.0, first_fail.t - landed), 3)
                if back is not None:
                    metrics.outage_s = round(back.t - first_fail.t, 3)
                    if heal_start is not None:
                        metrics.time_to_recover_s = round(max(0.0, back.t - heal_start), 3)
            elif heal_start is not None:
                metrics.time_to_recover_s = 0.0  # the probe never noticed the fault
            metrics.error_rate_during_fault = tally.error_rate
        for other, tally in tallies.items():
            if other != probe and tally.error_rate:
                metrics.other_error_rates[other] = tally.error_rate
        backlog = tallies.get(backlog_probe) if backlog_probe else None
        if backlog is not None and backlog.peak is not None:
            metrics.backlog_peak = backlog.peak_value
            if heal_start is not None and backlog.drained is not None:
                metrics.backlog_drain_s = round(max(0.0, backlog.drained.t - heal_start), 3)
        return metrics

    def _tally(self, name: str, start: float, end: float) -> ProbeTally:
        series = self.series[name]
        tally = self._tallies.get(name)
        if tally is None or (tally.start, tally.end) != (start, end):
            first = series.index_at(start)
            steady = _steady_before(series, first)
            tally = self._tallies[name] = ProbeTally(start, end, steady, first)
        # Past the series' cap the oldest samples are gone: go on from the oldest kept.
        for s in series.read_from(max(tally.next_index, series.first_index)):
            tally.take(s)
        tally.next_index = series.end_index
        return tally

    @staticmethod
    def _empty(start: float, end: float) -> ProbeTally:
        return ProbeTally(start, end, 0.0, 0)


def _steady_before(series: SampleSeries, index: int) -> float:
    """The median of the last passing values taken before the sample at `index`: the level
    just before the fault, not the highest ever seen (a backlog left over from an earlier run
    and drained during warm-up must not make the drain look instant)."""
    values: list[float] = []
    for s in series.read_back_from(index - 1):
        if s.ok and s.value is not None:
            values.append(s.value)
            if len(values) == BACKLOG_STEADY_SAMPLES:
                break
    return median(values) if values else 0.0


def first_heal_start(windows: list[InjectionWindow]) -> float | None:
    starts = [w.heal_started_at or w.healed_at for w in windows]
    known = [s for s in starts if s is not None]
    return min(known) if known else None
