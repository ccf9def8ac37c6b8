"""One scenario before it runs: the hypothesis, where it comes from (built in, or a scenario
file), what is probed, what is broken and for how long, exactly which processes, containers,
proxies and commands are in the blast radius, and what must hold.

It is planned afresh each time it opens: on the user's own system the pid listening on a port
changes when the service restarts, and a plan that cannot be made now (nothing listens there
any more) is one line here, with nothing injected."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from chaos_tui.catalog import PLAN_REFUSALS
from chaos_tui.core.plan import RunPlan
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
            Text(fault.name), Text(fault.description), f"{fault.hold_s:g}s", f"{fault.ttl_s:g}s"
        )
    parts += [faults, Text("")]

    if plan.workload:
        parts += [Text("load: ", style="bold") + Text(plan.workload), Text("")]

    parts.append(Text(f"blast radius (profile {plan.profile})", style="bold"))
    lines = dict.fromkeys(plan.blast_radius)  # two faults through one proxy: said once
    parts += [Text(f"  • {line}") for line in lines] or [Text("  (nothing)")]
    parts.append(Text(""))

    checks = Table(
        title="invariants (checked after the heal)",
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

    params = plan.params
    if params:
        parts += [
            Text(""),
            Text("parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()), style="dim"),
        ]
    return Group(*parts)


class DetailScreen(Screen):
    BINDINGS = [
        Binding("r", "run", "Run…"),
        Binding("enter", "run", "Run…", show=False),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.scenario_name = name
        self.shown_plan: RunPlan | None = None

    @property
    def chaos(self) -> ChaosApp:
        """The app, typed: this screen only ever runs inside ChaosApp."""
        return cast("ChaosApp", self.app)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        with KeyedScroll(id="detail-scroll"):  # j/k, g/G, arrows and pages scroll the plan
            yield Static(id="detail")
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

    def action_run(self) -> None:
        # The plan shown is the plan confirmed; when none could be made, request_run plans
        # again and says why it still cannot, or asks to confirm the new plan.
        self.chaos.request_run(self.scenario_name, fresh=False)

    def action_back(self) -> None:
        self.app.pop_screen()
