"""One line per file scenario, for `validate` and `list --file`."""

from __future__ import annotations

from chaos_tui.scenario_file.model import FileScenario


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(name: str, scenario: FileScenario) -> str:
    hold = scenario.hold_s
    held = "hold default" if hold is None else f"hold {hold:g} s"
    return (
        f"{name}: {_count(len(scenario.steady_state), 'probe')}, "
        f"{_count(len(scenario.actions), 'action')}, {held}"
    )
