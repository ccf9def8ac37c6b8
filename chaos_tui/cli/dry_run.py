"""`--dry-run`: a scenario's plan as a run would make it (pids, containers, proxies resolved),
printed; nothing is started, injected or opened."""

from __future__ import annotations

import click

from chaos_tui.core.params import changed_text
from chaos_tui.core.plan import RunPlan
from chaos_tui.core.report import duration_text


def print_plan(plan: RunPlan) -> None:
    echo = click.echo
    echo(f"{plan.scenario_name} on target {plan.target} (dry run: nothing injected)")
    echo(f"  hypothesis: {plan.hypothesis}")
    # The load and the holds; a run adds its start-up, steady state and checks (`chaos-tui
    # list` says how long runs of it took).
    echo(f"  expected duration: {duration_text(plan.expected_duration_s)} of load and holds")
    echo(f"  parameters: {changed_text(plan.params, plan.param_defaults)}")
    echo("  probes:")
    for probe in plan.probes:
        steady = ""
        if probe.name in plan.ceilings:
            ceiling = plan.ceilings[probe.name]
            steady = " [steady state" + (f", max {ceiling:g}" if ceiling is not None else "") + "]"
        echo(f"    {probe.name}: {probe.description}{steady}")
    echo("  faults:")
    for fault in plan.faults:
        echo(f"    {fault.name}: {fault.description} (TTL {fault.ttl_s:g} s)")
    if plan.workload:
        echo(f"  load: {plan.workload}")
    echo("  invariants:")
    for inv in plan.invariants:
        limit = f" ({inv.limit_text})" if inv.limit_text else ""
        echo(f"    {inv.name}{limit}: {inv.description}")
    echo("  blast radius:")
    for line in plan.blast_radius or ("nothing beyond the faults above",):
        echo(f"    {line}")
