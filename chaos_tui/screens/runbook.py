"""A scenario's runbook inside the console: its Markdown, from the installed package
(chaos_tui/runbooks), in a scroll that answers to the usual keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Markdown, Static

from chaos_tui.screens.keys import KeyedScroll
from chaos_tui.widgets.title_bar import TitleBar


class RunbookScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, ref: str, text: str) -> None:
        super().__init__()
        self.ref = ref  # where it comes from, as the scenario names it
        self.text = text

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Static(f" runbook {self.ref}  (esc: back)", id="runbook-title")
        with KeyedScroll(id="runbook-scroll"):  # j/k, g/G beside the arrows and pages
            yield Markdown(self.text, id="runbook")
        yield Footer()

    def on_mount(self) -> None:
        # Focused, so up/down, PageUp/PageDown, Home/End scroll it as well as j/k.
        self.query_one("#runbook-scroll", KeyedScroll).focus()
