"""A run result in words: the facts every face shows, and the Markdown report.

One place decides how a metric is worded, so the headless summary, the console's report
screen and an exported Markdown file never disagree about the same run.
"""

from __future__ import annotations

import datetime as dt

from chaos_tui.core.model import DeliveryCounts, InvariantResult, RecoveryMetrics, RunResult


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g} s"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{round(value * 100, 1):g}%"


def verdict_line(result: RunResult) -> str:
    line = (
        f"{result.outcome.upper()} {result.scenario} on {result.target} in {result.duration_s:.1f}s"
    )
    return line + (f" - {result.reason}" if result.reason else "")


def recovery_facts(
    r: RecoveryMetrics, fault_seen: bool, delivery: DeliveryCounts | None = None
) -> list[tuple[str, str]]:
    """(label, value) rows for the recovery metrics and delivery counts, in reading order.
    The console calls this while a run is live, with whatever is known so far."""
    facts: list[tuple[str, str]] = []
    if fault_seen:
        where = f" ({r.probe})" if r.probe else ""
        facts += [
            (f"time to detect{where}", seconds(r.time_to_detect_s)),
            (f"time to recover{where}", seconds(r.time_to_recover_s)),
            (f"outage{where}", seconds(r.outage_s)),
            (f"error rate during fault{where}", percent(r.error_rate_during_fault)),
        ]
    if r.backlog_probe and r.backlog_peak is not None:
        facts += [
            (f"backlog peak ({r.backlog_probe})", f"{r.backlog_peak:g}"),
            (f"backlog drain ({r.backlog_probe})", seconds(r.backlog_drain_s)),
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


def result_facts(result: RunResult) -> list[tuple[str, str]]:
    facts = recovery_facts(result.recovery, bool(result.injection_windows), result.delivery)
    facts += [
        (label, measurement_text(v, is_rate(label, v))) for label, v in result.measurements.items()
    ]
    facts.append(("heal", heal_text(result)))
    if result.versions:
        facts.append(("versions", ", ".join(result.versions.values())))
    if result.runbook:
        facts.append(("runbook", result.runbook))
    return facts


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


def invariant_measure(r: InvariantResult) -> str:
    measured = "unmeasured" if r.measured is None else f"{r.measured:g}{r.unit and ' ' + r.unit}"
    limit = "" if r.limit is None else f" (limit {r.comparison} {r.limit:g})"
    return measured + limit


def note_lines(result: RunResult) -> list[str]:
    """The operator's notes, each with the clock time it was typed and how far into the run."""
    return [
        f"{dt.datetime.fromtimestamp(n.t).strftime('%H:%M:%S')} "
        f"(+{max(0.0, n.t - result.started_at):.1f} s) {n.text}"
        for n in result.notes
    ]


def markdown_report(result: RunResult) -> str:
    """A report a person can paste into a game-day write-up or a ticket."""
    when = dt.datetime.fromtimestamp(result.started_at).strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        f"# chaos-tui: {result.scenario}",
        "",
        f"**Verdict: {result.outcome.upper()}**" + (f": {result.reason}" if result.reason else ""),
        "",
        f"- Target: {result.target}",
        f"- Started: {when}, ran {result.duration_s:.1f} s (run {result.run_id})",
        f"- Hypothesis: {result.hypothesis}",
        "",
    ]
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
    lines += ["", "## Invariants", "", "| | Invariant | Measured | Detail |", "|---|---|---|---|"]
    for inv in result.invariants:
        mark = "pass" if inv.passed else "FAIL"
        lines.append(
            f"| {mark} | {inv.name}: {inv.description} | {invariant_measure(inv)} | {inv.detail} |"
        )
    if not result.invariants:
        lines.append("| | (none checked) | | |")
    lines += ["", "## Faults", ""]
    for w in result.injection_windows:
        held = f"live {w.healed_at - w.injected_at:.3g} s" if w.healed_at else "NEVER HEALED"
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
