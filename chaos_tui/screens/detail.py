"""One scenario before it runs: the hypothesis, what is probed, what is broken and for how
long, exactly which processes are in the blast radius, and what must hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from chaos_tui.core.errors import ChaosError
from chaos_tui.core.plan import RunPlan
from chaos_tui.widgets.title_bar import TitleBar

if TYPE_CHECKING:  # for the type only: the app imports this screen
    from chaos_tui.app import ChaosApp


def describe(plan: RunPlan) -> Group:
    """The plan the run will execute, as the user reads it before confirming."""
    parts: list = [Text(plan.scenario_name, style="bold"), Text(plan.hypothesis), Text("")]

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
        probes.add_row(probe.name, probe.description, need)
    parts += [probes, Text("")]

    faults = Table(title="faults", title_justify="left", expand=True, show_edge=False)
    faults.add_column("fault")
    faults.add_column("what it does")
    faults.add_column("held", justify="right")
    faults.add_column("TTL", justify="right")
    for fault in plan.faults:
        faults.add_row(fault.name, fault.description, f"{fault.hold_s:g}s", f"{fault.ttl_s:g}s")
    parts += [faults, Text("")]

    if plan.workload:
        parts += [Text("load: ", style="bold") + Text(plan.workload), Text("")]

    parts.append(Text(f"blast radius (profile {plan.profile})", style="bold"))
    parts += [Text(f"  • {line}") for line in plan.blast_radius] or [Text("  (nothing)")]
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
        checks.add_row(inv.name, inv.description, limit)
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

    @property
    def chaos(self) -> ChaosApp:
        """The app, typed: this screen only ever runs inside ChaosApp."""
        return cast("ChaosApp", self.app)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        with VerticalScroll():
            try:
                shown: Group | Text = describe(self.chaos.catalog.plan(self.scenario_name))
            except (ChaosError, OSError) as exc:  # e.g. the sandbox's port book unreadable
                shown = Text(f"cannot plan {self.scenario_name}: {exc}", style="bold red")
            yield Static(shown, id="detail")
        yield Footer()

    def action_run(self) -> None:
        self.chaos.request_run(self.scenario_name)

    def action_back(self) -> None:
        self.app.pop_screen()
