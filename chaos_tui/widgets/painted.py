"""A widget that shows one renderable and repaints it without a layout pass.

Static.update() asks for a new layout every time, which is what costs most when a screen
redraws a few times a second. Painted widgets get their size from CSS, so a repaint is
just a repaint.
"""

from __future__ import annotations

from rich.console import RenderableType
from textual.widget import Widget


class Painted(Widget):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._content: RenderableType = ""

    @property
    def content(self) -> RenderableType:
        return self._content

    def paint(self, renderable: RenderableType) -> None:
        self._content = renderable
        self.refresh()

    def render(self) -> RenderableType:
        return self._content
