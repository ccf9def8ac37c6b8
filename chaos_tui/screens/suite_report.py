"""A suite's end: a row per run (verdict, time to recover, duration, run id), each repeated
scenario's trend, the suite's verdict and where its JSON was saved. Enter opens a run's
report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from chaos_tui.core.suite import SuiteReport
from chaos_tui.screens.keys import KeyedTable
from chaos_tui.suite_view import COLUMNS, drift_lines, run_cells, verdict_line
from chaos_tui.widgets.title_bar import TitleBar

if TYPE_CHECKING:  # for the type only: the app imports this screen
    from chaos_tui.app import ChaosApp


class SuiteReportScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open run's report"),
        Binding("escape", "app.back_to_picker", "Back"),
    ]

    def __init__(self, report: SuiteReport, saved: Path | None) -> None:
        super().__init__()
        self.report = report
        self.saved = saved

    @property
    def chaos(self) -> ChaosApp:
        return cast("ChaosApp", self.app)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Static(id="suite-title")
        yield KeyedTable(id="suite-runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="suite-summary")
        yield Footer()

    def on_mount(self) -> None:
        report = self.report
        title = Text(f" suite {report.suite}", style="bold")
        if report.description:
            title.append(f"  {report.description}", style="dim")
        self.query_one("#suite-title", Static).update(title)
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        for run in report.runs:
            table.add_row(*run_cells(run), key=run.saved or f"unsaved-{run.index}")
        lines: list[Text] = [*drift_lines(report), verdict_line(report)]
        if self.saved is not None:
            lines.append(Text(f"suite result saved to {self.saved}", style="dim"))
        self.query_one("#suite-summary", Static).update(Group(*lines))
        table.focus()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self._open(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.row_key.value)

    def _open(self, key: str | None) -> None:
        if key is None or key.startswith("unsaved-"):
            self.notify("that run has no saved result", severity="warning")
            return
        self.chaos.open_past_report(Path(key))
