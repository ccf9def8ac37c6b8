"""The keys a terminal user expects wherever a list or text scrolls.

Textual already binds the arrows, Home/End and PageUp/PageDown on its scrolling widgets; these
add `j`/`k` (down/up) and `g`/`G` (top/bottom) as less, vim and most pagers do. A single letter
that moves somewhere never writes a file anywhere (tests/test_tui_keys.py checks every screen).
"""

from __future__ import annotations

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable

SCROLL_KEYS: list[BindingType] = [
    Binding("j", "scroll_down", "Scroll down", show=False),
    Binding("k", "scroll_up", "Scroll up", show=False),
    Binding("g", "scroll_home", "Top", show=False),
    Binding("G", "scroll_end", "Bottom", show=False),
]

LIST_KEYS: list[BindingType] = [
    Binding("j", "cursor_down", "Cursor down", show=False),
    Binding("k", "cursor_up", "Cursor up", show=False),
    Binding("g", "scroll_top", "First row", show=False),
    Binding("G", "scroll_bottom", "Last row", show=False),
    # A row table: Home/End mean the first and last row, not the leftmost and rightmost column.
    Binding("home", "scroll_top", "First row", show=False),
    Binding("end", "scroll_bottom", "Last row", show=False),
]

# The single letters that move: a key that writes something must not be one of them.
MOVING_LETTERS = frozenset(
    b.key for b in SCROLL_KEYS + LIST_KEYS if isinstance(b, Binding) and len(b.key) == 1
)


class KeyedScroll(VerticalScroll):
    """Scrolling text (the report, the help, the details) with the pager keys."""

    BINDINGS = SCROLL_KEYS


class KeyedTable(DataTable):
    """A table whose cursor follows j/k and g/G as well as the arrows."""

    BINDINGS = LIST_KEYS
