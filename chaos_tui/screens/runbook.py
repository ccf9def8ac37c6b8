"""A scenario's runbook inside the console: its Markdown, from the installed package
(chaos_tui/runbooks), in a scroll that answers to the usual keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown, Static

from chaos_tui.widgets.title_bar import TitleBar


class RunbookScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("j", "scroll('down')", "Down", show=False),
        Binding("k", "scroll('up')", "Up", show=False),
        Binding("g", "scroll('home')", "Top", show=False),
        Binding("G", "scroll('end')", "Bottom", show=False),
        Binding("space", "scroll('page_down')", "Page down", show=False),
    ]

    def __init__(self, ref: str, text: str) -> None:
        super().__init__()
        self.ref = ref  # where it comes from, as the scenario names it
        self.text = text

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Static(f" runbook {self.ref}  (esc: back)", id="runbook-title")
        with VerticalScroll(id="runbook-scroll"):
            yield Markdown(self.text, id="runbook")
        yield Footer()

    def on_mount(self) -> None:
        # Focused, so up/down, PageUp/PageDown, Home/End scroll it as well as j/k.
        self.query_one("#runbook-scroll", VerticalScroll).focus()

    def action_scroll(self, where: str) -> None:
        scroll = self.query_one("#runbook-scroll", VerticalScroll)
        {
            "down": scroll.scroll_down,
            "up": scroll.scroll_up,
            "home": scroll.scroll_home,
            "end": scroll.scroll_end,
            "page_down": scroll.scroll_page_down,
        }[where]()
