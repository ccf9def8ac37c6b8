"""The run's event log: one line per event in the order the events happened, each cut to the
panel's width, and the whole of the highlighted one on demand.

It mirrors a LiveRun's `OrderedLog`: new lines at the end are appended; a line that went in
before the end (a fault's window arrives after the failures it caused) redraws the list,
which is rare. While the highlight sits on the last line (or nowhere) the list follows the
newest line; moved up, it stays where the reader put it.

Keys (the list has focus: Tab or a click): up/down or k/j move, g/G or Home/End jump, Enter
shows the highlighted line in full below the list, Escape hides it.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from chaos_tui.narration import LogLine, OrderedLog


class EventLines(OptionList):
    """One line per event: long ones end in an ellipsis instead of wrapping."""

    DEFAULT_CSS = """
    EventLines { height: 1fr; max-height: 100%; text-wrap: nowrap; text-overflow: ellipsis; }
    """
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "first", "First", show=False),
        Binding("G", "last", "Last", show=False),
        Binding("escape", "hide_detail", "Hide detail", show=False),
    ]

    def action_hide_detail(self) -> None:
        self.post_message(EventLog.HideDetail())


class EventLog(Vertical):
    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    EventLog > #event-detail {
        height: auto; max-height: 50%; display: none; padding: 0 1;
        border-top: solid $panel-lighten-2;
    }
    EventLog.-detail > #event-detail { display: block; }
    """

    class HideDetail(Message):
        """Escape in the list: close the full-text line."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown_total = 0  # the log's total as of the last sync
        self._lines: list[LogLine] = []  # what the list holds, in its order
        self._detail = ""  # the full text shown below the list, plain

    def compose(self) -> ComposeResult:
        yield EventLines(id="event-lines", compact=True)
        yield Static(id="event-detail")

    @property
    def lines(self) -> list[LogLine]:
        return list(self._lines)

    def show(self, log: OrderedLog) -> None:
        """Bring the list up to date with the log; a no-op when nothing was added."""
        if log.total == self._shown_total:
            return
        option_list = self.query_one(EventLines)
        count = option_list.option_count
        following = option_list.highlighted is None or option_list.highlighted >= count - 1
        if log.reordered_at > self._shown_total or count == 0:
            self._lines = list(log)
            keep = option_list.highlighted
            option_list.set_options([_option(line) for line in self._lines])
            if keep is not None and not following:
                option_list.highlighted = min(keep, len(self._lines) - 1)
        else:
            new = list(log)[len(log) - min(log.total - self._shown_total, len(log)) :]
            self._lines.extend(new)
            option_list.add_options([_option(line) for line in new])
            while len(self._lines) > len(log):  # the oldest fell off the log's end
                self._lines.pop(0)
                option_list.remove_option_at_index(0)
        self._shown_total = log.total
        if following:
            if option_list.highlighted is not None:
                option_list.highlighted = len(self._lines) - 1
            option_list.scroll_end(animate=False)
        self._show_detail()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.set_class(not self.has_class("-detail"), "-detail")
        self._show_detail()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._show_detail()

    def on_event_log_hide_detail(self, event: HideDetail) -> None:
        self.remove_class("-detail")

    def _show_detail(self) -> None:
        if not self.has_class("-detail"):
            return
        index = self.query_one(EventLines).highlighted
        text = "" if index is None or index >= len(self._lines) else self._lines[index].stamped()
        full = Text.from_markup(text)
        self._detail = full.plain
        self.query_one("#event-detail", Static).update(full)

    @property
    def detail(self) -> str:
        """The full-text line as shown (empty while hidden)."""
        return self._detail if self.has_class("-detail") else ""


def _option(line: LogLine) -> Option:
    return Option(Content.from_rich_text(Text.from_markup(line.stamped())))
