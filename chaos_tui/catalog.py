"""The scenarios as the console lists and describes them: names, expected durations and last
results for the list, and for one scenario the plan a run of it would execute.
Textual-free."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from chaos_tui.core.contracts import Scenario, ScenarioParams, Target
from chaos_tui.core.errors import ChaosError
from chaos_tui.core.journal import latest_result, recent_results
from chaos_tui.core.model import RunResult
from chaos_tui.core.plan import RunPlan, plan_run
from chaos_tui.scenarios import SCENARIOS

# What planning raises when a scenario cannot be planned now: bad input or a target that says
# no (ChaosError: nothing listens on the port any more), a file that cannot be read (OSError),
# a scenario whose probes clash (ValueError, from plan_run). The console shows it as one line
# and injects nothing.
PLAN_REFUSALS = (ChaosError, OSError, ValueError)

# What a run takes beyond its load and its holds when no saved run of the scenario says
# better: the steady-state wait, the heal and its verification, the invariant checks (about
# 1.1 s for postgres_restart_outbox on a running sandbox, benchmarks/results/run_overhead.json;
# more for a scenario that waits for a backlog to drain, or a profile that starts first).
RUN_OVERHEAD_S = 2.0
# How many of the latest saved runs refine the estimate.
RECENT_RUNS = 5
# Outcomes of runs that went the whole way (an aborted or errored run ends early).
COMPLETE_OUTCOMES = ("pass", "fail")


@dataclass
class ScenarioEntry:
    name: str
    hypothesis: str
    profile: str
    target: str
    duration_s: float
    last_result: RunResult | None
    source: str = "built-in"  # or the scenario file it was read from


class Catalog:
    def __init__(
        self,
        target: Target,
        results_dir: Path,
        params: dict[str, ScenarioParams] | None = None,
        scenarios: dict[str, type[Scenario]] | None = None,
    ):
        self.target = target
        # By name, in listing order: the built-ins by default; the faces add a file's.
        self.scenarios = dict(SCENARIOS) if scenarios is None else scenarios
        self.results_dir = results_dir
        self.params = params or {}  # scenario name -> parameters chosen on the command line
        self.entries: list[ScenarioEntry] = []
        # The plan shown for each scenario, until a run takes it: what was shown is what runs.
        self._plans: dict[str, RunPlan] = {}
        self.refresh_results()

    def scenario(self, name: str) -> Scenario:
        """A fresh scenario object with the chosen parameters (one per run)."""
        cls = self.scenarios[name]
        return cls(self.params.get(name))

    def params_of(self, name: str) -> ScenarioParams:
        """The parameters a run of this scenario uses now (its defaults until changed)."""
        return self.scenario(name).params

    def set_params(self, name: str, params: ScenarioParams) -> None:
        """Run this scenario with these parameters from now on (the detail screen's edits):
        the plan kept for it is dropped, so the next showing and the confirmation plan with
        them, and its expected duration follows."""
        self.params[name] = params
        self._plans.pop(name, None)
        entry = self.entry(name)
        if entry is not None:
            entry.duration_s = self.expected_duration_s(name)

    def entry(self, name: str) -> ScenarioEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def refresh_results(self) -> None:
        # The list asks no hook: the duration comes from the parameters and saved runs.
        self.entries = [
            ScenarioEntry(
                name=name,
                hypothesis=cls.hypothesis,
                profile=cls.profile,
                target=self.target.name,
                duration_s=self.expected_duration_s(name),
                last_result=latest_result(self.results_dir, name),
                source=getattr(cls, "source", "built-in"),
            )
            for name, cls in self.scenarios.items()  # the registry order: the main job first
        ]

    def expected_duration_s(self, name: str) -> float:
        """How long a run with the current parameters takes (`expected_duration`)."""
        return expected_duration(self.scenarios[name], self.params.get(name), self.results_dir)

    def plan(self, name: str, *, fresh: bool = False) -> RunPlan:
        """What a run of this scenario would touch and check: planned once, then shown by the
        detail screen and the confirmation, and executed by the run that `take_plan`s it.
        `fresh` plans again: on the user's own system a pid named a minute ago may be gone,
        or another process may listen on the port now."""
        if fresh:
            self._plans.pop(name, None)
        if name not in self._plans:
            self._plans[name] = plan_run(self.scenario(name), self.target)
        return self._plans[name]

    def planned(self, name: str) -> RunPlan | None:
        """The plan kept for this scenario, without planning."""
        return self._plans.get(name)

    detail = plan  # the detail screen's name for it

    def take_plan(self, name: str) -> RunPlan:
        """The plan for a run: the one shown, which the next showing will not reuse (its
        probes and workload belong to that run)."""
        plan = self.plan(name)
        del self._plans[name]
        return plan


def expected_duration(
    cls: type[Scenario], params: ScenarioParams | None, results_dir: Path
) -> float:
    """How long a run of this scenario with these parameters takes, as the list and `chaos-tui
    list` show it: the median of the latest complete runs with these same parameters when
    there are any; else the load and holds (from the parameters) plus the overhead those runs
    showed beyond their own load and holds, or `RUN_OVERHEAD_S` when none was saved."""
    scenario = cls(params)
    nominal = scenario.expected_duration_s()
    values = {**cls.extra_parameters, **scenario.params.model_dump()}  # as a run records them
    runs = [
        r
        for r in recent_results(results_dir, cls.name, limit=RECENT_RUNS * 4)
        if r.outcome in COMPLETE_OUTCOMES
    ][:RECENT_RUNS]
    same = [r.duration_s for r in runs if alike(r.parameters, values)]
    if same:
        return statistics.median(same)
    overheads = []
    for r in runs:
        try:
            own = {k: v for k, v in r.parameters.items() if k in cls.Params.model_fields}
            theirs = cls(cls.Params.model_validate(own)).expected_duration_s()
        except (ValidationError, TypeError):  # saved before a parameter changed
            continue
        overheads.append(max(0.0, r.duration_s - theirs))
    return nominal + (statistics.median(overheads) if overheads else RUN_OVERHEAD_S)


def alike(recorded: dict, values: dict) -> bool:
    """A saved run's parameters are these: equal, except that `auto` (a default that depends
    on the target, `Scenario.target_defaults`) matches whatever the run recorded it as."""
    return recorded.keys() == values.keys() and all(
        v == "auto" or recorded[k] == v for k, v in values.items()
    )


def source_label(source: str) -> str:
    """A scenario's source as a list shows it: `built-in`, or the file's name."""
    return source if source == "built-in" else Path(source).name


def scenarios_for(target_name: str, file_scenarios: dict[str, type[Scenario]]) -> dict:
    """What a console on this target lists: the built-ins on the platform's targets, then a
    file's scenarios that run there (the user's own system's on `local` only)."""
    local = target_name == "local"
    listed: dict[str, type[Scenario]] = {} if local else dict(SCENARIOS)
    for name, cls in file_scenarios.items():
        if (cls.profile == "local") == local:
            listed[name] = cls  # a file's scenario wins over a built-in of the same name
    return listed


def unlisted_note(
    target_name: str,
    file_scenarios: dict[str, type[Scenario]],
    listed: dict[str, type[Scenario]],
) -> str | None:
    """What the list cannot show by itself: why it is empty on `local` and how to fill it,
    or which of the file's scenarios run on another target than this one."""
    hidden = [name for name, cls in file_scenarios.items() if listed.get(name) is not cls]
    files = sorted({str(getattr(cls, "source", "the file")) for cls in file_scenarios.values()})
    where = ", ".join(files)
    they = f"{', '.join(hidden)} {'runs' if len(hidden) == 1 else 'run'}"
    if target_name == "local" and not listed:
        if not file_scenarios:
            return (
                "Nothing to run on target local: it runs the scenarios of a scenario file, "
                "which name your own processes, containers and proxies. Start the console "
                "with --file FILE (or set CHAOS_FILE=FILE); `chaos-tui init` writes an "
                "example to start from."
            )
        return (
            f"Nothing to run on target local: {where} has no scenario of your own system "
            f"({they} on the platform's parts: --target sandbox or docker)."
        )
    if not hidden:
        return None
    if target_name == "local":
        return f"{where}: {they} on the platform's parts, with --target sandbox or docker."
    return f"{where}: {they} on your own system, with --target local."
