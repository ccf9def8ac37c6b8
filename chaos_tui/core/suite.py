"""What a suite of runs comes to: a record per run (small: a long soak holds hundreds), the
worst outcome, and the drift of each scenario's recovery figures across its repetitions.

A record keeps the figures `baseline.key_metrics` reads from a result (times to detect and
recover, outage, backlog peak and drain, DLQ growth, job latency), never the samples: the
result itself is saved as for any run, and the record names its file.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable

from pydantic import BaseModel, Field

from chaos_tui.core.baseline import key_metrics
from chaos_tui.core.exit_codes import OUTCOME_EXIT_CODES, ExitCode
from chaos_tui.core.model import RunResult
from chaos_tui.core.regression import Better, RegressionPolicy

ParamValue = float | int | str | bool
# Worst last. A failed heal leaves the target broken: nothing is worse. A signal stopped the
# suite short. A broken invariant is the finding a game day is for; a run that broke (error)
# or whose steady state never held (aborted) says less about the platform.
SEVERITY = (
    ExitCode.PASS,
    ExitCode.ABORTED,
    ExitCode.ERROR,
    ExitCode.FAIL,
    ExitCode.INTERRUPTED,
    ExitCode.HEAL_FAILED,
)
PolicyFor = Callable[[str], RegressionPolicy]  # scenario name -> its regression rule
MIN_DRIFT_RUNS = 3  # two points make a line through any noise


class Figure(BaseModel):
    """One of a run's key figures (baseline.key_metrics), kept by value."""

    label: str
    unit: str
    better: Better
    value: float


class SuiteRun(BaseModel):
    """One run of a suite, as the suite's table and JSON need it."""

    index: int  # 1-based, in the order run
    repetition: int  # 1-based: which pass over the suite's list
    scenario: str
    outcome: str
    exit_code: int
    reason: str = ""
    run_id: str | None = None
    target: str = ""
    started_at: float
    duration_s: float
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    heal_ok: bool = True
    regressions: list[str] = Field(default_factory=list)  # labels of metrics that regressed
    metrics: dict[str, Figure] = Field(default_factory=dict)  # key_metrics, by name
    saved: str | None = None  # the result file


class MetricDrift(BaseModel):
    """One figure of one scenario over its repetitions: the fitted change from the first to
    the last, and whether that is worse by more than the regression rule tolerates."""

    scenario: str
    # The runs' parameters: a trend is drawn across runs alike only (an outage grows with the
    # hold; a suite running one scenario at three holds is not drifting).
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    name: str
    label: str
    unit: str
    better: Better
    values: list[float]  # in the order run
    slope_per_run: float
    change: float  # the fitted line's last value minus its first
    worsening: bool


class SuiteReport(BaseModel):
    suite_id: str
    suite: str
    description: str = ""
    source: str = ""  # the suite file, the built-in's name, or `--scenario`
    target: str = ""
    started_at: float
    finished_at: float
    duration_s: float
    outcome: str  # the worst run's, or "interrupted" when a signal stopped the suite
    exit_code: int
    stopped: str = ""  # why the suite ended before its list did, if it did
    runs: list[SuiteRun] = Field(default_factory=list)
    drift: list[MetricDrift] = Field(default_factory=list)


def run_record(
    result: RunResult,
    index: int,
    repetition: int,
    exit_code: int,
    saved: str | None,
) -> SuiteRun:
    regressions = [m.label for m in result.comparison.regressions] if result.comparison else []
    return SuiteRun(
        index=index,
        repetition=repetition,
        scenario=result.scenario,
        outcome=result.outcome,
        exit_code=exit_code,
        reason=result.reason,
        run_id=result.run_id,
        target=result.target,
        started_at=result.started_at,
        duration_s=result.duration_s,
        parameters=dict(result.parameters),
        heal_ok=result.heal.ok,
        regressions=regressions,
        metrics={
            name: Figure(label=m.label, unit=m.unit, better=m.better, value=m.value)
            for name, m in key_metrics(result).items()
        },
        saved=saved,
    )


def suite_report(
    *,
    suite_id: str,
    name: str,
    description: str,
    source: str,
    target: str,
    started_at: float,
    runs: list[SuiteRun],
    stopped: str = "",
    interrupted: bool = False,
    policy_for: PolicyFor | None = None,
) -> SuiteReport:
    """The suite's verdict: the worst run's exit code, or interrupted when a signal (or the
    operator) ended it, unless a heal failed, which says more."""
    finished = time.time()
    worst = worst_exit_code([r.exit_code for r in runs])
    if interrupted and worst != ExitCode.HEAL_FAILED:
        worst = ExitCode.INTERRUPTED
    return SuiteReport(
        suite_id=suite_id,
        suite=name,
        description=description,
        source=source,
        target=target,
        started_at=started_at,
        finished_at=finished,
        duration_s=finished - started_at,
        outcome=outcome_word(worst),
        exit_code=int(worst),
        stopped=stopped,
        runs=runs,
        drift=drift(runs, policy_for),
    )


def unplanned_record(
    scenario: str, index: int, repetition: int, target: str, reason: str
) -> SuiteRun:
    """A run that could not even be planned (the target changed since the suite began)."""
    return SuiteRun(
        index=index,
        repetition=repetition,
        scenario=scenario,
        outcome="error",
        exit_code=int(ExitCode.ERROR),
        reason=f"could not plan the run: {reason}",
        target=target,
        started_at=time.time(),
        duration_s=0.0,
    )


def worst_exit_code(codes: list[int]) -> ExitCode:
    """The most severe of the runs' exit codes (PASS for none)."""
    rank = {code: i for i, code in enumerate(SEVERITY)}
    worst = ExitCode.PASS
    for code in codes:
        known = ExitCode(code) if code in rank else ExitCode.ERROR
        if rank[known] > rank[worst]:
            worst = known
    return worst


def outcome_word(code: ExitCode) -> str:
    if code == ExitCode.HEAL_FAILED:
        return "heal failed"
    return next((word for word, c in OUTCOME_EXIT_CODES.items() if c == code), "error")


def drift(runs: list[SuiteRun], policy_for: PolicyFor | None = None) -> list[MetricDrift]:
    """Per scenario and parameter set run at least twice, each key figure's trend across its
    passing runs (a failed run's figures measure something else). Worsening: the fitted
    change over the runs is worse by more than the regression rule's percentage of the median
    and by more than its floor, over at least MIN_DRIFT_RUNS runs. The rule is the
    scenario's (`policy_for`: settings, a scenario file's `regression:`), else the default."""
    out: list[MetricDrift] = []
    alike: dict[tuple[str, tuple[tuple[str, ParamValue], ...]], list[SuiteRun]] = {}
    for run in runs:
        if run.outcome == "pass":
            key = (run.scenario, tuple(sorted(run.parameters.items())))
            alike.setdefault(key, []).append(run)
    for (scenario, _), done in alike.items():
        if len(done) < 2:
            continue
        names = list(dict.fromkeys(name for run in done for name in run.metrics))
        for name in names:
            figures = [run.metrics[name] for run in done if name in run.metrics]
            if len(figures) < 2:
                continue
            values = [f.value for f in figures]
            label, unit, better = figures[-1].label, figures[-1].unit, figures[-1].better
            slope = _slope(values)
            change = slope * (len(values) - 1)
            worse_by = change if better == "lower" else -change
            policy = policy_for(scenario) if policy_for is not None else RegressionPolicy()
            pct, floor = policy.rule(unit, better)
            median = abs(statistics.median(values))
            beyond_pct = pct is None or worse_by > median * pct / 100
            worsening = len(values) >= MIN_DRIFT_RUNS and worse_by > floor and beyond_pct
            out.append(
                MetricDrift(
                    scenario=scenario,
                    parameters=done[0].parameters,
                    name=name,
                    label=label,
                    unit=unit,
                    better=better,
                    values=values,
                    slope_per_run=slope,
                    change=change,
                    worsening=worsening,
                )
            )
    return out


def _slope(values: list[float]) -> float:
    n = len(values)
    mx = (n - 1) / 2
    my = sum(values) / n
    den = sum((i - mx) ** 2 for i in range(n))
    return sum((i - mx) * (v - my) for i, v in enumerate(values)) / den if den else 0.0


def new_suite_id(name: str, started_at: float) -> str:
    """When and which, and a random part: two suites of one name may start in one second."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started_at))
    return f"{stamp}-suite-{name}-{uuid.uuid4().hex[:6]}"
