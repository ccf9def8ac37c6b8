"""The verdict when a run ends: outcome, recovery metrics, invariants, heal; JSON and
Markdown export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from chaos_tui.core.journal import result_json, write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.report import (
    impact_facts,
    invariant_measure,
    markdown_report,
    result_facts,
)
from chaos_tui.screens.keys import KeyedScroll
from chaos_tui.widgets.title_bar import TitleBar

OUTCOME_STYLE = {
    "pass": "bold white on dark_green",
    "fail": "bold white on red3",
    "interrupted": "bold black on yellow",
}


def report_body(result: RunResult) -> Group:
    verdict = Text(
        f"  {result.outcome.upper()}  ",
        style=OUTCOME_STYLE.get(result.outcome, "bold white on red3"),
    )
    verdict.append(
        f"  {result.scenario} on {result.target}, {result.duration_s:.1f}s", style="bold"
    )
    parts: list = [verdict]
    if result.reason:
        parts.append(Text(result.reason, style="yellow"))
    parts += [Text(result.hypothesis, style="dim"), Text("")]
    impact = impact_facts(result)
    if impact:  # a job queue's DLQ impact and drain time come first, where the eye lands
        headline = Table(
            title="impact", title_justify="left", show_header=False, expand=True, show_edge=False
        )
        headline.add_column(style="bold")
        headline.add_column()
        for label, value in impact:
            headline.add_row(label, Text(value, style="bold"))
        parts += [headline, Text("")]

    facts = Table(
        title="recovery", title_justify="left", show_header=False, expand=True, show_edge=False
    )
    facts.add_column(style="dim")
    facts.add_column()
    for label, value in result_facts(result):
        facts.add_row(label, Text(value))
    parts += [facts, Text("")]

    checks = Table(title="invariants", title_justify="left", expand=True, show_edge=False)
    checks.add_column("", width=2)
    checks.add_column("invariant")
    checks.add_column("measured")
    checks.add_column("detail", style="dim")
    for inv in result.invariants:
        mark = Text("✔", style="bold green") if inv.passed else Text("✘", style="bold red")
        checks.add_row(mark, Text(inv.name), invariant_measure(inv), Text(inv.detail))
    if not result.invariants:
        checks.add_row("", "none checked", "", "")
    parts += [checks, Text("")]

    for w in result.injection_windows:
        live_for = f"{w.healed_at - w.injected_at:.1f}s" if w.healed_at else "never healed"
        parts.append(Text(f"fault {w.fault}: {w.description} (live {live_for})"))
        parts += [Text(f"    {part}", style="dim") for part in w.parts]
    return Group(*parts)


def export_name(result: RunResult, suffix: str) -> str:
    stamp = dt.datetime.fromtimestamp(result.started_at).strftime("%Y%m%d-%H%M%S")
    return f"chaos-{result.scenario}-{stamp}-{result.run_id}.{suffix}"


class ReportScreen(Screen):
    # No single letter writes a file here: j/k scroll (keys.py); exports are action_export.
    BINDINGS = [
        Binding("escape", "app.back_to_picker", "Scenarios"),
    ]
    AUTO_FOCUS = "#report-scroll"  # the keys scroll the report from the start

    def __init__(self, result: RunResult, export_dir: Path) -> None:
        super().__init__()
        self.result = result
        self.export_dir = export_dir

    def compose(self) -> ComposeResult:
        yield TitleBar()
        with KeyedScroll(id="report-scroll"):
            yield Static(report_body(self.result), id="report")
        yield Footer()

    def action_export(self, kind: str) -> None:
        path = self.export_dir / export_name(self.result, kind)
        text = result_json(self.result) if kind == "json" else markdown_report(self.result)
        try:
            write_atomic(path, text)
        except OSError as exc:
            self.notify(f"could not write {path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"written {path}", title="exported")
