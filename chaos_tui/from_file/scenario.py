"""One scenario of a file as a Scenario: the same plan, runner, agent, probes, timeline and
result as a built-in. Its class is made per file scenario (`scenario_class`), so its name,
hypothesis, profile and parameters are class attributes like a built-in's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from chaos_tui.core.contracts import Fault, Probe, RunContext, Scenario, ScenarioParams, Target
from chaos_tui.core.errors import UsageError
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import PlatformTarget
from chaos_tui.from_file.actions import build_fault, platform_part
from chaos_tui.from_file.checks import FileCheck, Judging, build_checks
from chaos_tui.from_file.platform import (
    NAMED_PROBES,
    Companion,
    companion_for,
    companion_name,
    named_kinds,
    part_scenario,
    recovery_probe,
)
from chaos_tui.from_file.probes import build_probe
from chaos_tui.from_file.slo import Objective, objectives, phase_spans
from chaos_tui.from_file.slo import judge as judge_slo
from chaos_tui.load.patterns import TooManyArrivals, check_bounded
from chaos_tui.probes.http_load import HttpRequestLoad
from chaos_tui.scenario_file import model as m

PROCESS_ENDERS = ("kill_process", "terminate_process")
LOCAL_PROFILE = "local"  # the user's own system: no profile of the platform's stack
DEFAULT_WARMUP_S, DEFAULT_HOLD_S, DEFAULT_RECOVER_S = 3.0, 3.0, 5.0


class FileScenarioBase(Scenario[Target]):
    """A scenario written in a file (not listed itself: `scenario_class` makes one per file
    scenario, with `spec` and `source` set)."""

    spec: ClassVar[m.FileScenario]
    source: ClassVar[str]  # the file it came from, as given
    order = 1000  # after the built-ins

    def __init__(self, params: ScenarioParams | None = None) -> None:
        super().__init__(params)
        from chaos_tui.scenarios import SCENARIOS

        shared = self.params.model_dump()
        # What the faults hold in all: the built-in's limits and its load's shape (a ramp
        # over the run) follow it.
        shared["hold_s"] = self.spec.held(self.params.hold_s)
        self.companion: Companion | None = companion_for(self.spec, SCENARIOS, shared)
        self.loads: dict[str, HttpRequestLoad] = {}
        first_http = next(
            (p.probe_name for p in self.spec.steady_state if p.kind in ("http_200_from", "http")),
            None,
        )
        # Checks with no probe named read the recovery probe (a named one as the built-in
        # calls it, or the built-in probe that shows the fault: platform.RECOVERY_PROBES).
        own_recovery = self.companion.scenario.recovery_probe if self.companion else None
        self.checks: list[FileCheck] = build_checks(
            self.spec, recovery_probe(self.spec, own_recovery), first_http
        )
        self.objectives: list[Objective] = objectives(self.spec)
        self.loads_stopped_at: float | None = None  # a load's "after" ends there (throughput)

    # -- names ------------------------------------------------------------------------------

    def _plan_name(self, file_name: str) -> str:
        """The plan's name of a probe the file names (a platform one is the built-in's)."""
        if self.companion is not None:
            return self.companion.probes.get(file_name, file_name)
        return file_name

    # -- the hooks ------------------------------------------------------------------------

    def _check_target(self, target: Target) -> None:
        """The seed's names (db_connection, no_event_loss...) are the platform's probes and
        checks: refused on any other target, and before its faults are resolved there (the
        planner asks for faults first, and on local `target: postgres` names a container of
        your own, which is not what the names watch)."""
        named = named_kinds(self.spec)
        if named and not isinstance(target, PlatformTarget):
            raise UsageError(
                f"{self.name}: {', '.join(dict.fromkeys(named))} are the platform's probes "
                f"and checks: it runs on --target sandbox or docker, not {target.name}"
            )

    def probes(self, target: Target) -> list[Probe]:
        self._check_target(target)
        builtin = self.companion.scenario.probes(target) if self.companion is not None else []
        # The target's own probes (its fault agent) and a built-in's run beside the file's:
        # a file probe of the same name is the user's to rename, said as such.
        taken = {p.name: "the target's" for p in target.probes()}
        if self.companion is not None:
            taken.update((p.name, f"{self.companion.scenario.name}'s") for p in builtin)
        for entry in self.spec.steady_state:
            owner = taken.get(entry.probe_name)
            if entry.kind not in NAMED_PROBES and owner is not None:
                raise UsageError(
                    f"{self.name}: steady_state probe name {entry.probe_name!r} is taken by "
                    f"{owner} own probe: give it another `name:`"
                )
        return builtin + [
            build_probe(p) for p in self.spec.steady_state if p.kind not in NAMED_PROBES
        ]

    def steady_state(self) -> dict[str, float | None]:
        ceilings = self.companion.ceilings if self.companion is not None else {}
        return {
            self._plan_name(p.probe_name): ceilings.get(self._plan_name(p.probe_name))
            for p in self.spec.steady_state
        }

    def faults(self, target: Target) -> list[Fault]:
        self._check_target(target)
        faults = [
            build_fault(a, target, a.duration_seconds or self.params.hold_s)
            for a in self.spec.actions
        ]
        self._check_gone_before(faults)
        return faults

    def _check_gone_before(self, faults: list[Fault]) -> None:
        """Pids are resolved once, when the run is planned: a process an earlier action kills
        (or terminates) is gone when a later one comes to it, so naming it twice is refused."""
        killed: dict[tuple[int, int], int] = {}  # pid -> the action that ends it
        for n, (action, fault) in enumerate(zip(self.spec.actions, faults, strict=True)):
            pids = [tuple(p) for p in getattr(fault, "params", {}).get("pids", [])]
            for pid in pids:
                if pid in killed:
                    raise UsageError(
                        f"{self.name}: actions[{n}] names pid {pid[0]}, which "
                        f"actions[{killed[pid]}] ends first: one scenario ends a process once"
                    )
            if action.TAGS[0] != "pause_process" and action.type in PROCESS_ENDERS:
                killed.update((pid, n) for pid in pids)

    def http_loads(self) -> list[m.HttpRequestsLoad]:
        """The file's own loads (a `jobs:` entry sets the queue's built-in producer)."""
        return [entry for entry in self.spec.load if isinstance(entry, m.HttpRequestsLoad)]

    def workload(self) -> str | None:
        parts = []
        for entry in self.http_loads():
            load = _load(entry)
            try:  # asked once, when the run is planned: a too-big load is refused then
                check_bounded(load.pattern, self.expected_duration_s())
            except TooManyArrivals as exc:
                raise UsageError(f"{self.name}: load {entry.load_name}: {exc}") from None
            parts.append(load.describe())
        if self.companion is not None:
            parts.append(self.companion.scenario.workload() or "")
        return "; ".join(p for p in parts if p) or None

    async def start_workload(self, ctx: RunContext) -> None:
        for entry in self.http_loads():
            load = _load(entry)
            self.loads[entry.load_name] = load
            load.start()
            ctx.note(f"load {entry.load_name}: {load.describe()}")
        if self.companion is not None:
            await self.companion.scenario.start_workload(ctx)

    async def stop_workload(self, ctx: RunContext) -> None:
        if self.loads and self.loads_stopped_at is None:
            self.loads_stopped_at = time.time()
        for load in self.loads.values():
            await load.stop()
        if self.companion is not None:
            await self.companion.scenario.stop_workload(ctx)

    def invariants(self) -> list[InvariantSpec]:
        specs: list[InvariantSpec] = []
        if self.companion is not None:
            wanted = self.companion.invariants
            specs += [i for i in self.companion.scenario.invariants() if i.name in wanted]
        return specs + [check.spec for check in self.checks] + self._slo_specs()

    def _slo_specs(self) -> list[InvariantSpec]:
        return [objective.spec() for objective in self.objectives if objective.counted]

    def expected_duration_s(self) -> float:
        return self.params.warmup_s + self.spec.held(self.params.hold_s) + self.params.recover_s

    def _judging(self, ctx: RunContext) -> Judging:
        return Judging(
            ctx,
            self.loads,
            self.steady_state(),
            {p.probe_name: self._plan_name(p.probe_name) for p in self.spec.steady_state},
        )

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        """The built-in's live judgement of the invariants the file names, and the file's own
        checks that can be read so far (checks.py says which)."""
        results: list[InvariantResult] = []
        if self.companion is not None:
            built = self.companion.scenario
            judged = await built.judge_live(ctx)
            results += [r for r in judged if r.name in self.companion.invariants]
            self.measurements.update(built.measurements)
        judging = self._judging(ctx)
        for check in self.checks:
            live = check.judge_live(judging)
            if live is not None:
                results.append(live)
        return results

    async def check_invariants(self, ctx: RunContext) -> list[InvariantResult]:
        results: list[InvariantResult] = []
        if self.companion is not None:
            built = self.companion.scenario
            judged = await built.check_invariants(ctx)
            results += [r for r in judged if r.name in self.companion.invariants]
            self.delivery = built.delivery
            self.measurements.update(built.measurements)
        for name, load in self.loads.items():
            for phase, stats in load.summary(ctx.timeline.phase_of).items():
                self.measurements[f"load.{name}.{phase}"] = stats.as_measurement()
        judging = self._judging(ctx)
        for check in self.checks:
            results.append(await check.judge(judging))
        return results + self._judge_slos(ctx, judging)

    def _judge_slos(self, ctx: RunContext, judging: Judging) -> list[InvariantResult]:
        """Every SLO in every phase into `self.slos` (the result's); the counted phases of
        each objective as an invariant, so a counted miss fails the run naming it."""
        invariants: list[InvariantResult] = []
        self.slos = []
        for objective in self.objectives:
            load = self.loads.get(objective.subject)
            spans = (
                phase_spans(ctx.timeline.windows, load.driver.started_wall, self.loads_stopped_at)
                if load is not None
                else {}
            )
            per_phase, invariant = judge_slo(objective, judging, spans)
            self.slos += per_phase
            if invariant is not None:
                invariants.append(invariant)
        return invariants


def _load(entry: m.HttpRequestsLoad) -> HttpRequestLoad:
    spec = entry.http_requests
    return HttpRequestLoad(
        entry.load_name,
        spec.url,
        method=spec.method,
        body=spec.body,
        headers=spec.headers,
        pattern=spec.load_pattern,
        seed=spec.poisson_seed,
        poisson=spec.poisson,
        timeout_s=spec.timeout_ms / 1000.0,
    )


def profile_of(spec: m.FileScenario) -> str:
    """The platform profile a scenario's actions need; `local` when they name none of its
    parts. Refused when they need two (one run brings up one profile)."""
    from chaos_tui.scenarios import SCENARIOS

    wanted = {s for s in (part_scenario(a) for a in spec.actions) if s is not None}
    profiles = {SCENARIOS[s].profile for s in wanted}
    if any(platform_part(a) is None for a in spec.actions):
        profiles.add(LOCAL_PROFILE)
    if len(profiles) > 1:
        raise UsageError(
            "its actions need parts of several profiles "
            f"({', '.join(sorted(profiles))}): one scenario breaks one of them"
        )
    return profiles.pop() if profiles else LOCAL_PROFILE


def scenario_class(name: str, spec: m.FileScenario, source: str | Path) -> type[FileScenarioBase]:
    """A Scenario class for one file scenario: its name, hypothesis, profile and parameters."""
    try:
        profile = profile_of(spec)
        builtin = companion_name(spec)
    except UsageError as exc:
        raise UsageError(f"{source}: scenario {name}: {exc}") from None
    warmup = spec.warmup_seconds if spec.warmup_seconds is not None else DEFAULT_WARMUP_S
    recover = spec.recover_seconds if spec.recover_seconds is not None else DEFAULT_RECOVER_S

    # When every action has its own duration_seconds, hold_s is what they hold in all (what
    # the result's parameters say), and --set hold_s would change nothing: it is refused.
    fixed = spec.hold_s

    class Params(ScenarioParams):
        warmup_s: float = Field(
            default=warmup, ge=0, le=m.MAX_DURATION_S, description="load before the fault"
        )
        hold_s: float = Field(
            default=DEFAULT_HOLD_S if fixed is None else fixed,
            gt=0,
            le=m.MAX_DURATION_S,
            description="hold of an action with no duration_seconds"
            if fixed is None
            else "held in all (each action's own duration_seconds)",
        )
        recover_s: float = Field(
            default=recover, ge=0, le=m.MAX_DURATION_S, description="load after the heal"
        )

        @field_validator("hold_s")
        @classmethod
        def _not_fixed(cls, value: float) -> float:
            if fixed is not None:
                raise ValueError(
                    "every action has its own duration_seconds: change those in the file "
                    "(a variable makes one settable with --set)"
                )
            return value

    attributes: dict[str, Any] = {
        "name": name,
        "hypothesis": spec.hypothesis,
        "profile": profile,
        "Params": Params,
        "spec": spec,
        "source": str(source),
        "__module__": __name__,
        "__doc__": spec.description or spec.hypothesis,
        "faults_together": spec.together,
    }
    attributes["recovery_probe"] = recovery_probe(spec)
    if builtin is not None:
        from chaos_tui.scenarios import SCENARIOS

        # The built-in's probes run beside the file's: its backlog peak and drain time go in
        # the result, and its runbook answers a failure of the invariants it judges, which
        # take as long as the built-in gives itself (the queue waits for its backlog).
        companion = SCENARIOS[builtin]
        attributes["recovery_probe"] = recovery_probe(spec, companion.recovery_probe)
        attributes["backlog_probe"] = companion.backlog_probe
        attributes["runbook"] = companion.runbook
        attributes["invariant_budget_s"] = max(
            FileScenarioBase.invariant_budget_s, companion.invariant_budget_s
        )
    if any(a.type == "network_partition" for a in spec.actions):
        attributes["invariant_budget_s"] = 180.0  # the mesh's catch-up and read-back
    return type(f"FileScenario_{name}", (FileScenarioBase,), attributes)
