"""Every sample of a run, the injection windows, and the numbers read off them."""

from __future__ import annotations

from collections.abc import Iterable
from statistics import median, quantiles

from chaos_tui.core.model import (
    InjectionWindow,
    PhaseSummary,
    ProbeReport,
    ProbeSample,
    RecoveryMetrics,
)
from chaos_tui.core.series import SampleSeries

# 10 Hz for three hours per probe; older samples fall off rather than grow without bound.
# Held compactly (core/series.py): about 25 bytes a sample, 2.6 MB for a probe's three hours.
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
        starts = [w.heal_started_at or w.healed_at for w in self.windows]
        known = [s for s in starts if s is not None]
        return min(known) if known else None

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
        metrics = RecoveryMetrics(probe=probe, backlog_probe=backlog_probe)
        if not self.windows:
            return metrics
        first = self.windows[0]
        injected = first.injected_at
        # Detection counts from the moment the fault was in place, not from the lease
        # request: an agent that takes 200 ms to apply it must not make detection look slower.
        landed = first.applied_at if first.applied_at is not None else injected
        metrics.detect_from = "applied" if first.applied_at is not None else "injected"
        heal_start = self.first_heal_start()
        if probe:
            series = self.since(probe, injected)  # a console asks often: read only the tail
            first_fail, back = _outage(series, for_good=True)
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
            metrics.error_rate_during_fault = self._error_rate_during(series)
        for other in self._samples:
            if other == probe:
                continue
            rate = self._error_rate_during(self.since(other, injected))
            if rate:
                metrics.other_error_rates[other] = rate
        if backlog_probe:
            self._backlog_metrics(metrics, backlog_probe, injected, heal_start)
        return metrics

    def _error_rate_during(self, series: list[ProbeSample]) -> float | None:
        """The share of failing samples during the fault, of a series that starts at the
        first injection: "during" runs from there until the last heal (phase_of's reading,
        without asking it once a sample, as the console does every second for each probe)."""
        healed = [w.healed_at for w in self.windows]
        end = float("inf") if None in healed else max(h for h in healed if h is not None)
        during = [s for s in series if s.t <= end]
        if not during:
            return None
        return round(sum(not s.ok for s in during) / len(during), 4)

    def outage(self, probe: str) -> tuple[float | None, float | None]:
        """When the probe first failed after the first injection, and when it first passed
        again after that (None for what did not happen)."""
        if not self.windows:
            return None, None
        down, back = _outage(self.since(probe, self.windows[0].injected_at))
        return (down.t if down else None), (back.t if back else None)

    def _backlog_metrics(
        self, metrics: RecoveryMetrics, probe: str, injected: float, heal_start: float | None
    ) -> None:
        # (sample, its value) pairs, so the value is known not to be None below.
        later = [(s, s.value) for s in self.since(probe, injected) if s.ok and s.value is not None]
        before = self._values_before(probe, injected, 10)
        if not later:
            return
        peak, peak_value = max(later, key=lambda pair: pair[1])
        metrics.backlog_peak = peak_value
        # The level just before the fault, not the highest ever seen: a backlog left over from
        # an earlier run and drained during warm-up must not make the drain look instant.
        steady = median(before) if before else 0.0
        if heal_start is None:
            return
        drained = next((s for s, value in later if s.t >= peak.t and value <= steady), None)
        if drained is not None:
            metrics.backlog_drain_s = round(max(0.0, drained.t - heal_start), 3)

    def _values_before(self, probe: str, t: float, count: int) -> list[float]:
        """The last `count` passing values taken before `t`, reading back from the newest."""
        values: list[float] = []
        series = self._samples.get(probe)
        for s in reversed(series) if series is not None else ():
            if s.t < t and s.ok and s.value is not None:
                values.append(s.value)
                if len(values) == count:
                    break
        return values[::-1]


def _outage(
    series: list[ProbeSample], for_good: bool = False
) -> tuple[ProbeSample | None, ProbeSample | None]:
    """The first failing sample, and the first passing one after it; `for_good`: the first
    passing one after the last failure (None while the probe still fails)."""
    first_fail = next((s for s in series if not s.ok), None)
    if first_fail is None:
        return None, None
    if for_good:
        last_fail = max(i for i, s in enumerate(series) if not s.ok)
        return first_fail, series[last_fail + 1] if last_fail + 1 < len(series) else None
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
