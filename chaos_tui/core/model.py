"""The data a run produces: samples, windows, invariant results, metrics and the final result.

Samples are plain slotted dataclasses because probes make them at 10 Hz each; the result is a
pydantic model because it is written as JSON and read back for baselines and reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

Outcome = Literal["pass", "fail", "error", "aborted", "interrupted"]
Phase = Literal["before", "during", "after"]


@dataclass(frozen=True, slots=True)
class ProbeSample:
    probe: str
    t: float  # wall-clock seconds since the epoch, so windows from other processes line up
    ok: bool
    latency_ms: float | None
    value: float | None = None
    error: str | None = None


class InjectionWindow(BaseModel):
    fault: str
    lease_id: str
    description: str
    injected_at: float  # the lease was taken and the inject began
    applied_at: float | None = None  # the inject returned: the fault is surely in place
    heal_started_at: float | None = None
    healed_at: float | None = None
    healed_by: str = "the run"  # or the agent, when it undid the fault first (e.g. its TTL)
    # Known once it is applied: when the runner means to heal it (the end of its hold) and
    # when its lease runs out (the agent heals it then, whoever else forgot). Results saved
    # before these existed load with None.
    planned_heal_at: float | None = None
    expires_at: float | None = None
    # What it does, a line each where it is several things (one per worker injector, with
    # its scope); empty when the description says it all.
    parts: list[str] = Field(default_factory=list)

    def contains(self, t: float) -> bool:
        end = self.healed_at if self.healed_at is not None else float("inf")
        return self.injected_at <= t <= end


class InvariantResult(BaseModel):
    name: str
    description: str
    passed: bool
    measured: float | None  # None: could not be measured, which counts as a failure
    limit: float | None
    comparison: Literal["<=", ">=", "=="] = "<="
    unit: str = ""
    detail: str = ""
    # When the run first saw it broken while the fault was live (wall clock), for a result
    # that also failed at verify; None: it broke only at verify, or it held.
    broke_at: float | None = None


class InvariantSpec(BaseModel):
    """An invariant as declared before a run (shown in the detail view), judged after it."""

    name: str
    description: str
    limit: float | None
    comparison: Literal["<=", ">=", "=="] = "<="
    unit: str = ""

    @property
    def limit_text(self) -> str:
        """The limit as a plan shows it: `<= 10 s`, `>= 2 s`, `<= 0.01`; "" when it has none."""
        if self.limit is None:
            return ""
        return f"{self.comparison} {self.limit:g} {self.unit}".strip()

    def judge(self, measured: float | None, detail: str = "") -> InvariantResult:
        if measured is None or self.limit is None:
            passed = False  # what could not be measured did not hold
        elif self.comparison == "<=":
            passed = measured <= self.limit
        elif self.comparison == ">=":
            passed = measured >= self.limit
        else:
            passed = measured == self.limit
        return InvariantResult(
            name=self.name,
            description=self.description,
            passed=passed,
            measured=measured,
            limit=self.limit,
            comparison=self.comparison,
            unit=self.unit,
            detail=detail,
        )


class PhaseSummary(BaseModel):
    samples: int = 0
    ok: int = 0
    error_rate: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    latency_ms_p99: float | None = None  # None in results saved before SLOs read it
    latency_ms_max: float | None = None
    value_min: float | None = None
    value_max: float | None = None
    value_last: float | None = None
    last_error: str | None = None


class ProbeReport(BaseModel):
    name: str
    description: str
    before: PhaseSummary
    during: PhaseSummary
    after: PhaseSummary
    # Compact series for charts and reports: [seconds since run start, ok, latency_ms, value].
    samples: list[tuple[float, bool, float | None, float | None]] = Field(default_factory=list)


class RecoveryMetrics(BaseModel):
    probe: str | None = None  # the probe the timings are read from
    # The first fault landed -> the probe's first failing sample. "applied": counted from the
    # moment the fault was in place (the window's applied_at); "injected": from the lease
    # request (injected_at), where the applied time is unknown. Both stamps are in the window.
    time_to_detect_s: float | None = None
    detect_from: Literal["applied", "injected"] | None = None
    # "Back" is back for good: the first passing sample after the last failing one, so a
    # moment's pass in mid-fault (a link failing over to a node not yet cut) is no recovery.
    time_to_recover_s: float | None = None  # heal started -> back
    outage_s: float | None = None  # first failing sample -> back
    error_rate_during_fault: float | None = None
    # Every other probe that failed during the fault, with its error rate then: the recovery
    # probe's 0% is never the whole story while another probe was failing.
    other_error_rates: dict[str, float] = Field(default_factory=dict)
    backlog_probe: str | None = None
    backlog_peak: float | None = None
    backlog_drain_s: float | None = None  # heal started -> backlog back to its steady level


class DeliveryCounts(BaseModel):
    """Jepsen-style accounting of what was written against what was read back."""

    attempted: int  # ids the workload tried to write
    acknowledged: int  # ids whose write was confirmed
    received: int  # messages read back (duplicates included)
    published: int  # acknowledged ids read back at least once
    lost: int  # acknowledged ids never read back
    duplicated: int  # ids read back more than once
    unexpected: int  # ids read back that were never attempted
    recovered: int  # attempted but unconfirmed ids that were read back anyway
    lost_sample: list[str] = Field(default_factory=list)
    duplicated_sample: list[str] = Field(default_factory=list)


class FaultHealReport(BaseModel):
    fault: str
    lease_id: str
    ok: bool
    error: str | None = None


class HealReport(BaseModel):
    ok: bool = True
    verified: bool = True  # the target was checked healthy again after heal
    faults: list[FaultHealReport] = Field(default_factory=list)


Scalar = float | int | str | bool | None
Measurement = Scalar | dict[str, Scalar]


class OperatorNote(BaseModel):
    """A line the operator typed during the run (a game day's "paged the DBA at 14:02")."""

    t: float  # when it was typed, wall-clock seconds since the epoch
    text: str


class MetricComparison(BaseModel):
    """One recovery metric of a run against its baseline (core/baseline.py computes it)."""

    name: str  # the key in key_metrics(): "outage_s", "time_to_recover_s", "job_latency_p95_s"...
    label: str  # how a report says it: "outage (postgres)"
    unit: str = ""  # "s", "%", "/s", "" (a count)
    better: Literal["lower", "higher"] = "lower"
    value: float | None = None  # this run's
    baseline_median: float | None = None
    baseline_p95: float | None = None
    baseline_runs: int = 0  # how many past runs the figures come from
    # The rule that flags it: worse than the baseline's median by more than threshold_pct
    # percent, AND by `noise` times the baseline's spread (p95 - median), AND by the absolute
    # floor (so 0.09 s -> 0.12 s is not a regression). None where the rule has no such part.
    threshold_pct: float | None = None
    noise: float | None = None
    floor: float | None = None
    limit: float | None = None  # the value past which it is a regression, from the rule
    regressed: bool = False


# The note of a scenario's first passing run on a target (core/baseline.py writes it): the
# summary says nothing of it, there being nothing to compare with.
FIRST_PASS = "nothing to compare with yet: the first passing run of this scenario on this target"


class BaselineComparison(BaseModel):
    """A run compared with the last passing runs of its scenario, target and parameter set (or
    a pinned baseline). Empty metrics when there was nothing to compare with; `note` says so."""

    scenario: str
    target: str
    source: Literal["recent", "pinned", "none"] = "recent"
    parameters: dict[str, float | int | str | bool] = Field(default_factory=dict)  # baseline's
    # This run's parameters that differ from the baseline's (name -> [baseline's, this run's]):
    # a run whose own parameter set has no baseline yet is compared with the default one.
    parameters_differ: dict[str, list[float | int | str | bool | None]] = Field(
        default_factory=dict
    )
    runs: list[str] = Field(default_factory=list)  # run ids the baseline is made of
    metrics: list[MetricComparison] = Field(default_factory=list)
    note: str = ""

    @property
    def regressions(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.regressed]


class SloResult(BaseModel):
    """An objective of a scenario file (`slo:`) judged on one phase of one probe or load."""

    subject: str  # the probe's or the load's name
    phase: Phase
    # "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "max_error_rate", "min_throughput_rps"
    objective: str
    measured: float | None  # None: no sample in that phase, which does not count as met
    limit: float
    comparison: Literal["<=", ">="] = "<="
    unit: str = ""
    passed: bool
    counts: bool = True  # whether a miss fails the run (a scenario file says which phases do)
    detail: str = ""  # what it was read from ("118 samples", "3 of 40 failed")


class RunResult(BaseModel):
    run_id: str
    scenario: str
    hypothesis: str
    target: str
    outcome: Outcome
    reason: str = ""
    started_at: float
    finished_at: float
    duration_s: float
    phases: dict[str, float] = Field(default_factory=dict)  # phase name -> time it began
    parameters: dict[str, float | int | str | bool] = Field(default_factory=dict)
    # The scenario's defaults for them, so a result says what a run changed (empty in results
    # saved before they were kept); `changed_parameters` compares the two.
    parameter_defaults: dict[str, float | int | str | bool] = Field(default_factory=dict)
    probe_rate_hz: float
    injection_windows: list[InjectionWindow] = Field(default_factory=list)
    invariants: list[InvariantResult] = Field(default_factory=list)
    recovery: RecoveryMetrics = Field(default_factory=RecoveryMetrics)
    delivery: DeliveryCounts | None = None
    # The scenario's own numbers: flat values, or one level of named counts.
    measurements: dict[str, Measurement] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)  # of the platform's parts, per target
    probes: dict[str, ProbeReport] = Field(default_factory=dict)
    heal: HealReport = Field(default_factory=HealReport)
    runbook: str | None = None  # set when an invariant broke: what to do about it
    notes: list[OperatorNote] = Field(default_factory=list)  # the operator's, in typed order
    # Against the baseline when the result was saved (None in results saved before baselines
    # existed, or when comparing was not possible); SLOs of a scenario file, per phase.
    comparison: BaselineComparison | None = None
    slos: list[SloResult] = Field(default_factory=list)
