"""Textual messages: each run event reaches the console as one of these."""

from __future__ import annotations

from textual.message import Message

from chaos_tui.core.events import RunEvent


class RunEventMessage(Message):
    def __init__(self, event: RunEvent) -> None:
        super().__init__()
        self.event = event
