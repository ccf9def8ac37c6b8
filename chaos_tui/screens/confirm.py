"""Modal guards: type the scenario name to run it; answer yes before quitting a live run.

The run's question shows what the typed name agrees to: each fault with its TTL, and the
blast radius exactly as planned (the pids and command lines, containers, proxies it opens,
commands the agent will run), before the box to type in."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from chaos_tui.core.guard import confirmation_matches
from chaos_tui.core.params import changed_text
from chaos_tui.core.plan import RunPlan
from chaos_tui.core.report import duration_text


class ConfirmRunScreen(ModalScreen[bool]):
    """Dismisses with True only when the exact scenario name was typed; esc is False."""

    # Letters go to the box to type in; the list above it still scrolls by the page.
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("pageup", "scroll_list(-1)", "Scroll the list up", show=False),
        Binding("pagedown", "scroll_list(1)", "Scroll the list down", show=False),
    ]
    AUTO_FOCUS = "#confirm-input"  # typing goes to the box, not to the scrollable list

    def __init__(
        self,
        scenario: str,
        target: str,
        faults: list[str],
        blast_radius: list[str],
        parameters: str = "defaults",
        does: str = "run it",
    ) -> None:
        super().__init__()
        self.scenario = scenario  # the name to type: a scenario's, or a suite's
        self.does = does
        self.target = target
        self.faults = faults
        self.blast_radius = blast_radius
        self.parameters = parameters  # what the run changed from the defaults, in words

    @classmethod
    def for_plan(cls, plan: RunPlan) -> ConfirmRunScreen:
        """The question for this plan: the faults it will inject, each with its TTL, and
        what they touch, resolved (the plan the run then executes, so what is confirmed is
        what runs)."""
        faults = [f"{f.name}: {f.description} (TTL {duration_text(f.ttl_s)})" for f in plan.faults]
        radius = list(dict.fromkeys(plan.blast_radius))  # two faults through one proxy: once
        parameters = changed_text(plan.params, plan.param_defaults)
        return cls(plan.scenario_name, plan.target, faults, radius, parameters)

    @classmethod
    def for_suite(cls, name: str, plans: list[RunPlan], schedule: str) -> ConfirmRunScreen:
        """One question for a whole suite: every run's faults and blast radius, each planned
        now, and how the runs follow each other; the suite's name is what is typed."""
        faults = [
            f"{plan.scenario_name}: {f.name}: {f.description} (TTL {duration_text(f.ttl_s)})"
            for plan in plans
            for f in plan.faults
        ]
        radius = list(dict.fromkeys(r for plan in plans for r in plan.blast_radius))
        parameters = "; ".join(
            f"{plan.scenario_name} {changed_text(plan.params, plan.param_defaults)}"
            for plan in plans
        )
        target = plans[0].target if plans else ""
        screen = cls(name, target, faults, radius, f"{schedule}\n{parameters}", "run the suite")
        return screen

    def what_it_does(self) -> Text:
        text = Text()
        text.append("parameters: ", style="bold")
        text.append(self.parameters)
        text.append("\n\n")
        for heading, lines in (
            ("faults", self.faults),
            ("blast radius, resolved now", self.blast_radius),
        ):
            if heading != "faults":
                text.append("\n\n")
            text.append(heading, style="bold")
            for line in lines or ["(nothing)"]:
                text.append(f"\n• {line}")
        return text

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(f"Inject faults into [b]{self.target}[/b]?", id="confirm-title")
            with VerticalScroll(id="confirm-scroll"):  # many pids: this part scrolls
                yield Static(self.what_it_does(), id="confirm-radius")
            yield Label(f"Type [b]{self.scenario}[/b] to {self.does}, esc to cancel.")
            what = "suite's" if self.does != "run it" else "scenario"
            box = Input(placeholder=f"the {what} name, exactly", id="confirm-input")
            box.cursor_blink = False  # steady for screenshots and screen readers alike
            yield box
            yield Label("", id="confirm-error")

    def on_mount(self) -> None:
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        # The list gets the rows the rest of the box leaves, so the box to type in stays on
        # the screen however many pids there are (a `vh` max-height in the CSS is not counted
        # when the box sizes itself to its content).
        rest = 16  # border, padding, title, margins, the question, the input, the error line
        scroll = self.query_one("#confirm-scroll", VerticalScroll)
        scroll.styles.max_height = max(3, self.app.size.height - rest)

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

    def action_scroll_list(self, pages: int) -> None:
        scroll = self.query_one("#confirm-scroll", VerticalScroll)
        if pages < 0:
            scroll.scroll_page_up()
        else:
            scroll.scroll_page_down()


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
