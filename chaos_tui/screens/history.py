"""Every saved run of one scenario, newest first: when, verdict, duration, time to detect and
to recover, outage, the parameters that differed from the defaults, what regressed against
the baseline, and notes. Enter opens
that run's report.

The rows come from the file names at once; their numbers follow from a thread, read from the
results index (core/results_index.py) and shown a batch at a time, so thousands of results
list without a pause.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from chaos_tui.core.history import (
    PastRun,
    Query,
    list_runs,
    result_files,
    started_from_name,
    summarize,
)
from chaos_tui.core.params import changed_parameters, value_text
from chaos_tui.core.report import metric_name_text, seconds
from chaos_tui.screens.keys import KeyedTable
from chaos_tui.widgets.title_bar import TitleBar

if TYPE_CHECKING:  # for the type only: the app imports this screen
    from chaos_tui.app import ChaosApp

VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "interrupted": "yellow"}
BATCH = 25  # rows summarised per hop back to the screen
COLUMNS = (
    "when",
    "verdict",
    "duration",
    "detect",
    "recover",
    "outage",
    "parameters",
    "regressed",
    "notes",
)


def row_cells(run: PastRun, defaults: dict[str, Any]) -> tuple[Text | str, ...]:
    when = (
        dt.datetime.fromtimestamp(run.started_at).strftime("%Y-%m-%d %H:%M:%S")
        if run.started_at
        else "?"
    )
    if not run.readable:  # the reason where there is room for it: the parameters' column
        reason = Text(run.problem or "unreadable", style="red")
        return (when, Text("?", style="bold red"), "", "", "", "", reason, "", "")
    outcome = run.outcome or "?"
    changed = changed_parameters(run.parameters, defaults)
    return (
        when,
        Text(outcome.upper(), style=VERDICT_STYLE.get(outcome, "bold red")),
        seconds(run.duration_s),
        seconds(run.time_to_detect_s),
        # Nothing failed, so nothing recovered: not an instant "0 ms" (report.never_failed).
        "none"
        if run.time_to_detect_s is None and run.outage_s is None and run.time_to_recover_s == 0
        else seconds(run.time_to_recover_s),
        seconds(run.outage_s),
        Text(", ".join(f"{k}={value_text(v)}" for k, v in changed.items()) or "defaults"),
        # Against its baseline when saved: the metrics that regressed (core/baseline.py).
        Text(", ".join(metric_name_text(m) for m in run.regressions), style="bold red"),
        str(run.notes) if run.notes else "",
    )


class HistoryScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open report"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, scenario: str, defaults: dict[str, Any]) -> None:
        super().__init__()
        self.scenario = scenario
        self.defaults = defaults  # the scenario's parameters now: a row shows what differed
        self.runs: dict[str, PastRun] = {}  # by path, once summarised

    @property
    def chaos(self) -> ChaosApp:
        return cast("ChaosApp", self.app)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Static(id="history-title")
        yield KeyedTable(id="history", cursor_type="row", zebra_stripes=True)  # j/k, g/G
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        files = result_files(self.chaos.results_dir, self.scenario)
        title = f" {self.scenario}: {len(files)} saved run(s), newest first   enter: open report"
        self.query_one("#history-title", Static).update(Text(title))
        for path in files:  # at once, from the names; the numbers follow
            started = started_from_name(path)
            when = dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S")
            blanks = [""] * (len(COLUMNS) - 2)
            table.add_row(when, Text("…", style="dim"), *blanks, key=str(path))
        table.focus()
        if files:
            self.run_worker(
                lambda: self._read(files), thread=True, group="history", exit_on_error=False
            )

    def _read(self, files: list[Path]) -> None:
        worker = get_current_worker()
        # The rows from the results index in one query; a file it does not have (saved just
        # now, or the index unusable) is read on its own.
        query = Query(scenario=self.scenario)
        indexed = {str(r.path): r for r in list_runs(self.chaos.results_dir, query)}
        for start in range(0, len(files), BATCH):
            if worker.is_cancelled:  # the screen was closed: nobody to show them to
                return
            batch = [indexed.get(str(p)) or summarize(p) for p in files[start : start + BATCH]]
            self.app.call_from_thread(self._fill, batch)

    def _fill(self, batch: list[PastRun]) -> None:
        if not self.is_mounted:
            return
        table = self.query_one(DataTable)
        for run in batch:
            key = str(run.path)
            self.runs[key] = run
            for column, cell in zip(COLUMNS, row_cells(run, self.defaults), strict=True):
                table.update_cell(key, column, cell, update_width=True)

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is not None:
            self.chaos.open_past_report(Path(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.chaos.open_past_report(Path(event.row_key.value))
