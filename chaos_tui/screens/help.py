"""The `?` overlay: every key the console answers to, and what it does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("enter", "picker: open a scenario's details; details: run it (asks for its name)"),
    ("r", "details: run the scenario (asks for its name)"),
    ("/", "picker: filter scenarios"),
    ("esc", "back / cancel / close"),
    ("h", "run: halt - heal every live fault now, inject nothing more"),
    ("ctrl+c", "run: abort - heal, then stop the run; elsewhere: quit"),
    ("q, ctrl+q", "quit; during a run asks, then heals before quitting"),
    ("n", "run: add a timestamped note to the run (timeline, report, exports)"),
    ("e then j / m", "report: export the result as JSON / Markdown (beside the results)"),
    ("r", "report: run the same scenario again with the same parameters (asks its name)"),
    ("b", "report: the scenario's runbook"),
    ("H", "picker, details, report: every saved run of the scenario; enter opens one"),
    ("ctrl+p", "command palette: run, heal, halt, abort"),
    ("?", "this help"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        table = Table(title="chaos-tui keys", expand=True, show_edge=False)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does")
        for key, does in KEYS:
            table.add_row(key, does)
        with Vertical(id="help-box"):
            yield Static(table)
            yield Static("esc closes", classes="dim")

    def action_close(self) -> None:
        self.dismiss(None)
