"""A run result in words: the facts every face shows, and the Markdown report.

One place decides how a metric is worded, so the headless summary, the console's report
screen and an exported Markdown file never disagree about the same run.
"""

from __future__ import annotations

import datetime as dt
import math

from chaos_tui.core.model import (
    FIRST_PASS,
    BaselineComparison,
    DeliveryCounts,
    InjectionWindow,
    InvariantResult,
    Measurement,
    MetricComparison,
    RecoveryMetrics,
    RunResult,
    SloResult,
)
from chaos_tui.core.params import changed_parameters, changed_text


def _three_digits(value: float) -> str:
    """A positive number to 3 significant digits, in fixed notation (308, 13.2, 1.93, 0.500)."""
    decimals = max(0, 2 - math.floor(math.log10(value)))
    return f"{value:.{decimals}f}"


def duration_text(value: float | None) -> str:
    """Every duration the console, the summary and the reports show, in one convention:
    3 significant digits and a unit always; under a second in ms, else in seconds; whole
    seconds from 1000 s. 0.03 -> "30.0 ms", 0.308 -> "308 ms", 1.93 -> "1.93 s",
    13.24 -> "13.2 s", 1234.5 -> "1234 s"."""
    if value is None or math.isnan(value):
        return "n/a"
    if value < 0:
        return "-" + duration_text(-value)
    if value == 0:
        return "0 ms"
    rounded = float(f"{value:.3g}")  # 0.9996 is "1.00 s", not "1000 ms"
    if rounded < 1:
        return f"{_three_digits(rounded * 1000)} ms"
    if rounded >= 1000:
        return f"{round(value)} s"
    return f"{_three_digits(rounded)} s"


def short_number(value: float) -> str:
    """A reading in 3 significant digits, short enough for an axis or a caption: 6380 is
    `6.38k` (not `6.38e+03`), 73.392 is `73.4`."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def seconds(value: float | None) -> str:
    """A duration in seconds as words (`duration_text`)."""
    return duration_text(value)


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{round(value * 100, 1):g}%"


def verdict_line(result: RunResult) -> str:
    line = (
        f"{result.outcome.upper()} {result.scenario} on {result.target} "
        f"in {duration_text(result.duration_s)}"
    )
    return line + (f" - {result.reason}" if result.reason else "")


def parameters_text(result: RunResult) -> str | None:
    """`hold_s=10 (default 3), mode=pause (default stop)`: what this run changed from the
    scenario's defaults, said beside every verdict so a "last run" is read with them. None
    when the run kept every default (or the result predates kept defaults)."""
    if not changed_parameters(result.parameters, result.parameter_defaults):
        return None
    return changed_text(result.parameters, result.parameter_defaults)


def never_failed(r: RecoveryMetrics) -> bool:
    """The recovery probe passed all through the fault: nothing was detected or recovered
    (the timeline records its recovery as 0 s, which is not a number to show)."""
    return r.time_to_detect_s is None and r.outage_s is None and r.time_to_recover_s == 0.0


def recovery_facts(
    r: RecoveryMetrics, fault_seen: bool, delivery: DeliveryCounts | None = None
) -> list[tuple[str, str]]:
    """(label, value) rows for the recovery metrics and delivery counts, in reading order.
    The console calls this while a run is live, with whatever is known so far."""
    facts: list[tuple[str, str]] = []
    if fault_seen:
        where = f" ({r.probe})" if r.probe else ""
        # Each says what it is counted from: an invariant's own timing (relay_resumes, say)
        # counts from its own moment (Postgres accepting connections), not the heal.
        # A probe that never failed (a gateway failing open) recovered from nothing: "0 ms"
        # there would read as a healthy, instant recovery.
        never = "never failed" if never_failed(r) else None
        facts += [
            (f"time to detect{where}, from the fault", never or seconds(r.time_to_detect_s)),
            (
                f"time to recover{where}, from the heal's start",
                never or seconds(r.time_to_recover_s),
            ),
            (f"outage{where}, first failure to back", never or seconds(r.outage_s)),
            (f"error rate during fault{where}", percent(r.error_rate_during_fault)),
        ]
        # The other probes that failed meanwhile, in the same words: a recovery probe that
        # never failed (a gateway failing open) must not read as a healthy fault on its own.
        facts += [
            (f"error rate during fault ({name})", percent(rate))
            for name, rate in r.other_error_rates.items()
        ]
    if r.backlog_probe and r.backlog_peak is not None:
        facts += [
            (f"backlog peak ({r.backlog_probe})", f"{r.backlog_peak:g}"),
            (f"backlog drain ({r.backlog_probe}), from the heal", seconds(r.backlog_drain_s)),
        ]
    if delivery is not None:
        d = delivery
        facts.append(
            (
                "delivery",
                f"acknowledged {d.acknowledged}, delivered {d.published}, lost {d.lost}, "
                f"duplicated {d.duplicated}, unexpected {d.unexpected}",
            )
        )
    return facts


def measurement_text(value: object, rate: bool = False) -> str:
    """A scenario's own number as words: a float to 4 significant figures, named counts as
    'allow 3, deny 40' (a key's underscores read as spaces), and a rate as a percentage."""
    if isinstance(value, dict):
        return (
            ", ".join(
                f"{str(k).replace('_', ' ')} {measurement_text(v, rate)}" for k, v in value.items()
            )
            or "none"
        )
    if rate and isinstance(value, (int, float)) and not isinstance(value, bool):
        return percent(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def is_rate(label: str, value: object) -> bool:
    """A measurement named a rate whose values are all shares (0 to 1) reads as percentages."""
    values = value.values() if isinstance(value, dict) else [value]
    shares = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return "rate" in label.split() and bool(shares) and all(0 <= v <= 1 for v in shares)


# The queue scenarios' measurements (scenarios/queue_base.py) that impact_facts words.
DEAD_LETTERS = "dead letters"  # the DLQ's size before, at heal, after; its growth during/after
JOBS = "jobs"  # what became of the run's jobs


def impact_facts(result: RunResult) -> list[tuple[str, str]]:
    """The numbers a game day on a job queue asks first, worded for the top of a report: the
    DLQ impact, the backlog drain and what became of the jobs. Empty for other scenarios."""
    m = result.measurements
    dlq, jobs = m.get(DEAD_LETTERS), m.get(JOBS)
    if not isinstance(dlq, dict) and not isinstance(jobs, dict):
        return []
    facts: list[tuple[str, str]] = []
    if isinstance(dlq, dict) and dlq:
        growth = [
            f"{dlq[key]:+g} {when}"
            for key, when in (("growth during", "during the fault"), ("growth after", "after"))
            if isinstance(dlq.get(key), (int, float))
        ]
        sizes = [f"{dlq[k]:g}" for k in ("before", "at heal", "after") if k in dlq]
        facts.append(
            ("DLQ impact", ", ".join(growth) + (f" ({' → '.join(sizes)} jobs)" if sizes else ""))
        )
    r = result.recovery
    if r.backlog_probe:
        peak = "" if r.backlog_peak is None else f" (peak {r.backlog_peak:g})"
        drained = "never rose" if r.backlog_peak is None else seconds(r.backlog_drain_s)
        facts.append(("backlog drain after the heal", drained + peak))
    if isinstance(jobs, dict) and jobs:
        facts.append(
            (
                "jobs",
                f"lost {jobs.get('lost', 'n/a')}, duplicated {jobs.get('duplicated', 'n/a')}, "
                f"dead-lettered {jobs.get('dead_lettered', 'n/a')} "
                f"of {jobs.get('acknowledged', 'n/a')} acknowledged",
            )
        )
    return facts


def measurement_facts(measurements: dict[str, Measurement]) -> list[tuple[str, str]]:
    """A scenario's own numbers as (label, value) rows; the console shows them while a run
    is live (as far as they are known) in the words the report uses afterwards."""
    return [_measurement_fact(label, v) for label, v in measurements.items()]


def _measurement_fact(label: str, value: Measurement) -> tuple[str, str]:
    """A measurement in seconds (its key ends in " (s)", kept so the JSON says its unit) reads
    as every other duration: "OPA down 2.49 s", not "OPA down (s) 2.486"."""
    if label.endswith(" (s)") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return label.removesuffix(" (s)"), duration_text(value)
    return label, measurement_text(value, is_rate(label, value))


def result_facts(result: RunResult) -> list[tuple[str, str]]:
    facts = recovery_facts(result.recovery, bool(result.injection_windows), result.delivery)
    facts += measurement_facts(result.measurements)
    facts.append(("heal", heal_text(result)))
    if result.versions:
        facts.append(("versions", ", ".join(result.versions.values())))
    if result.runbook:
        facts.append(("runbook", result.runbook))
    return facts


SLO_WORDS = {
    "p50_latency_ms": "p50 latency",
    "p95_latency_ms": "p95 latency",
    "p99_latency_ms": "p99 latency",
    "max_error_rate": "error rate",
    "min_throughput_rps": "throughput",
}
SLO_PHASES = ("before", "during", "after")


def slo_value(r: SloResult) -> str:
    """A measured SLO value or its limit: latencies as durations, error rates as percentages."""
    return _slo_quantity(r.measured, r)


def _slo_quantity(value: float | None, r: SloResult) -> str:
    if value is None:
        return "n/a"
    if r.objective == "max_error_rate":
        return percent(value)
    if r.unit == "/s":
        return f"{value:.3g}/s"
    return quantity_text(value, r.unit)


def slo_cell(r: SloResult) -> str:
    """One phase of one SLO: `12.3 ms met`, `310 ms MISSED`, `310 ms missed (not counted)`."""
    verdict = "met" if r.passed else "MISSED" if r.counts else "missed (not counted)"
    return f"{slo_value(r)} {verdict}"


def slo_table(result: RunResult) -> list[tuple[str, dict[str, SloResult]]]:
    """The result's SLOs as rows, one per objective of a probe or load ("callers p95 latency
    <= 150 ms"), each with its result per phase, in the order they were judged."""
    rows: dict[str, dict[str, SloResult]] = {}
    for r in result.slos:
        label = (
            f"{r.subject} {SLO_WORDS.get(r.objective, r.objective)} "
            f"{r.comparison} {_slo_quantity(r.limit, r)}"
        )
        rows.setdefault(label, {})[r.phase] = r
    return list(rows.items())


def slo_facts(result: RunResult) -> list[tuple[str, str]]:
    """(label, value) rows for the SLOs of a scenario file: one per objective, its phases side
    by side (`before 12.3 ms met; during 310 ms missed (not counted); after 11.2 ms met`)."""
    return [
        (
            f"SLO {label}",
            "; ".join(f"{p} {slo_cell(phases[p])}" for p in SLO_PHASES if p in phases),
        )
        for label, phases in slo_table(result)
    ]


def heal_text(result: RunResult) -> str:
    faults = result.heal.faults
    undone = sum(f.ok for f in faults)
    if not result.heal.ok and undone < len(faults):
        # A failed heal is said as what failed, with no "verified" beside it to contradict it.
        failed = "; ".join(f"{f.fault}: {f.error or 'failed'}" for f in faults if not f.ok)
        return f"FAILED, {undone} of {len(faults)} fault(s) undone ({failed})"
    state = "ok" if result.heal.ok else "FAILED"
    verified = "verified" if result.heal.verified else "NOT verified"
    return f"{state}, {undone} fault(s) undone, {verified}"


def quantity_text(value: float, unit: str) -> str:
    """A measured value with its unit: durations (s, ms) by `duration_text`, anything else
    to 4 significant digits with its unit when it has one."""
    if unit in TIME_UNITS:
        return duration_text(value * TIME_UNITS[unit])
    return f"{value:.4g}" + (f" {unit}" if unit else "")


TIME_UNITS = {"s": 1.0, "ms": 0.001}  # units that are durations, in seconds


def comparison_table(result: RunResult) -> list[tuple[str, str]]:
    """The run against its baseline, one (label, value) row per metric: this run's value, the
    baseline's median and p95, the rule's threshold, floor and limit, and REGRESSED where the
    rule flagged it. Empty for a result saved without a comparison."""
    c = result.comparison
    if c is None:
        return []
    if c.source == "none":
        return [("baseline", c.note or "nothing to compare with")]
    facts = [("baseline", baseline_head(c))]
    for m in c.metrics:
        line = (
            f"{metric_text(m.value, m.unit)} vs baseline median "
            f"{metric_text(m.baseline_median, m.unit)}, p95 {metric_text(m.baseline_p95, m.unit)}"
            f" ({m.baseline_runs} run{'s' * (m.baseline_runs != 1)}); limit "
            f"{metric_text(m.limit, m.unit)} ({rule_text(m)})"
        )
        facts.append((m.label or m.name, line + (" REGRESSED" if m.regressed else "")))
    return facts


def invariant_measure(r: InvariantResult) -> str:
    measured = "unmeasured" if r.measured is None else quantity_text(r.measured, r.unit)
    limit = "" if r.limit is None else f" (limit {r.comparison} {quantity_text(r.limit, r.unit)})"
    return measured + limit


def landed_at(windows: list[InjectionWindow]) -> float | None:
    """When the first fault was in place (applied; requested, where that is unknown): what
    "+2.1 s" in "broke at +2.1 s" counts from."""
    if not windows:
        return None
    first = windows[0]
    return first.applied_at if first.applied_at is not None else first.injected_at


def broke_text(r: InvariantResult, landed: float | None) -> str:
    """'fails_closed broke at +2.10 s' for an invariant seen breaking while the fault was live,
    'allow_resumes failed' for one that failed only at verify."""
    if r.broke_at is None:
        return f"{r.name} failed"
    when = "" if landed is None else f" at +{duration_text(max(0.0, r.broke_at - landed))}"
    return f"{r.name} broke{when}"


def note_lines(result: RunResult) -> list[str]:
    """The operator's notes, each with the clock time it was typed and how far into the run."""
    return [
        f"{dt.datetime.fromtimestamp(n.t).strftime('%H:%M:%S')} "
        f"(+{duration_text(max(0.0, n.t - result.started_at))}) {n.text}"
        for n in result.notes
    ]


def invariant_detail(inv: InvariantResult, windows: list[InjectionWindow]) -> str:
    """Its detail, led by when it broke where that was seen while the fault was live."""
    if inv.passed or inv.broke_at is None:
        return inv.detail
    when = broke_text(inv, landed_at(windows)).removeprefix(inv.name).strip()
    return "; ".join(filter(None, [when, inv.detail]))


def metric_text(value: float | None, unit: str) -> str:
    """A key metric's value (core/baseline.py) in its unit: a duration, points, a rate."""
    if value is None:
        return "n/a"
    if unit in TIME_UNITS:
        return duration_text(value * TIME_UNITS[unit])
    if unit == "%":
        return f"{value:.3g}%"
    return short_number(value) + (unit if unit == "/s" else "")


def rule_text(m: MetricComparison) -> str:
    """The rule that set the limit: "+20 %, 2x the spread and at least 250 ms worse"."""
    floor = metric_text(m.floor, m.unit) if m.unit != "%" else f"{m.floor or 0:g} points"
    parts = []
    if m.threshold_pct is not None:
        parts.append(f"{'+' if m.better == 'lower' else '-'}{m.threshold_pct:g} %")
    if m.noise:
        parts.append(f"{m.noise:g}x the spread")
    return ", ".join(parts + [f"at least {floor} worse"])


def baseline_text(c: BaselineComparison) -> str:
    where = f"pinned run {c.runs[0]}" if c.source == "pinned" and c.runs else f"{len(c.runs)} runs"
    if c.parameters_differ:
        changes = ", ".join(f"{k} {a} \u2192 {b}" for k, (a, b) in c.parameters_differ.items())
        where += f" with the default parameters (this run: {changes})"
    return where


def baseline_head(c: BaselineComparison) -> str:
    """ "10 runs with the default parameters (this run: hold_s 3.0 -> 8.0), 2 regressed"."""
    count = len(c.regressions)
    return f"{baseline_text(c)}, {f'{count} regressed' if count else 'nothing regressed'}"


def metric_name_text(name: str) -> str:
    """A key metric's name (core/baseline.py) as words, for a narrow column: "outage_s" ->
    "outage", "time_to_recover_s" -> "time to recover"."""
    return name.removesuffix("_s").replace("_", " ")


def comparison_facts(result: RunResult) -> list[tuple[str, str]]:
    """The run against its baseline: one row when nothing regressed, else a row per regressed
    metric with its value, the baseline's median and the limit (and the rule behind it).
    Nothing for a result saved before baselines existed."""
    c = result.comparison
    if c is None:
        return []
    if c.source == "none" and c.note == FIRST_PASS:
        return []  # a scenario's first run on a target: nothing to compare, nothing to say
    if c.source == "none":
        return [("baseline", c.note or "nothing to compare with")]
    if not c.metrics:
        return [("baseline", f"{baseline_text(c)}, no figure in common to compare")]
    facts = [("baseline", baseline_head(c))]
    for m in c.regressions:
        facts.append(
            (
                f"REGRESSION {m.label}",
                f"{metric_text(m.value, m.unit)} vs baseline median "
                f"{metric_text(m.baseline_median, m.unit)} (p95 "
                f"{metric_text(m.baseline_p95, m.unit)}); limit {metric_text(m.limit, m.unit)}"
                f" ({rule_text(m)})",
            )
        )
    return facts


def markdown_report(result: RunResult) -> str:
    """A report a person can paste into a game-day write-up or a ticket."""
    when = dt.datetime.fromtimestamp(result.started_at).strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        f"# chaos-tui: {result.scenario}",
        "",
        f"**Verdict: {result.outcome.upper()}**" + (f": {result.reason}" if result.reason else ""),
        "",
        f"- Target: {result.target}",
        f"- Started: {when}, ran {duration_text(result.duration_s)} (run {result.run_id})",
        f"- Hypothesis: {result.hypothesis}",
    ]
    changed = parameters_text(result)
    if changed:
        lines.append(f"- Parameters changed: {changed}")
    lines.append("")
    impact = impact_facts(result)
    if impact:
        lines += ["## Impact", ""] + [f"- **{label}**: {value}" for label, value in impact] + [""]
    lines += [
        "## Recovery",
        "",
        "| Metric | Value |",
        "|---|---|",
    ]
    lines += [f"| {label} | {value} |" for label, value in result_facts(result)]
    compared = comparison_facts(result)
    if compared:
        lines += ["", "## Baseline", ""] + [f"- **{label}**: {value}" for label, value in compared]
    lines += ["", "## Invariants", "", "| | Invariant | Measured | Detail |", "|---|---|---|---|"]
    for inv in result.invariants:
        mark = "pass" if inv.passed else "FAIL"
        detail = invariant_detail(inv, result.injection_windows)
        lines.append(
            f"| {mark} | {inv.name}: {inv.description} | {invariant_measure(inv)} | {detail} |"
        )
    if not result.invariants:
        lines.append("| | (none checked) | | |")
    if result.slos:
        lines += ["", "## SLOs", "", "| SLO | Before | During | After |", "|---|---|---|---|"]
        for label, phases in slo_table(result):
            cells = [slo_cell(phases[p]) if p in phases else "" for p in SLO_PHASES]
            lines.append(f"| {label} | {' | '.join(cells)} |")
        lines += ["", "A miss marked *not counted* is reported only: it fails no run."]
    lines += ["", "## Faults", ""]
    for w in result.injection_windows:
        live = duration_text(w.healed_at - w.injected_at) if w.healed_at else ""
        held = f"live {live}" if w.healed_at else "NEVER HEALED"
        if w.healed_at and w.healed_by != "the run":
            held += f", healed by {w.healed_by}"
        lines.append(f"- {w.fault}: {w.description}; {held}")
        lines += [f"  - {part}" for part in w.parts]
    if not result.injection_windows:
        lines.append("- none injected")
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {line}" for line in note_lines(result)]
    if result.parameters:
        lines += ["", "## Parameters", ""]
        lines += [f"- {k} = {v}" for k, v in result.parameters.items()]
    if result.runbook:
        lines += [
            "",
            "## Runbook",
            "",
            f"`{result.runbook}` (shipped in the chaos-tui package; `b` on the console's "
            "report shows it)",
        ]

    return "\n".join(lines) + "\n"
