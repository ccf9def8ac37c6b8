"""The top line of every screen: the tool, the target, and whether chaos may run there."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:  # for the type only: the app imports this widget
    from chaos_tui.app import ChaosApp


class TitleBar(Static):
    DEFAULT_CSS = """
    TitleBar { height: 1; background: $panel; }
    """

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        line = Text(" ⚡ chaos-tui ", style="bold")
        line.append_text(cast("ChaosApp", self.app).safety_text())
        self.update(line)
