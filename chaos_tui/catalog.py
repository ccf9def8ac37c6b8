"""The scenarios as the console lists and describes them: names, parameters, blast radius,
faults, invariants and last results. Textual-free, read from the scenarios themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from chaos_tui.core.contracts import Fault, Probe, Scenario, Target
from chaos_tui.core.journal import latest_result
from chaos_tui.core.model import InvariantSpec, RunResult
from chaos_tui.scenarios import SCENARIOS


@dataclass
class ScenarioDetail:
    scenario: Scenario
    steady_state: dict[str, float | None]  # probe -> optional ceiling on its value
    probes: list[Probe]
    faults: list[Fault]
    blast_radius: list[str]
    invariants: list[InvariantSpec]


@dataclass
class ScenarioEntry:
    name: str
    hypothesis: str
    profile: str
    target: str
    duration_s: float
    last_result: RunResult | None


class Catalog:
    def __init__(self, target: Target, results_dir: Path, params: dict[str, BaseModel] | None = None):
        self.target = target
        self.results_dir = results_dir
        self.params = params or {}  # scenario name -> parameters chosen on the command line
        self.entries: list[ScenarioEntry] = []
        self.refresh_results()

    def scenario(self, name: str) -> Scenario:
        """A fresh scenario object with the chosen parameters (one per run)."""
        cls = SCENARIOS[name]
        return cls(self.params.get(name))

    def entry(self, name: str) -> ScenarioEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def refresh_results(self) -> None:
        self.entries = [
            ScenarioEntry(
                name=name,
                hypothesis=cls.hypothesis,
                profile=cls.profile,
                target=self.target.name,
                duration_s=self.scenario(name).expected_duration_s(self.target),
                last_result=latest_result(self.results_dir, name),
            )
            for name, cls in SCENARIOS.items()  # the registry order: the main job first
        ]

    def detail(self, name: str) -> ScenarioDetail:
        """What a run of this scenario would touch and check, for the detail screen."""
        scenario = self.scenario(name)
        return ScenarioDetail(
            scenario=scenario,
            steady_state=scenario.steady_state(),
            probes=scenario.probes(self.target) + self.target.probes(),
            faults=scenario.faults(self.target),
            blast_radius=self.target.blast_radius(scenario.profile),
            invariants=scenario.invariants(),
        )
