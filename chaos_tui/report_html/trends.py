"""A scenario's history as a page: trend charts of its recovery figures over its past runs
(a pass or not on each, a regression ringed where the run's comparison flagged one) and a
table of the runs, newest first.

Read straight from the saved results (core/history.py finds them, newest first), the last
MAX_RUNS of them; a file that cannot be read is a row that says so. Each file is parsed as
plain JSON and only the figures shown are taken, so a few hundred runs read in a blink.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from chaos_tui.core.history import result_files, started_from_name
from chaos_tui.core.params import changed_text
from chaos_tui.core.report import duration_text, percent
from chaos_tui.report_html.page import card, document, table, when_text
from chaos_tui.report_html.svg import TrendPoint, trend_chart

MAX_RUNS = 200  # the page stays readable, and quick to write, however long the history


@dataclass(frozen=True)
class RunRow:
    """One past run as the history page shows it; `problem` says why it could not be read."""

    path: Path
    started_at: float
    run_id: str = ""
    target: str = ""
    outcome: str = ""
    duration_s: float | None = None
    figures: dict[str, float | None] = field(default_factory=dict)  # by TRENDS key
    changed: str = ""  # the parameters it changed from the defaults
    regressions: list[str] = field(default_factory=list)  # metric names its comparison flagged
    regression_labels: list[str] = field(default_factory=list)
    never_failed: bool = False  # its recovery probe passed all through the fault
    problem: str | None = None


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_row(path: Path) -> RunRow:
    """The row of one result file; every field is checked, as another version may lack it."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not JSON"
        return RunRow(path, started_from_name(path), problem=f"unreadable: {why}")
    data = _dict(data)
    started, outcome = _number(data.get("started_at")), data.get("outcome")
    if started is None or not isinstance(outcome, str):
        return RunRow(path, started_from_name(path), problem="unreadable: not a run result")
    recovery = _dict(data.get("recovery"))
    figures = {key: _number(recovery.get(key)) for key in RECOVERY_KEYS}
    figures["duration_s"] = _number(data.get("duration_s"))
    # As core/report.py's never_failed: nothing detected, no outage, "recovered" in 0 s. Not
    # a 0 ms recovery to plot: the table says "never failed", the chart leaves it out.
    never = (
        figures["time_to_detect_s"] is None
        and figures["outage_s"] is None
        and figures["time_to_recover_s"] == 0.0
    )
    if never:
        figures["time_to_recover_s"] = None
    metrics = [m for m in _dict(data.get("comparison")).get("metrics", []) if isinstance(m, dict)]
    flagged = [m for m in metrics if m.get("regressed") is True]
    params, defaults = _dict(data.get("parameters")), _dict(data.get("parameter_defaults"))
    changed = changed_text(params, defaults) if defaults else ""
    return RunRow(
        path,
        started,
        run_id=str(data.get("run_id", "")),
        target=str(data.get("target", "")),
        outcome=outcome,
        duration_s=figures["duration_s"],
        figures=figures,
        changed="" if changed == "all at their defaults" else changed,
        regressions=[str(m.get("name", "")) for m in flagged],
        regression_labels=[str(m.get("label") or m.get("name", "")) for m in flagged],
        never_failed=never,
    )


def history_rows(
    results_dir: Path, scenario: str, target: str | None = None, limit: int = MAX_RUNS
) -> list[RunRow]:
    """The scenario's last `limit` runs (on `target` only, when given), newest first."""
    rows: list[RunRow] = []
    for path in result_files(results_dir, scenario):
        row = read_row(path)
        if target is not None and row.problem is None and row.target != target:
            continue
        rows.append(row)
        if len(rows) >= limit:
            break
    return rows


RECOVERY_KEYS = ("time_to_detect_s", "time_to_recover_s", "outage_s", "error_rate_during_fault")


@dataclass(frozen=True)
class Trend:
    key: str
    title: str
    fmt: Callable[[float], str]


TRENDS = [
    Trend("time_to_detect_s", "time to detect", duration_text),
    Trend("time_to_recover_s", "time to recover", duration_text),
    Trend("outage_s", "outage", duration_text),
    Trend("error_rate_during_fault", "error rate during the fault", percent),
    Trend("duration_s", "run duration", duration_text),
]


def flagged_for(row: RunRow, key: str) -> bool:
    """Whether the run's comparison flagged this figure: its metric has the figure's name, or
    the same name for one probe ("outage_s" and "outage_s:postgres" alike)."""
    stem = key.removesuffix("_s")
    return any(name == key or name.startswith(stem) for name in row.regressions)


def _table(rows: list[RunRow]) -> str:
    body = []
    for r in rows:
        if r.problem is not None:
            body.append(
                [escape(when_text(r.started_at)), escape(r.path.name), "", "", ""]
                + [f'<span class="muted">{escape(r.problem)}</span>']
                + [""] * 4
            )
            continue
        cls = "pass" if r.outcome == "pass" else "fail"
        verdict = f'<span class="mark {cls}">{escape(r.outcome.upper())}</span>'
        flags = "".join(
            f'<span class="pill fail">{escape(label)}</span>' for label in r.regression_labels
        )
        f = r.figures

        def took(key: str, f=f, never=r.never_failed) -> str:
            text = "never failed" if never else duration_text(f.get(key))
            return f'<span class="num">{escape(text)}</span>'

        changed = (
            f'<span class="changed">{escape(r.changed)}</span>'
            if r.changed
            else '<span class="muted">defaults</span>'
        )
        body.append(
            [
                f'<span class="num">{escape(when_text(r.started_at))}</span>',
                f'<span class="mono">{escape(r.run_id)}</span>',
                escape(r.target),
                verdict + flags,
                f'<span class="num">{escape(duration_text(r.duration_s))}</span>',
                took("time_to_detect_s"),
                took("time_to_recover_s"),
                took("outage_s"),
                f'<span class="num">{escape(percent(f.get("error_rate_during_fault")))}</span>',
                changed,
            ]
        )
    head = ["started", "run", "target", "verdict", "duration", "detect", "recover", "outage"]
    return table(head + ["error rate", "parameters"], body)


def trend_legend(other_parameters: bool) -> str:
    other = (
        '<i class="other"></i>other parameters (a dashed line of their own)'
        if other_parameters
        else ""
    )
    return (
        '<p class="legend"><i class="pass-dot"></i>pass<i class="fail-dot"></i>not a pass'
        f'{other}<i class="ring"></i>flagged as a regression'
        '<i class="line"></i>trend, oldest on the left</p>'
    )


def history_html(scenario: str, rows: list[RunRow], target: str | None = None) -> str:
    """The page: a headline, the trend charts (oldest run left), the table (newest first)."""
    readable = [r for r in rows if r.problem is None]
    oldest_first = list(reversed(readable))
    passed = sum(r.outcome == "pass" for r in readable)
    flagged = sum(bool(r.regressions) for r in readable)
    where = f" on {target}" if target else ""
    span = (
        f"from {when_text(oldest_first[0].started_at)} to {when_text(oldest_first[-1].started_at)}"
        if readable
        else "no readable run"
    )
    summary = (
        f"<p><b>{len(readable)}</b> run{'s' * (len(readable) != 1)}{escape(where)}, "
        f"<b class='ok'>{passed}</b> passed, "
        f"<b class='{'bad' if len(readable) - passed else ''}'>{len(readable) - passed}</b> "
        f"did not, <b>{flagged}</b> flagged as a regression; {escape(span)}"
        + (f" (the last {MAX_RUNS})" if len(rows) >= MAX_RUNS else "")
        + "</p>"
    )
    head = (
        f'<header class="card"><div class="headline"><h1>{escape(scenario)}: history</h1>'
        f"{summary}</div></header>"
    )
    charts = []
    for trend in TRENDS:
        points = [
            TrendPoint(
                label=f"{r.run_id} {when_text(r.started_at)}",
                value=r.figures.get(trend.key),
                passed=r.outcome == "pass",
                regressed=flagged_for(r, trend.key),
                params=r.changed,
            )
            for r in oldest_first
        ]
        if not any(p.value is not None for p in points):
            continue  # a figure no run has (a scenario with no recovery probe)
        svg = trend_chart(points, trend.fmt, f"{scenario} {trend.title} per run")
        charts.append(
            f'<div class="chart-card" data-trend="{trend.key}"><h3>{trend.title}</h3>{svg}</div>'
        )
    grid = f'<div class="grid2">{"".join(charts)}</div>'
    legend = trend_legend(any(r.changed for r in readable))
    trends = card("Trends", legend + grid) if charts else ""
    runs = card("Runs, newest first", _table(rows) if rows else '<p class="muted">none</p>')
    return document(f"chaos-tui: {scenario} history{where}", head + trends + runs)
