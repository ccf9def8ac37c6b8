"""Modal guards: type the scenario name to run it; answer yes before quitting a live run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from chaos_tui.core.guard import confirmation_matches
from chaos_tui.core.plan import RunPlan


class ConfirmRunScreen(ModalScreen[bool]):
    """Dismisses with True only when the exact scenario name was typed; esc is False."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, scenario: str, target: str, blast_radius: list[str]) -> None:
        super().__init__()
        self.scenario = scenario
        self.target = target
        self.blast_radius = blast_radius

    @classmethod
    def for_plan(cls, plan: RunPlan) -> ConfirmRunScreen:
        """The question for this plan: the faults it will inject, each with its TTL (the
        plan the run then executes, so what is confirmed is what runs)."""
        radius = [f"{f.name}: {f.description} (TTL {f.ttl_s:g}s)" for f in plan.faults]
        return cls(plan.scenario_name, plan.target, radius)

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(f"Inject faults into [b]{self.target}[/b]?", id="confirm-title")
            yield Static(
                "\n".join(f"• {line}" for line in self.blast_radius) or "• (nothing)",
                id="confirm-radius",
            )
            yield Label(f"Type [b]{self.scenario}[/b] to run it, esc to cancel.")
            box = Input(placeholder="the scenario name, exactly", id="confirm-input")
            box.cursor_blink = False  # steady for screenshots and screen readers alike
            yield box
            yield Label("", id="confirm-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if confirmation_matches(event.value, self.scenario):
            self.dismiss(True)
            return
        typed = event.value.strip() or "nothing"
        self.query_one("#confirm-error", Label).update(
            f"[b red]{typed!r} is not {self.scenario!r}: nothing was injected[/b red]"
        )
        event.input.value = ""

    def action_cancel(self) -> None:
        self.dismiss(False)


class AskScreen(ModalScreen[bool]):
    """A yes/no question; y/enter on Yes means yes, n/esc means no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes, self.no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="ask-box"):
            yield Static(self.question, id="ask-question")
            with Horizontal(id="ask-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
