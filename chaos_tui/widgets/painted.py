"""A widget that shows one renderable and repaints it without a layout pass, and only when
what it shows changed.

Static.update() asks for a new layout every time, which is what costs most when a screen
redraws a few times a second. Painted widgets get their size from CSS, so a repaint is
just a repaint. A repaint is skipped when the caller's `key` (by default the renderable
itself when it is a Text, whose equality is its characters and styles) equals the one
painted last: an unchanged panel costs the compositor nothing.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

_NEVER = object()  # a key that equals nothing: the renderable cannot say if it changed


class Painted(Widget):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._content: RenderableType = ""
        self._key: object = _NEVER
        self.repaints = 0  # how many times it was really repainted (tests, the soak)

    @property
    def content(self) -> RenderableType:
        return self._content

    def paint(self, renderable: RenderableType, key: object = None) -> None:
        """Show `renderable`, unless `key` says it is what is shown already."""
        if key is None:
            key = renderable.copy() if isinstance(renderable, Text) else _NEVER
        if key is not _NEVER and key == self._key:
            return
        self._content = renderable
        self._key = key
        self.repaints += 1
        self.refresh()

    def render(self) -> RenderableType:
        return self._content
