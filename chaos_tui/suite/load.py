"""A suite by name or file: the built-ins, a YAML file read with every problem at its line, or
the list given to `--scenario a,b,c`."""

from __future__ import annotations

from pathlib import Path

from chaos_tui.scenario_file.loader import (
    Read,
    ScenarioFileError,
    compose,
    raise_problems,
    read_text,
    validated,
)
from chaos_tui.suite.builtin import BUILTIN_SUITES
from chaos_tui.suite.model import Step, SuiteFile


class Suite:
    """A suite as read, with where it came from: its scenario file (`file:`) is found beside
    it, and each step's place in it (`where`) names a problem found later at its line."""

    def __init__(
        self, spec: SuiteFile, source: str, base: Path | None, read: Read | None = None
    ) -> None:
        self.spec, self.source, self.read = spec, source, read
        self.file = (base / spec.file) if base is not None and spec.file else None
        if spec.file and base is None:  # a built-in names no file
            self.file = Path(spec.file)

    @property
    def name(self) -> str:
        return self.spec.name

    def where(self, step: int) -> str:
        """`FILE:LINE:COL: runs[2]: ` of a step of a file; the step's scenario otherwise."""
        if self.read is None:
            return f"{self.spec.runs[step].scenario}: "
        _, (line, col) = self.read.at(("runs", step))
        return f"{self.source}:{line}:{col}: runs[{step}]: "


def load_suite(given: str) -> Suite:
    """A built-in by name, unless a file of that name is there; else a suite file (a name
    that looks like a path, or one that exists). A folder named like a built-in (a repository
    with `platform/`) does not hide the built-in."""
    path = Path(given)
    if given in BUILTIN_SUITES and not path.is_file():
        return Suite(read_suite(BUILTIN_SUITES[given], f"built-in suite {given}"), given, None)
    looks_like_path = "/" in given or path.suffix in (".yaml", ".yml") or path.exists()
    if not looks_like_path:
        known = ", ".join(BUILTIN_SUITES)
        raise ScenarioFileError(
            [f"unknown suite {given!r}: no such file, and not built in ({known})"]
        )
    text = read_text(path, "a suite file", "no such suite file")
    read = Read(str(path))
    return Suite(read_suite(text, str(path), read), str(path), path.parent, read)


def read_suite(text: str, source: str, read: Read | None = None) -> SuiteFile:
    read = read if read is not None else Read(source)
    data = compose(text, read)
    if not isinstance(data, dict):
        found = "nothing" if data is None else type(data).__name__
        raise ScenarioFileError([f"{source}:1:1: expected a suite (name, runs), found {found}"])
    parsed, problems = validated(SuiteFile, data, read)
    raise_problems(problems, source)
    assert parsed is not None
    return parsed


# The name of a suite made from a list (`--scenario a,b,c`, the console's queue): what the
# console's confirmation asks to type.
LISTED_NAME = "gameday"


def listed_suite(names: list[str], repeat: int | None, stop_on_failure: bool) -> Suite:
    """`--scenario a,b,c` (with `--repeat N`), or the console's queue: a suite of those, in
    that order."""
    spec = SuiteFile(
        name=LISTED_NAME,
        description=", ".join(names),
        repeat=repeat,
        on_failure="stop" if stop_on_failure else "continue",
        runs=[Step(scenario=name) for name in names],
    )
    return Suite(spec, "--scenario", None)
