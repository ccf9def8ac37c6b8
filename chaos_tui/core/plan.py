"""A run plan: everything one run of a scenario against a target will probe, break, hold,
check and touch, asked of the scenario once and then only read.

The console shows a plan (detail screen, confirmation) and runs that same plan; headless
builds one at the start of the run. The runner never asks the scenario's hooks again, so
what was shown is what runs, and hooks may be pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from chaos_tui.core.contracts import Fault, Probe, Scenario, Target
from chaos_tui.core.errors import UsageError
from chaos_tui.core.model import InvariantSpec
from chaos_tui.core.params import changed_parameters, defaults_of


@dataclass(frozen=True, slots=True)
class SteadyCheck:
    """A probe that must pass before anything is injected, with an optional ceiling."""

    probe: str
    ceiling: float | None = None


@dataclass(frozen=True, slots=True)
class PlannedFault:
    """A fault as the plan holds it: the object the runner injects, and what is shown."""

    fault: Fault
    name: str
    description: str
    hold_s: float
    ttl_s: float


@dataclass(frozen=True)
class RunPlan:
    """One run, planned. Frozen: a face reads it, the runner executes it, nothing edits it.

    `scenario` is the instance that runs the workload and judges the invariants; the probes
    and faults are the very objects the run uses (one plan, one run)."""

    scenario: Scenario[Any]
    scenario_name: str
    hypothesis: str
    profile: str
    runbook: str | None
    target: str
    params: dict[str, Any]
    endpoints: BaseModel | None  # where the target said the parts answer, when planned
    probes: tuple[Probe, ...]  # the scenario's, then the target's own
    steady_state: tuple[SteadyCheck, ...]
    faults: tuple[PlannedFault, ...]
    faults_together: bool  # all held at once, rather than one after another
    workload: str | None
    invariants: tuple[InvariantSpec, ...]
    invariant_budget_s: float
    blast_radius: tuple[str, ...]
    warmup_s: float
    recover_s: float
    recovery_probe: str | None
    backlog_probe: str | None
    # The parameter model's defaults: what `params` changed is said beside the verdict.
    param_defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def params_changed(self) -> dict[str, Any]:
        """The parameters set to something other than their default."""
        return changed_parameters(self.params, self.param_defaults)

    @property
    def expected_duration_s(self) -> float:
        """Load before, every fault held, load after: what the user waits through."""
        return self.warmup_s + self.hold_s + self.recover_s

    @property
    def hold_s(self) -> float:
        """How long faults are live: every hold in turn, or the longest when held together."""
        holds = [f.hold_s for f in self.faults]
        return max(holds, default=0.0) if self.faults_together else sum(holds)

    @property
    def ceilings(self) -> dict[str, float | None]:
        """The steady-state checks as probe -> optional ceiling."""
        return {c.probe: c.ceiling for c in self.steady_state}

    def probe(self, name: str) -> Probe:
        """One of the plan's probes, by name (a scenario reads what its probes recorded)."""
        for probe in self.probes:
            if probe.name == name:
                return probe
        raise KeyError(f"the plan of {self.scenario_name} has no probe {name!r}")


def plan_run(scenario: Scenario[Any], target: Target) -> RunPlan:
    """Ask the scenario, once, what a run against this target does."""
    endpoints = target.endpoints(scenario.profile)
    faults = tuple(
        PlannedFault(f, f.name, f.description, f.hold_s, f.ttl_s) for f in scenario.faults(target)
    )
    if not faults:  # e.g. every fault of a scenario switched off by its parameters
        raise UsageError(f"{scenario.name} has nothing to inject with these parameters")
    # A default that depends on the target (`auto`) is recorded as what it is on this one.
    declared = defaults_of(type(scenario.params))
    by_target = scenario.target_defaults(target)
    values = scenario.params.model_dump()
    values.update({k: v for k, v in by_target.items() if values.get(k) == declared.get(k)})
    probes = tuple(scenario.probes(target)) + tuple(target.probes())
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise ValueError(f"{scenario.name}: two probes share a name ({', '.join(names)})")
    steady = tuple(SteadyCheck(n, c) for n, c in scenario.steady_state().items())
    unknown = [c.probe for c in steady if c.probe not in names]
    if unknown:
        raise ValueError(f"{scenario.name}: steady state names unknown probe(s) {unknown}")
    return RunPlan(
        scenario=scenario,
        scenario_name=scenario.name,
        hypothesis=scenario.hypothesis,
        profile=scenario.profile,
        runbook=scenario.runbook,
        target=target.name,
        params={**scenario.extra_parameters, **values},
        endpoints=endpoints,
        probes=probes,
        steady_state=steady,
        faults=faults,
        faults_together=scenario.faults_together,
        workload=scenario.workload(),
        invariants=tuple(scenario.invariants_on(target)),
        invariant_budget_s=scenario.invariant_budget_s,
        blast_radius=tuple(target.blast_radius(scenario.profile))
        + tuple(line for f in faults for line in f.fault.touches),
        warmup_s=scenario.warmup_s,
        recover_s=scenario.recover_s,
        recovery_probe=scenario.recovery_probe,
        backlog_probe=scenario.backlog_probe,
        param_defaults={**scenario.extra_parameter_defaults, **declared, **by_target},
    )
