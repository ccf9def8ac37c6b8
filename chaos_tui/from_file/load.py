"""A scenario file read for running: its scenarios as Scenario classes, with `--set` split
between the file's declared `variables:` and the run's parameters."""

from __future__ import annotations

from pathlib import Path

from chaos_tui.from_file.scenario import FileScenarioBase, scenario_class
from chaos_tui.scenario_file.loader import load_file, typed_override


def load_scenarios(
    path: Path | str, variables: dict[str, str] | None = None
) -> dict[str, type[FileScenarioBase]]:
    """Every scenario of the file, by name (ScenarioFileError: the file's problems, all)."""
    parsed = load_file(path, variables)
    declared = {k: v for k, v in parsed.variables.items() if isinstance(v, float | int | str)}
    given = {
        k: typed_override(declared[k], v) for k, v in (variables or {}).items() if k in declared
    }
    classes = {name: scenario_class(name, spec, path) for name, spec in parsed.scenarios.items()}
    for cls in classes.values():  # the file's variables are recorded with the parameters
        cls.extra_parameters = declared | given
        cls.extra_parameter_defaults = declared
    return classes


def declared_variables(path: Path | str) -> set[str]:
    """The names under `variables:`, read before `--set` is split (a file that cannot be read
    declares none here: loading it next says what is wrong with it)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return set()
    declared = data.get("variables") if isinstance(data, dict) else None
    return {str(k) for k in declared} if isinstance(declared, dict) else set()


def split_assignments(
    assignments: tuple[str, ...], variables: set[str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """`--set` pairs naming a declared variable, and the rest (the run's parameters)."""
    declared: dict[str, str] = {}
    rest: list[str] = []
    for item in assignments:
        key, sep, value = item.partition("=")
        if sep and key.strip() in variables:
            declared[key.strip()] = value.strip()
        else:
            rest.append(item)
    return declared, tuple(rest)
