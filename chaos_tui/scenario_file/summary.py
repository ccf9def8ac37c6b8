"""One line per file scenario, for `validate` and `list --file`; its patterned loads and its
worker injectors."""

from __future__ import annotations

from chaos_tui.load.patterns import describe_mode
from chaos_tui.scenario_file.model import FileScenario, HttpRequestsLoad, WorkerInjectorAction


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(name: str, scenario: FileScenario) -> str:
    hold = scenario.hold_s
    held = "hold default" if hold is None else f"hold {hold:g} s"
    return (
        f"{name}: {_count(len(scenario.steady_state), 'probe')}, "
        f"{_count(len(scenario.actions), 'action')}, {held}"
    )


def pattern_lines(scenario: FileScenario) -> list[str]:
    """One line per load with a pattern or Poisson arrivals (a constant rate is the default,
    said by nothing), per job load, and per worker injector with its scope, for `validate`."""
    lines = []
    for entry in scenario.load:
        if not isinstance(entry, HttpRequestsLoad):
            given = entry.jobs.model_dump(exclude_none=True)
            said = (
                ", ".join(f"{k} {_num(v)}" for k, v in given.items()) or "the built-in's defaults"
            )
            lines.append(f"load jobs: the job queue's producer ({said})")
            continue
        spec = entry.http_requests
        if spec.pattern is not None or spec.poisson:
            mode = describe_mode(spec.poisson, spec.poisson_seed)
            lines.append(f"load {entry.load_name}: {spec.load_pattern.describe()} ({mode})")
    for action in scenario.actions:
        if isinstance(action, WorkerInjectorAction):
            lines += [f"injector {i.kind}: {i.describe()}" for i in action.injectors]
    return lines


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
