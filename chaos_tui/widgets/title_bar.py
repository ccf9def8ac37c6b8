"""The top line of every screen: the tool, the target, and whether chaos may run there."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class TitleBar(Static):
    DEFAULT_CSS = """
    TitleBar { height: 1; background: $panel; }
    """

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        line = Text(" ⚡ chaos-tui ", style="bold")
        line.append_text(self.app.safety_text())
        self.update(line)
