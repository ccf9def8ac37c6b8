"""`n` during a run: one line of the operator's, stamped when it is entered and kept in the
run's timeline and result (a game day's "paged the DBA", "failover seen on the dashboard")."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

NOTE_MAX_CHARS = 500


class NoteScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="note-box"):
            yield Static("Note for this run (enter: add, esc: cancel)", id="note-title")
            yield Input(
                placeholder="what you saw or did", max_length=NOTE_MAX_CHARS, id="note-input"
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @property
    def typed(self) -> str:
        """What is in the box now, spaces tidied (empty: no note)."""
        return " ".join(self.query_one(Input).value.split())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
