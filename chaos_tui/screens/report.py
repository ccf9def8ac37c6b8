"""The verdict when a run ends: outcome, recovery metrics, invariants, heal, the operator's
notes, where the result was saved; and what next: `r` runs it again with the same parameters
(after the typed confirmation), `b` shows the runbook, `H` the scenario's history, `e` then
`j`, `m` or `h` exports it (JSON, Markdown, HTML). No single key writes a file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from chaos_tui.core.journal import result_json, write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.report import (
    comparison_facts,
    duration_text,
    impact_facts,
    invariant_detail,
    invariant_measure,
    markdown_report,
    note_lines,
    parameters_text,
    result_facts,
    slo_cell,
    slo_table,
)
from chaos_tui.report_html import result_html
from chaos_tui.screens.history import HistoryScreen
from chaos_tui.screens.keys import KeyedScroll
from chaos_tui.widgets.title_bar import TitleBar

if TYPE_CHECKING:  # for the type only: the app imports this screen
    from chaos_tui.app import ChaosApp

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
        f"  {result.scenario} on {result.target}, {duration_text(result.duration_s)}",
        style="bold",
    )
    parts: list = [verdict]
    if result.reason:
        parts.append(Text(result.reason, style="yellow"))
    changed = parameters_text(result)
    if changed:  # a run with other parameters than the defaults says so beside its verdict
        parts.append(Text(f"parameters: {changed}", style="bold"))
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
    compared = comparison_facts(result)
    if compared:  # against the last passing runs (or a pinned one): a regression in red
        baseline = Table(
            title="baseline", title_justify="left", show_header=False, expand=True, show_edge=False
        )
        baseline.add_column(style="dim")
        baseline.add_column()
        for label, value in compared:
            bad = label.startswith("REGRESSION")
            baseline.add_row(Text(label, style="bold red" if bad else "dim"), Text(value))
        parts += [baseline, Text("")]

    checks = Table(title="invariants", title_justify="left", expand=True, show_edge=False)
    checks.add_column("", width=2)
    checks.add_column("invariant")
    checks.add_column("measured")
    checks.add_column("detail", style="dim")
    for inv in result.invariants:
        mark = Text("✔", style="bold green") if inv.passed else Text("✘", style="bold red")
        detail = invariant_detail(inv, result.injection_windows)  # "broke at +72.2 ms; ..."
        checks.add_row(mark, Text(inv.name), invariant_measure(inv), Text(detail))
    if not result.invariants:
        checks.add_row("", "none checked", "", "")
    parts += [checks, Text("")]
    if result.slos:  # a scenario file's objectives, per phase (a miss not counted is dim)
        slos = Table(title="SLOs", title_justify="left", expand=True, show_edge=False)
        slos.add_column("objective")
        for phase in ("before", "during", "after"):
            slos.add_column(phase)
        for label, phases in slo_table(result):
            cells = [
                Text(slo_cell(r), style="" if r.passed else "bold red" if r.counts else "yellow")
                if (r := phases.get(phase)) is not None
                else Text("")
                for phase in ("before", "during", "after")
            ]
            slos.add_row(Text(label), *cells)
        parts += [slos, Text("")]

    for w in result.injection_windows:
        live_for = duration_text(w.healed_at - w.injected_at) if w.healed_at else "never healed"
        parts.append(Text(f"fault {w.fault}: {w.description} (live {live_for})"))
        parts += [Text(f"    {part}", style="dim") for part in w.parts]
    if result.notes:
        parts += [Text(""), Text("notes", style="bold")]
        parts += [Text(f"  {line}") for line in note_lines(result)]
    return Group(*parts)


EXPORT_KINDS = {"json": "JSON", "md": "Markdown", "html": "HTML"}
EXPORT_MODE = 0o644  # an export is meant to be shared (a ticket, a write-up), unlike state


def files_text(saved: Path | None, exported: list[Path]) -> Text:
    """Where this result lives on disk: the saved result, then each export made here."""
    text = Text()
    text.append("saved: ", style="dim")
    text.append(str(saved) if saved else "not saved (see the notification)")
    for path in exported:
        text.append("\nexported: ", style="dim")
        text.append(str(path))
    return text


class ExportPrompt(ModalScreen[str | None]):
    """`e` on the report: which format. A second key, so no single letter writes a file."""

    BINDINGS = [
        Binding("j", "pick('json')", "JSON"),
        Binding("m", "pick('md')", "Markdown"),
        Binding("h", "pick('html')", "HTML"),
        Binding("escape", "pick('')", "Cancel"),
    ]

    def __init__(self, where: Path) -> None:
        super().__init__()
        self.where = where

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", justify="right")
        keys.add_column()
        for key, does in (
            ("j", "JSON"),
            ("m", "Markdown"),
            ("h", "HTML, with charts"),
            ("esc", "cancel"),
        ):
            keys.add_row(key, does)
        into = Text(f"into {self.where}", style="dim")
        title = Text("Export the report as", style="bold")
        yield Static(Group(title, keys, into), id="export-prompt")

    def action_pick(self, kind: str) -> None:
        self.dismiss(kind or None)


EXPORTERS = {"json": result_json, "md": markdown_report, "html": result_html}


def export_name(result: RunResult, suffix: str) -> str:
    stamp = dt.datetime.fromtimestamp(result.started_at).strftime("%Y%m%d-%H%M%S")
    return f"chaos-{result.scenario}-{stamp}-{result.run_id}.{suffix}"


class ReportScreen(Screen):
    # No single letter writes a file here: j/k scroll (keys.py); exports are action_export.
    BINDINGS = [
        Binding("r", "app.rerun", "Run again…"),
        Binding("b", "app.runbook", "Runbook"),
        Binding("H", "app.history", "History"),
        Binding("e", "export_menu", "Export…"),
        Binding("escape", "back", "Back"),
    ]
    AUTO_FOCUS = "#report-scroll"  # the keys scroll the report from the start

    def __init__(
        self, result: RunResult, export_dir: Path, *, saved_path: Path | None = None
    ) -> None:
        super().__init__()
        self.result = result
        self.export_dir = export_dir
        self.saved_path = saved_path
        self.exported: list[Path] = []

    def compose(self) -> ComposeResult:
        yield TitleBar()
        with KeyedScroll(id="report-scroll"):
            # The verdict first, where the eye lands; then where the files are, beside the
            # keys that act on them (r, b, e) in the footer.
            yield Static(report_body(self.result), id="report")
            yield Static(files_text(self.saved_path, self.exported), id="report-files")
        yield Footer()

    def action_back(self) -> None:
        """Back to the history this past report was opened from, else to the scenarios."""
        stack = self.app.screen_stack
        if len(stack) > 1 and isinstance(stack[-2], HistoryScreen):
            self.app.pop_screen()
        else:
            cast("ChaosApp", self.app).action_back_to_picker()

    def action_export_menu(self) -> None:
        self.app.push_screen(ExportPrompt(self.export_dir), callback=self._export_picked)

    def _export_picked(self, kind: str | None) -> None:
        if kind:
            self.action_export(kind)

    def action_export(self, kind: str) -> Path | None:
        path = self.export_dir / export_name(self.result, kind)
        text = EXPORTERS[kind](self.result)
        try:
            write_atomic(path, text, mode=EXPORT_MODE)
        except OSError as exc:
            self.notify(f"could not write {path}: {exc.strerror or exc}", severity="error")
            return None
        # The same result to the same name: written again (it holds the same run), said so,
        # and listed once.
        again = path in self.exported
        if not again:
            self.exported.append(path)
        self.query_one("#report-files", Static).update(files_text(self.saved_path, self.exported))
        what = EXPORT_KINDS.get(kind, kind)
        self.notify(f"{what} written {'again ' if again else ''}to {path}", title="exported")
        return path
