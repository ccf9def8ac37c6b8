"""A file scenario's `slo:` block judged once the run is over: every objective of every probe
or load, in each of the three phases (before, during, after the fault), as `SloResult`s.

A miss fails the run only in the phases the SLO counts (`phases:`, default before and after:
a fault is expected to hurt while it is live, so "during" is reported but not counted unless
asked). The counted phases of one objective become one invariant (`slo.p95_latency_ms(api)`),
so the verdict, its reason, the runbook and every report that lists invariants need nothing
new; the per-phase table is the result's `slos`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chaos_tui.core.model import (
    InjectionWindow,
    InvariantResult,
    InvariantSpec,
    Phase,
    PhaseSummary,
    SloResult,
)
from chaos_tui.from_file.checks import Judging
from chaos_tui.load.driver import PhaseStats
from chaos_tui.scenario_file import model as m

PHASES: tuple[Phase, ...] = ("before", "during", "after")
PERCENTILES = {"p50_latency_ms": 50, "p95_latency_ms": 95, "p99_latency_ms": 99}
WORDS = {
    "p50_latency_ms": "p50 latency",
    "p95_latency_ms": "p95 latency",
    "p99_latency_ms": "p99 latency",
    "max_error_rate": "error rate",
    "min_throughput_rps": "throughput",
}
UNITS = {"max_error_rate": "", "min_throughput_rps": "/s"}


@dataclass(frozen=True)
class Objective:
    """One objective of one probe or load, with the phases a miss counts in."""

    subject: str
    name: str  # "p95_latency_ms"...
    limit: float
    counted: tuple[Phase, ...]

    @property
    def comparison(self) -> Literal["<=", ">="]:
        return ">=" if self.name.startswith("min_") else "<="

    @property
    def unit(self) -> str:
        return UNITS.get(self.name, "ms")

    @property
    def invariant_name(self) -> str:
        return f"slo.{self.name}({self.subject})"

    def spec(self) -> InvariantSpec:
        phases = " and ".join(
            [", ".join(self.counted[:-1]), self.counted[-1]]
            if len(self.counted) > 1
            else self.counted
        )
        if self.name == "max_error_rate":
            limit = f"{self.limit * 100:g}%"
        else:
            limit = f"{self.limit:g}{' ' + self.unit if self.unit == 'ms' else self.unit}"
        return InvariantSpec(
            name=self.invariant_name,
            description=(
                f"SLO: {WORDS[self.name]} of {self.subject} {self.comparison} {limit} "
                f"{phases} the fault"
            ),
            limit=self.limit,
            comparison=self.comparison,
            unit=self.unit,
        )


def objectives(scenario: m.FileScenario) -> list[Objective]:
    """Every objective of the file's `slo:` block, in file order."""
    return [
        Objective(subject, name, limit, tuple(slo.phases))
        for subject, slo in scenario.slo.items()
        for name, limit in slo.objectives.items()
    ]


def judge(
    objective: Objective, judging: Judging, spans: dict[str, float]
) -> tuple[list[SloResult], InvariantResult | None]:
    """The objective in each phase, and the invariant its counted phases make (None when it
    counts in no phase). `spans`: each phase's length in seconds, for a load's throughput."""
    results = []
    for phase in PHASES:
        stats = judging.phase(objective.subject, phase)
        measured, detail = _measure(objective, stats, spans.get(phase))
        passed = measured is not None and (
            measured <= objective.limit
            if objective.comparison == "<="
            else measured >= objective.limit
        )
        results.append(
            SloResult(
                subject=objective.subject,
                phase=phase,
                objective=objective.name,
                measured=measured,
                limit=objective.limit,
                comparison=objective.comparison,
                unit=objective.unit,
                passed=passed,
                counts=phase in objective.counted,
                detail=detail,
            )
        )
    counted = [r for r in results if r.counts]
    if not counted:
        return results, None
    missed = [r for r in counted if not r.passed]
    # The invariant's measured value is the first counted miss (or the worst counted phase),
    # so "measured vs limit" in every report shows what failed it.
    shown = missed[0] if missed else _worst(counted)
    detail = "; ".join(f"{r.phase} {_value(r)}{_verdict(r)}" for r in results)
    invariant = objective.spec().judge(shown.measured, detail)
    # A None in a counted phase is a miss even when the worst of the rest met the limit.
    return results, invariant.model_copy(update={"passed": not missed})


def _verdict(r: SloResult) -> str:
    if r.passed:
        return "" if r.counts else " (not counted)"
    return " MISSED" if r.counts else " missed (not counted)"


def _worst(results: list[SloResult]) -> SloResult:
    known = [r for r in results if r.measured is not None]
    if not known:
        return results[0]
    if results[0].comparison == ">=":
        return min(known, key=lambda r: r.measured or 0.0)
    return max(known, key=lambda r: r.measured or 0.0)


def _value(r: SloResult) -> str:
    if r.measured is None:
        return "n/a"
    if r.objective == "max_error_rate":
        return f"{r.measured * 100:.3g}%"
    return f"{r.measured:.4g}{' ' + r.unit if r.unit == 'ms' else r.unit}"


def _measure(
    objective: Objective, stats: PhaseSummary | PhaseStats, span_s: float | None
) -> tuple[float | None, str]:
    count = stats.samples if isinstance(stats, PhaseSummary) else stats.requests
    what = "samples" if isinstance(stats, PhaseSummary) else "requests"
    failed = round((stats.error_rate or 0) * count)
    if count == 0:
        return None, f"no {what} in this phase"
    said = f"{count} {what}" + (f", {failed} failed" if failed else "")
    name = objective.name
    if name == "max_error_rate":
        return stats.error_rate, said
    if name == "min_throughput_rps":
        # Answered requests a second, over the phase's whole length (the loader refuses a
        # throughput on a probe: only a load gets here with requests).
        if not span_s or span_s <= 0:
            return None, f"{said} in a phase of no length"
        return round(stats.ok / span_s, 3), f"{stats.ok} answered in {span_s:.1f} s"
    pct = PERCENTILES[name]
    if failed > count * (1 - pct / 100):
        # A request that failed is slower than any answer: with more than (100 - N)% of them
        # failing, the Nth percentile is itself a failure, not a number.
        return None, f"{said}: more than {100 - pct}% failed, so the p{pct} is a failure"
    return getattr(stats, f"latency_ms_p{pct}", None), said


def phase_spans(
    windows: list[InjectionWindow], started_at: float | None, stopped_at: float | None
) -> dict[str, float]:
    """How long each phase lasted for a load that ran from `started_at` to `stopped_at`:
    before the first injection, from it to the last heal, and from there to the stop."""
    if started_at is None or stopped_at is None:
        return {}
    if not windows:
        return {"before": stopped_at - started_at}
    first = windows[0].injected_at
    healed = [w.healed_at for w in windows]
    last = stopped_at if None in healed else max(h for h in healed if h is not None)
    return {
        "before": max(0.0, first - started_at),
        "during": max(0.0, min(last, stopped_at) - first),
        "after": max(0.0, stopped_at - last),
    }
