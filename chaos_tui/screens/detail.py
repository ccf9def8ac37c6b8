"""One scenario before it runs: the hypothesis, where it comes from (built in, or a scenario
file), what is probed, what is broken and for how long, exactly which processes, containers,
proxies and commands are in the blast radius, and what must hold.

It is planned afresh each time it opens: on the user's own system the pid listening on a port
changes when the service restarts, and a plan that cannot be made now (nothing listens there
any more) is one line here, with nothing injected.

Its parameters are edited here: one input each, with the allowed values and the meaning the
model gives, checked as they are typed (a bad one turns red with the reason and blocks the run).
Enter in an input, or `r`, plans again with the values typed: what the confirmation shows and
the run executes."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Footer, Input, Label, Static

from chaos_tui.catalog import PLAN_REFUSALS
from chaos_tui.core.contracts import ScenarioParams
from chaos_tui.core.params import ParamInfo, changed_text, check_values, param_infos, value_text
from chaos_tui.core.plan import RunPlan
from chaos_tui.core.report import duration_text
from chaos_tui.screens.keys import KeyedScroll
from chaos_tui.widgets.title_bar import TitleBar

if TYPE_CHECKING:  # for the type only: the app imports this screen
    from chaos_tui.app import ChaosApp


def describe(plan: RunPlan) -> Group:
    """The plan the run will execute, as the user reads it before confirming."""
    parts: list = [Text(plan.scenario_name, style="bold"), Text(plan.hypothesis)]
    source = getattr(plan.scenario, "source", None)
    if source:
        parts.append(Text(f"from {source}", style="dim"))
    parts.append(Text(""))

    probes = Table(
        title="steady state (must hold before anything is injected)",
        title_justify="left",
        expand=True,
        show_edge=False,
    )
    probes.add_column("probe")
    probes.add_column("measures")
    probes.add_column("required")
    ceilings = plan.ceilings
    for probe in plan.probes:
        ceiling = ceilings.get(probe.name, "watched")
        need = (
            "watched only"
            if ceiling == "watched"
            else "passing"
            if ceiling is None
            else f"passing, value <= {ceiling:g}"
        )
        probes.add_row(Text(probe.name), Text(probe.description), need)
    parts += [probes, Text("")]

    faults = Table(title="faults", title_justify="left", expand=True, show_edge=False)
    faults.add_column("fault")
    faults.add_column("what it does")
    faults.add_column("held", justify="right")
    faults.add_column("TTL", justify="right")
    for fault in plan.faults:
        faults.add_row(
            Text(fault.name),
            Text(fault.description),
            duration_text(fault.hold_s),
            duration_text(fault.ttl_s),
        )
    parts += [faults, Text("")]

    if plan.workload:
        parts += [Text("load: ", style="bold") + Text(plan.workload), Text("")]

    parts.append(Text(f"blast radius (profile {plan.profile})", style="bold"))
    lines = dict.fromkeys(plan.blast_radius)  # two faults through one proxy: said once
    parts += [Text(f"  • {line}") for line in lines] or [Text("  (nothing)")]
    parts.append(Text(""))

    checks = Table(
        title="invariants (judged live where they can be, and after the heal)",
        title_justify="left",
        expand=True,
        show_edge=False,
    )
    checks.add_column("invariant")
    checks.add_column("holds when")
    checks.add_column("limit", justify="right")
    for inv in plan.invariants:
        limit = "" if inv.limit is None else f"{inv.comparison} {inv.limit:g} {inv.unit}".strip()
        checks.add_row(Text(inv.name), Text(inv.description), limit)
    parts.append(checks)

    if plan.params_changed:
        parts += [
            Text(""),
            Text("parameters: " + changed_text(plan.params, plan.param_defaults), style="bold"),
        ]
    return Group(*parts)


def param_hint(info: ParamInfo) -> Text:
    """What a parameter means and takes, beside its input: `how long Postgres stays dead
    · 0-60 s · default 3`."""
    hint = Text(info.meaning or info.name)
    if info.allowed:
        hint.append(" · ")
        hint.append(info.allowed, style="bold")
    hint.append(" · ")
    hint.append(f"default {value_text(info.default)}", style="dim")
    return hint


def input_id(name: str) -> str:
    return f"param-{name}"


class DetailScreen(Screen):
    BINDINGS = [
        Binding("r", "run", "Run…"),
        Binding("enter", "run", "Run…", show=False),
        Binding("p", "edit_params", "Parameters"),
        Binding("H", "history", "History"),
        Binding("escape", "back", "Back"),
    ]

    DEFAULT_CSS = """
    DetailScreen #params { height: auto; padding: 0 2 1 2; }
    DetailScreen .param-row { height: auto; margin-top: 1; }
    DetailScreen .param-name { width: 18; }
    DetailScreen .param-row Input { width: 12; height: 1; border: none; padding: 0 1; }
    DetailScreen .param-row Input.-invalid { border: none; background: $error 45%; color: $text; }
    DetailScreen .param-hint { width: 1fr; padding: 0 0 0 2; }
    DetailScreen .param-error { color: $error; text-style: bold; padding: 0 0 0 18; }
    DetailScreen .param-error.-empty { display: none; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.scenario_name = name
        self.shown_plan: RunPlan | None = None
        self.param_infos: list[ParamInfo] = []
        self.param_errors: dict[str, str] = {}  # parameter -> why the value typed is refused

    @property
    def chaos(self) -> ChaosApp:
        """The app, typed: this screen only ever runs inside ChaosApp."""
        return cast("ChaosApp", self.app)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        cls = self.chaos.catalog.scenarios[self.scenario_name]
        self.param_infos = param_infos(cls.Params)
        current = self.chaos.catalog.params_of(self.scenario_name).model_dump()
        with KeyedScroll(id="detail-scroll"):  # j/k, g/G, arrows and pages scroll the plan
            yield Static(id="detail")
            with Vertical(id="params"):
                yield Label(
                    "[b]parameters[/b] [dim](p or tab to edit, enter to apply; "
                    "empty is the default)[/dim]"
                )
                for info in self.param_infos:
                    with Horizontal(classes="param-row"):
                        yield Label(info.name, classes="param-name")
                        box = Input(
                            value_text(current.get(info.name, info.default)),
                            placeholder=value_text(info.default),
                            id=input_id(info.name),
                            suggester=SuggestFromList(info.choices) if info.choices else None,
                        )
                        box.cursor_blink = False
                        yield box
                        yield Static(param_hint(info), classes="param-hint")
                    yield Label("", id=f"error-{info.name}", classes="param-error -empty")
        yield Footer()

    def on_mount(self) -> None:
        self.show(fresh=True)

    def on_screen_resume(self) -> None:
        # Back from the confirmation or the palette: the plan kept for a run may be a newer
        # one than shown (planned there after this screen said it could not be): show that.
        kept = self.chaos.catalog.planned(self.scenario_name)
        if kept is not None and kept is not self.shown_plan:
            self.show()

    def show(self, *, fresh: bool = False) -> None:
        detail = self.query_one("#detail", Static)
        try:
            self.shown_plan = self.chaos.catalog.plan(self.scenario_name, fresh=fresh)
        except PLAN_REFUSALS as exc:  # nothing listens on the port; a port book unreadable
            self.shown_plan = None
            detail.update(
                Group(
                    Text(self.scenario_name, style="bold"),
                    Text(f"cannot plan {self.scenario_name}: {exc}", style="bold red"),
                    Text("nothing was injected; r plans it again, esc goes back", style="dim"),
                )
            )
            return
        detail.update(describe(self.shown_plan))

    # -- parameters ------------------------------------------------------------------------

    def typed_values(self) -> dict[str, str]:
        """What differs from the defaults, as typed (an empty box is the default): only those
        go to the model, as `--set` does, so a scenario that refuses a parameter outright
        (a file's fixed hold) refuses only when it is typed."""
        values = {}
        for info in self.param_infos:
            text = self.query_one(f"#{input_id(info.name)}", Input).value.strip()
            if text and text != value_text(info.default):
                values[info.name] = text
        return values

    def check_params(self) -> ScenarioParams | None:
        """The parameters the boxes make, or None; each box red with its reason or clear."""
        cls = self.chaos.catalog.scenarios[self.scenario_name]
        params, self.param_errors = check_values(
            cls.Params, self.typed_values(), self.scenario_name
        )
        for info in self.param_infos:
            error = self.param_errors.get(info.name, "")
            self.query_one(f"#{input_id(info.name)}", Input).set_class(bool(error), "-invalid")
            label = self.query_one(f"#error-{info.name}", Label)
            label.update(error)
            label.set_class(not error, "-empty")
        return params if isinstance(params, ScenarioParams) else None

    def apply_params(self) -> bool:
        """Use the typed parameters from now on (planned again when they changed); False,
        with the reason said, when one is refused."""
        params = self.check_params()
        if params is None:
            name, why = next(iter(self.param_errors.items()))
            self.notify(why, title=f"{name}: not run", severity="error")
            self.query_one(f"#{input_id(name)}", Input).focus()
            return False
        catalog = self.chaos.catalog
        if params.model_dump() != catalog.params_of(self.scenario_name).model_dump():
            catalog.set_params(self.scenario_name, params)
            self.show(fresh=True)
        return True

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.check_params()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply_params()

    def action_edit_params(self) -> None:
        if self.param_infos:
            self.query_one(f"#{input_id(self.param_infos[0].name)}", Input).focus()

    def action_run(self) -> None:
        # The values typed are the run's, planned again when they changed; the plan shown is
        # the plan confirmed; when none could be made, request_run plans again and says why
        # it still cannot, or asks to confirm the new plan.
        if not self.apply_params():
            return
        self.chaos.request_run(self.scenario_name, fresh=False)

    def action_history(self) -> None:
        self.chaos.open_history(self.scenario_name)

    def action_back(self) -> None:
        # From a parameter's box, esc leaves the box (keeping what was typed, applied when
        # accepted): a second esc goes back. Typed values are never lost to one keystroke.
        if isinstance(self.focused, Input):
            if self.check_params() is not None:
                self.apply_params()
            self.query_one(VerticalScroll).focus(scroll_visible=False)
            return
        self.app.pop_screen()
