"""The faults live right now: each with what it does (a line per worker injector, with its
scope) and the time left until the run heals it and until its lease's TTL runs out.

Built from the LiveRun alone (the run's events), never by asking the agent from here: what the
run did is what it says. Hidden while nothing is live.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from chaos_tui.core.model import InjectionWindow
from chaos_tui.live import LiveRun
from chaos_tui.widgets.painted import Painted


def clock(seconds: float | None) -> Text:
    """m:ss to go; "due" once past (a heal under way, or one that failed); "…" unknown."""
    if seconds is None:
        return Text("…", style="dim")
    if seconds <= 0:
        return Text("due", style="bold yellow")
    whole = int(seconds + 0.999)  # 0.2 s left still reads 0:01, never 0:00 before it is due
    return Text(f"{whole // 60}:{whole % 60:02d}")


def fault_rows(live: LiveRun) -> list[tuple[Text, Text, Text]]:
    """(what, heal in, TTL in) per line: the fault's name, then what it does, indented."""
    rows: list[tuple[Text, Text, Text]] = []
    for w in live.live_faults:
        left = live.countdown(w)
        rows.append((Text(w.fault, style="bold"), clock(left.heal_in_s), clock(left.expires_in_s)))
        rows += [(Text(f"  {line}", style="dim"), Text(""), Text("")) for line in doings(w)]
    if live.injecting and not live.live_faults:
        applying = Text("injecting", style="yellow")
        rows.append((Text(live.injecting, style="bold"), applying, Text("")))
    return rows


def doings(window: InjectionWindow) -> list[str]:
    return list(window.parts) or [window.description]


class LiveFaultsPanel(Painted):
    """Repainted by the run screen on every redraw; its height follows its line count, so a
    layout pass happens only when a fault comes or goes."""

    DEFAULT_CSS = """
    LiveFaultsPanel { border: round $error; padding: 0 1; height: 3; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "live faults"
        self.border_subtitle = "heal in · TTL in"

    def show(self, live: LiveRun) -> None:
        rows = fault_rows(live) if live.chaos_live else []
        if self.display != bool(rows):
            self.display = bool(rows)
        if not rows:
            return
        if self.styles.height is None or self.styles.height.value != len(rows) + 2:
            self.styles.height = len(rows) + 2
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        table.add_column(justify="right", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        # The clocks tick in whole seconds: most redraws change nothing, and paint nothing.
        self.paint(table, key=tuple(rows))
