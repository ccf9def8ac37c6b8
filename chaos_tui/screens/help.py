"""The `?` overlay: every key the screen it was opened from answers to, and what it does.

The list is read from the bindings themselves (the screen's, its widgets' and the app's), so it
cannot drift from what the keys really do: the arrows and PageUp/PageDown that Textual binds on
a table or a scrolling text are listed with the j/k and g/G this console adds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.table import Table
from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from chaos_tui.screens.keys import KeyedScroll

# Widgets whose keys are not worth listing: typing in a box is typing; the footer never has
# the focus.
SILENT = (Input, Footer)
# Textual's horizontal scrolling keys: nothing in this console scrolls sideways on purpose.
SIDEWAYS = frozenset({"scroll_left", "scroll_right", "page_left", "page_right"})


@dataclass(frozen=True)
class KeyRow:
    where: str  # "screen", "app" or the widget the keys act on
    keys: str  # every key of one action, as the footer shows them ("↓, j")
    does: str


def where_of(node: DOMNode) -> str:
    """A name for the part of the screen these keys act on."""
    if isinstance(node, Screen):
        return "screen"
    if node is node.app:
        return "everywhere"
    title = getattr(node, "border_title", None)
    return str(title) if title else (node.id or type(node).__name__).replace("-", " ")


def key_name(screen: Screen, binding: Binding) -> str:
    """The key as the footer writes it, but the key itself: a footer's "1-3" is "1" here."""
    return screen.app.get_key_display(replace(binding, key_display=None))


def in_force(node: DOMNode, binding: Binding) -> bool:
    """False for a binding its node turns off now (the run screen's tabs in its wide layout)."""
    _, name, parameters = parse(binding.action)
    return node.check_action(name, parameters) is not False


def binding_rows(screen: Screen) -> list[KeyRow]:
    """Every binding in force on `screen`: its own, each widget's, then the app's; one row per
    action, its keys joined. A key bound twice shows where it is answered first: the app's
    priority bindings before anything (ctrl+c aborts or quits; a screen's "copy" under it
    never runs), then the widget, the screen, the app."""
    app = screen.app
    widgets = [
        node for node in screen.walk_children(with_self=False) if not isinstance(node, SILENT)
    ]
    passes: list[tuple[DOMNode, bool]] = [(app, True)]
    passes += [(node, False) for node in [*widgets, screen, app]]
    rows: list[KeyRow] = []
    claimed: set[str] = set()
    for node, priority_only in passes:
        actions: dict[str, tuple[list[str], Binding]] = {}
        answered: set[str] = set()
        for key, bindings in node._bindings.key_to_bindings.items():
            if key in claimed:
                continue
            for binding in bindings:
                if priority_only and not binding.priority:
                    continue
                answered.add(key)
                if binding.system or binding.action in SIDEWAYS or not in_force(node, binding):
                    continue
                keys, _ = actions.setdefault(binding.action, ([], binding))
                shown = key_name(screen, binding)
                if shown not in keys:
                    keys.append(shown)
        claimed |= answered if priority_only else set(node._bindings.key_to_bindings)
        for action, (keys, binding) in actions.items():
            does = binding.description or action.replace("_", " ")
            rows.append(KeyRow(where_of(node), ", ".join(keys), does))
    return rows


def help_table(rows: list[KeyRow], screen_name: str) -> Table:
    table = Table(title=f"keys on the {screen_name} screen", expand=True, show_edge=False)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does")
    table.add_column("where", style="dim")
    for row in rows:
        table.add_row(row.keys, row.does, row.where)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]
    AUTO_FOCUS = "#help-scroll"

    def __init__(self, shown_on: Screen) -> None:
        super().__init__()
        self.rows = binding_rows(shown_on)
        self.screen_name = type(shown_on).__name__.removesuffix("Screen").lower() or "this"

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            with KeyedScroll(id="help-scroll"):
                yield Static(help_table(self.rows, self.screen_name), id="help-keys")
            yield Static("esc, ? or q closes; ctrl+p opens the command palette", classes="dim")

    def action_close(self) -> None:
        self.dismiss(None)
