"""A suite's report as Rich renderables: the table of its runs, each repeated scenario's trend,
its verdict. The headless face prints them; the console shows them. No Textual here."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from chaos_tui.core.report import duration_text
from chaos_tui.core.suite import SuiteReport, SuiteRun
from chaos_tui.suite.model import SuiteFile

HEADLINE_FIGURES = ("time_to_recover_s", "backlog_peak", "backlog_drain_s", "dlq_growth")
COLOURS = {"pass": "green", "fail": "red", "interrupted": "yellow", "aborted": "yellow"}


COLUMNS = ("#", "scenario", "verdict", "recovered in", "duration", "run")


def run_cells(run: SuiteRun, reason: bool = True) -> tuple[str, str, Text, str, str, str]:
    """A run's row: verdict (a failed heal, regressions and, with `reason`, why it did not
    pass beside it), time to recover, duration, run id."""
    colour = COLOURS.get(run.outcome, "red")
    verdict = Text(run.outcome.upper(), style=f"bold {colour}")
    if not run.heal_ok:
        verdict.append(" heal FAILED", style="bold red")
    if run.regressions:
        verdict.append(f" (regressed: {', '.join(run.regressions)})")
    if reason and run.reason and run.outcome != "pass":
        verdict.append(f"  {run.reason}", style="dim")
    return (
        str(run.index),
        run.scenario,
        verdict,
        recovered_text(run),
        duration_text(run.duration_s),
        run.run_id or "-",
    )


def describe(spec: SuiteFile) -> str:
    """`opa_restart → postgres_restart_outbox, 3 passes, 30 s between runs`."""
    words = " → ".join(step.scenario for step in spec.runs)
    if spec.repeat and spec.repeat > 1:
        words += f", {spec.repeat} passes"
    if spec.for_s:
        words += f", for {duration_text(spec.for_s)}"
    if spec.every:
        words += f", one every {duration_text(spec.every)}"
    elif spec.pause.between[1] > 0:
        low, high = spec.pause.between
        gap = duration_text(low) if low == high else f"{duration_text(low)}-{duration_text(high)}"
        words += f", {gap} between runs"
    if spec.on_failure == "stop":
        words += ", stops at the first run that does not pass"
    return words


def suite_name(report: SuiteReport) -> str:
    """`suite platform`; a list (`--scenario a,b`, the console's queue) says its scenarios."""
    if report.source == "--scenario":
        return f"suite {report.suite} ({report.description})"
    return f"suite {report.suite}"


def recovered_text(run: SuiteRun) -> str:
    """Time to recover; `none` when the recovery probe never failed (the timeline's 0 s is
    not a recovery, as report.never_failed says), `-` when it was not measured."""
    recovered = run.metrics.get("time_to_recover_s")
    if recovered is None:
        return "-"
    if recovered.value == 0 and not {"time_to_detect_s", "outage_s"} & run.metrics.keys():
        return "none"
    return duration_text(recovered.value)


def suite_table(report: SuiteReport) -> Table:
    table = Table(title=suite_name(report), title_justify="left", show_edge=False)
    for name in COLUMNS:
        right = name in ("#", "recovered in", "duration")
        table.add_column(name, justify="right" if right else "left", no_wrap=name != "verdict")
    for run in report.runs:
        table.add_row(*run_cells(run, reason=False))  # said whole below it (why_lines)
    return table


def why_lines(report: SuiteReport) -> list[Text]:
    """`run 1 postgres_restart_outbox: TargetError: ...`: why each run that did not pass,
    whole, one line each (a table cell would cut it or wrap it over many rows)."""
    return [
        Text(f"run {run.index} {run.scenario}: {run.reason}", style="dim")
        for run in report.runs
        if run.reason and run.outcome != "pass"
    ]


def drift_lines(report: SuiteReport) -> list[Text]:
    """`trend opa_restart time to recover: 1.10, 1.32, 1.95 s (+0.43 s/run, worsening)`: the
    headline figures always, the others only when they drift."""
    out = []
    for d in report.drift:
        if d.name not in HEADLINE_FIGURES and not d.worsening:
            continue
        unit = f" {d.unit}" if d.unit and d.unit != "%" else d.unit
        values = ", ".join(f"{v:.3g}" for v in d.values)
        sign = "+" if d.slope_per_run >= 0 else ""
        which = d.scenario + _set_apart(d, report)
        line = Text(f"trend {which} {d.label}: {values}{unit} ")
        line.append(f"({sign}{d.slope_per_run:.3g}{unit}/run, ")
        line.append("worsening", style="bold red") if d.worsening else line.append("steady")
        line.append(")")
        out.append(line)
    return out


def verdict_line(report: SuiteReport) -> Text:
    colour = COLOURS.get(report.outcome, "red")
    passed = sum(r.exit_code == 0 for r in report.runs)  # a regression failed with the flag
    line = Text(f"{suite_name(report)}: {report.outcome.upper()}", style=f"bold {colour}")
    line.append(
        f" {passed} of {len(report.runs)} runs passed in {duration_text(report.duration_s)}"
        f" (exit {report.exit_code})"
    )
    if report.stopped:
        line.append(f"; ended early: {report.stopped}")
    return line


def _set_apart(trend, report: SuiteReport) -> str:
    """` (hold_s=3)`: what sets this trend's runs apart from the same scenario's other runs
    with other parameters (a trend is per parameter set), or nothing when it has one set."""
    others = [
        d.parameters
        for d in report.drift
        if d.scenario == trend.scenario and d.parameters != trend.parameters
    ]
    if not others:
        return ""
    differ = sorted(
        key for key, value in trend.parameters.items() if any(o.get(key) != value for o in others)
    )
    return " (" + ", ".join(f"{key}={trend.parameters[key]}" for key in differ) + ")"
