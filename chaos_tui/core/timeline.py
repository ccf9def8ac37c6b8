"""Every sample of a run, the injection windows, and the numbers read off them."""

from __future__ import annotations

from collections.abc import Iterable
from statistics import quantiles

from chaos_tui.core.model import (
    InjectionWindow,
    PhaseSummary,
    ProbeReport,
    ProbeSample,
    RecoveryMetrics,
)
from chaos_tui.core.recovery_watch import RecoveryWatch, first_heal_start
from chaos_tui.core.series import SampleSeries

# 10 Hz for three hours per probe; older samples fall off rather than grow without bound.
# Held compactly (core/series.py): 17 bytes a sample (25 with a value), 1.8 MB for a probe's
# three hours without values.
MAX_SAMPLES_PER_PROBE = 108_000


class Timeline:
    def __init__(self, max_samples: int = MAX_SAMPLES_PER_PROBE) -> None:
        self._samples: dict[str, SampleSeries] = {}
        self._descriptions: dict[str, str] = {}
        self._max = max_samples
        self.windows: list[InjectionWindow] = []

    def register(self, probe: str, description: str) -> None:
        self._samples.setdefault(probe, SampleSeries(probe, self._max))
        self._descriptions[probe] = description

    def add(self, sample: ProbeSample) -> None:
        series = self._samples.get(sample.probe)
        if series is None:
            series = self._samples[sample.probe] = SampleSeries(sample.probe, self._max)
        series.append(sample)

    def forget_before(self, t: float) -> None:
        """Drop every probe's samples taken before `t` (a view that draws only the last
        minutes; a run's own timeline keeps everything for its result)."""
        for series in self._samples.values():
            series.drop_before(t)

    @property
    def kept(self) -> int:
        """Samples held now, every probe together (each probe's series is capped)."""
        return sum(len(series) for series in self._samples.values())

    def samples(self, probe: str) -> list[ProbeSample]:
        return list(self._samples.get(probe, ()))

    def recent(self, probe: str, count: int) -> list[ProbeSample]:
        """The last `count` samples, oldest first, without copying the whole series."""
        series = self._samples.get(probe)
        return series.recent(count) if series is not None else []

    def since(self, probe: str, t: float) -> list[ProbeSample]:
        """Samples taken at or after `t`, oldest first, reading back from the newest."""
        series = self._samples.get(probe)
        return series.since(t) if series is not None else []

    @property
    def probes(self) -> list[str]:
        return list(self._samples)

    # -- phases -------------------------------------------------------------------------

    def phase_of(self, t: float) -> str:
        if not self.windows or t < self.windows[0].injected_at:
            return "before"
        if any(w.contains(t) for w in self.windows):
            return "during"
        last_end = max((w.healed_at or float("inf")) for w in self.windows)
        return "after" if t > last_end else "during"

    def first_heal_start(self) -> float | None:
        return first_heal_start(self.windows)

    # -- reports --------------------------------------------------------------------------

    def report(self, probe: str, run_started_at: float) -> ProbeReport:
        by_phase: dict[str, list[ProbeSample]] = {"before": [], "during": [], "after": []}
        series = self.samples(probe)
        for s in series:
            by_phase[self.phase_of(s.t)].append(s)
        return ProbeReport(
            name=probe,
            description=self._descriptions.get(probe, ""),
            before=summarise(by_phase["before"]),
            during=summarise(by_phase["during"]),
            after=summarise(by_phase["after"]),
            samples=[(round(s.t - run_started_at, 3), s.ok, s.latency_ms, s.value) for s in series],
        )

    def recovery(self, probe: str | None, backlog_probe: str | None) -> RecoveryMetrics:
        """Read off every sample since the first fault; a reader that asks again and again
        (the console) keeps a watch() instead, which reads only what came since."""
        return self.watch().read(probe, backlog_probe)

    def watch(self) -> RecoveryWatch:
        return RecoveryWatch(self._samples, self.windows)

    def outage(self, probe: str) -> tuple[float | None, float | None]:
        """When the probe first failed after the first injection, and when it first passed
        again after that (None for what did not happen)."""
        if not self.windows:
            return None, None
        down, back = _outage(self.since(probe, self.windows[0].injected_at))
        return (down.t if down else None), (back.t if back else None)


def _outage(series: list[ProbeSample]) -> tuple[ProbeSample | None, ProbeSample | None]:
    """The first failing sample, and the first passing one after it (the recovery metrics'
    "back" is back for good instead: core/recovery_watch.py)."""
    first_fail = next((s for s in series if not s.ok), None)
    if first_fail is None:
        return None, None
    return first_fail, next((s for s in series if s.ok and s.t > first_fail.t), None)


def summarise(samples: Iterable[ProbeSample]) -> PhaseSummary:
    samples = list(samples)
    if not samples:
        return PhaseSummary()
    ok = [s for s in samples if s.ok]
    latencies = sorted(s.latency_ms for s in ok if s.latency_ms is not None)
    values = [s.value for s in ok if s.value is not None]
    errors = [s.error for s in samples if s.error]
    summary = PhaseSummary(
        samples=len(samples),
        ok=len(ok),
        error_rate=round(1 - len(ok) / len(samples), 4),
        last_error=errors[-1] if errors else None,
    )
    if latencies:
        summary.latency_ms_p50 = round(percentile(latencies, 50), 3)
        summary.latency_ms_p95 = round(percentile(latencies, 95), 3)
        summary.latency_ms_p99 = round(percentile(latencies, 99), 3)
        summary.latency_ms_max = round(latencies[-1], 3)
    if values:
        summary.value_min = min(values)
        summary.value_max = max(values)
        summary.value_last = values[-1]
    return summary


def percentile(sorted_values: list[float], pct: int) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    return quantiles(sorted_values, n=100, method="inclusive")[pct - 1]
