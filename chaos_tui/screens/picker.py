"""The first screen: every scenario with its source (built-in or the scenario file it came
from), profile, hypothesis, duration and last verdict. The target is the title bar's: every
row runs there. A list that cannot explain itself (nothing on `local` without a file, a
file's scenarios that run elsewhere) gets a note saying why and what to do."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, cast

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from chaos_tui.catalog import ScenarioEntry, source_label
from chaos_tui.core.report import duration_text, result_facts
from chaos_tui.screens.keys import KeyedTable
from chaos_tui.widgets.title_bar import TitleBar

if TYPE_CHECKING:  # for the type only: the app imports this screen
    from chaos_tui.app import ChaosApp

# What a row needs before its hypothesis: the name, the verdict, the duration, the profile and
# the source (longest values plus the table's cell padding). The hypothesis gets what is left,
# at most HYPOTHESIS_CHARS: the whole text is in the preview below and on the detail screen.
HYPOTHESIS_CHARS = 60
MIN_HYPOTHESIS_CHARS = 12
ROW_BEFORE_HYPOTHESIS = 80
COLUMNS = ("scenario", "last result", "duration", "profile", "source", "hypothesis")
VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "interrupted": "yellow"}


def last_result_cell(entry: ScenarioEntry, *, short: bool = False) -> Text:
    last = entry.last_result
    if last is None:
        return Text("never run", style="dim")
    when = dt.datetime.fromtimestamp(last.started_at).strftime(
        "%m-%d %H:%M" if short else "%Y-%m-%d %H:%M"
    )
    text = Text(f"{when} ")
    text.append(last.outcome.upper(), style=VERDICT_STYLE.get(last.outcome, "bold red"))
    return text


def preview(entry: ScenarioEntry) -> Group:
    """The highlighted scenario: its whole hypothesis and what its last run measured."""
    parts: list = [Text(entry.name, style="bold"), Text(entry.hypothesis)]
    if entry.source != "built-in":
        parts.append(Text(f"from {entry.source}", style="dim"))
    parts.append(Text(""))
    last = entry.last_result
    if last is None:
        parts.append(Text("never run on this machine", style="dim"))
        return Group(*parts)
    head = Text("last run: ")
    head.append_text(last_result_cell(entry))
    if last.reason:
        head.append(f"  {last.reason}", style="yellow")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    for label, value in result_facts(last):
        facts.add_row(label, Text(value))
    return Group(*parts, head, facts)


class PickerScreen(Screen):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("enter", "open", "Details", show=False),
        Binding("H", "history", "History"),
        Binding("space", "queue", "Queue"),
        Binding("R", "app.run_suite", "Run queue…"),
    ]

    @property
    def chaos(self) -> ChaosApp:
        """The app, typed: this screen only ever runs inside ChaosApp."""
        return cast("ChaosApp", self.app)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Input(placeholder="filter scenarios by name or hypothesis", id="filter")
        yield KeyedTable(id="scenarios", cursor_type="row", zebra_stripes=True)
        yield Static(id="picker-note")
        yield Static(id="picker-queue")
        yield Static(id="preview")
        yield Footer()  # the one list of keys: no hint line repeating it

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self.query_one("#filter", Input).display = False
        note = self.query_one("#picker-note", Static)
        note.update(Text(self.chaos.picker_note or ""))  # a file's path is not markup
        note.display = self.chaos.picker_note is not None
        self.show_queue()
        self.refill()
        table.focus()

    def on_screen_resume(self) -> None:
        self.chaos.catalog.refresh_results()
        self.query_one(TitleBar).show()
        self.refill()

    def refill(self) -> None:
        table = self.query_one(DataTable)
        query = self.query_one("#filter", Input).value.strip().lower()
        current = table.cursor_row if table.row_count else 0  # a resize keeps the row chosen
        room = min(HYPOTHESIS_CHARS, self.size.width - ROW_BEFORE_HYPOTHESIS)
        # The columns a choice needs first; the hypothesis only where it has room (80 columns
        # hold the rest, and the preview below shows it whole).
        columns = COLUMNS if room >= MIN_HYPOTHESIS_CHARS else COLUMNS[:-1]
        table.clear(columns=True)
        table.add_columns(*columns)
        for entry in self.chaos.catalog.entries:
            if query and query not in entry.name.lower() and query not in entry.hypothesis.lower():
                continue
            table.add_row(
                self._name_cell(entry.name),
                last_result_cell(entry, short=True),
                f"~{about(entry.duration_s)}",
                entry.profile,
                source_label(entry.source),
                *(
                    [Text(shortened(entry.hypothesis, room))]
                    if len(columns) == len(COLUMNS)
                    else []
                ),
                key=entry.name,
            )
        if table.row_count:
            table.move_cursor(row=min(current, table.row_count - 1))

    def _name_cell(self, name: str) -> Text | str:
        """The name, and its place in the queue (`opa_restart [2]`) when it is in it."""
        queue = self.chaos.queue
        if name not in queue:
            return name
        text = Text(name)
        places = ",".join(str(i + 1) for i, n in enumerate(queue) if n == name)
        text.append(f" [{places}]", style="bold cyan")
        return text

    def on_resize(self) -> None:
        self.refill()  # the hypothesis column takes the width that is left

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.query_one(DataTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def highlighted(self) -> str | None:
        """The scenario under the cursor (every row is added with its name as key)."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_open(self) -> None:
        name = self.highlighted()
        if name is not None:
            self.chaos.open_detail(name)

    def action_queue(self) -> None:
        name = self.highlighted()
        if name is not None:
            self.chaos.toggle_queued(name)
            self.show_queue()
            self.refill()

    def show_queue(self) -> None:
        """The suite the queue makes (or the command line's), under the list: hidden when
        there is none, so the picker looks as before until space is pressed."""
        box = self.query_one("#picker-queue", Static)
        suite = self.chaos.suite
        box.display = suite is not None
        if suite is not None:
            text = Text(f" suite {suite.name}: ", style="bold")
            text.append(suite.describe())
            text.append("   R runs it after its name is typed", style="dim")
            box.update(text)

    def action_history(self) -> None:
        name = self.highlighted()
        if name is not None:
            self.chaos.open_history(name)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        entry = self.chaos.catalog.entry(key) if key is not None else None
        if entry is not None:
            self.query_one("#preview", Static).update(preview(entry))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.chaos.open_detail(event.row_key.value)


def shortened(text: str, room: int) -> str:
    """The text cut at a word to fit `room` columns, with an ellipsis."""
    if len(text) <= room:
        return text
    cut = text[: room - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def about(seconds: float) -> str:
    """A run's expected length, as every duration is shown (core.report.duration_text)."""
    return duration_text(seconds)
