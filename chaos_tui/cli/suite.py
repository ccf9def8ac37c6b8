"""Launching a suite (`--suite FILE|NAME`, `--scenario a,b,c`, `--repeat N`): every step
checked and planned before anything starts, one target and one lock per profile for the whole
suite, then headless_suite.run_suite."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos_tui.core.errors import UsageError


@dataclass
class SuiteStep:
    """One scenario of the suite's list, its parameters checked."""

    scenario_cls: Any  # a Scenario class
    params: object
    pause: object  # the step's own pause after it (suite.model.PauseRange), or None


def launch_suite(
    settings,
    suite,
    steps: list[SuiteStep],
    target_name: str,
    *,
    dry_run: bool,
    enable_chaos: bool,
    options,
    output: Path | None,
    as_json: bool,
    junit: Path | None,
    keep_sandbox: bool,
    fail_on_regression: bool,
) -> int:
    """A suite `prepare_suite` made: dry-run, or headless (every step planned first)."""
    from chaos_tui.core.guard import check_enabled

    _check_outputs(suite, output, junit)
    from chaos_tui.core.plan import plan_run
    from chaos_tui.targets import make_target

    target = make_target(target_name, settings)
    if dry_run:
        target.read_only = True
        import click

        from chaos_tui.cli.dry_run import print_plan
        from chaos_tui.suite_view import describe

        click.echo(f"suite {suite.name}: {describe(suite.spec)} (dry run: nothing injected)\n")
        for step in steps:
            print_plan(plan_run(step.scenario_cls(step.params), target))
        return 0
    check_enabled(target.name, target.is_sandbox, settings.enabled or enable_chaos)
    # Held until the suite ends: no other run of these profiles sneaks in between its runs.
    from chaos_tui.suite_book import lock_profiles

    try:
        locks = lock_profiles(settings.state_dir, steps, suite.name)  # RunBusy: exit 2
    except OSError as exc:
        raise UsageError(f"cannot lock {settings.state_dir} for this suite: {exc}") from None
    for step in steps:  # each planned once now: a name that resolves to nothing is refused
        plan_run(step.scenario_cls(step.params), target)

    from chaos_tui.headless_suite import run_suite
    from chaos_tui.otlp_export import run_exporter
    from chaos_tui.session import regression_policy

    policies = {s.scenario_cls.name: regression_policy(settings, s.scenario_cls) for s in steps}
    code = run_suite(
        suite,
        steps,
        target,
        options=options,
        state_dir=Path(settings.state_dir),
        output=output,
        stop_sandbox_after=not keep_sandbox,
        json_to_stdout=True if as_json else None,
        junit=junit,
        exporter=run_exporter(settings),
        policies=policies,
        fail_on_regression=fail_on_regression,
    )
    del locks
    return code


def prepare_suite(
    names: list[str],
    suite_name: str | None,
    file,
    target_name: str | None,
    assignments: tuple[str, ...],
    preset: str | None,
    repeat: int | None,
    stop_on_failure: bool,
    default_file=None,
):
    """The suite (a file, a built-in, or the `--scenario a,b,c` list), each step's scenario
    found and its parameters checked, and the one target they all run on: (suite, steps,
    target name). The scenario file is `--file`, else the suite's `file:`, else
    `default_file` (CHAOS_FILE). Every step's problem is said at once (at its line, for a
    suite file), as a UsageError; nothing is planned or started here."""
    from chaos_tui.cli.run import _file_scenarios, _scenario_class, _target_name, parse_params
    from chaos_tui.scenario_file.loader import ScenarioFileError
    from chaos_tui.scenarios import UnknownScenario
    from chaos_tui.suite.load import listed_suite, load_suite

    suite = load_suite(suite_name) if suite_name is not None else None
    if suite is None:
        suite = listed_suite(names, repeat, stop_on_failure)
    else:
        suite.spec = suite.spec.model_copy(
            update={
                "repeat": repeat if repeat is not None else suite.spec.repeat,
                "on_failure": "stop" if stop_on_failure else suite.spec.on_failure,
            }
        )
    file = next((f for f in (file, suite.file, default_file) if f is not None), None)
    try:
        file_scenarios, assignments, variables = _file_scenarios(file, assignments)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    steps: list[SuiteStep] = []
    problems: list[str] = []
    used: set[str] = set()
    targets: dict[str, str] = {}
    for i, entry in enumerate(suite.spec.runs):
        where = suite.where(i)
        try:
            cls = _scenario_class(entry.scenario, file_scenarios, file)
            mine = tuple(a for a in assignments if _declares(cls, a.partition("=")[0].strip()))
            used.update(mine)
            params = parse_params(
                cls,
                mine,
                variables,
                preset=entry.preset or preset or suite.spec.preset,
                # As --set gives them, text: YAML's `true` is no hold of 1 s.
                given={
                    k: str(v).lower() if isinstance(v, bool) else v for k, v in entry.set.items()
                },
            )
            targets.setdefault(_target_name(target_name, cls, file_scenarios), cls.name)
        except (UnknownScenario, UsageError, OSError) as exc:
            problems.append(where + str(exc).removeprefix("chaos-tui: "))
            continue
        steps.append(SuiteStep(cls, params, entry.pause))
    if problems:
        raise ScenarioFileError(problems)
    unused = [a for a in assignments if a not in used]
    if unused:
        listed = ", ".join(dict.fromkeys(step.scenario_cls.name for step in steps))
        raise UsageError(f"--set {unused[0]}: no scenario of the suite has it ({listed})")
    if len(targets) > 1:
        said = ", ".join(f"{scenario} on {name}" for name, scenario in targets.items())
        raise UsageError(f"a suite runs on one target: {said}; give each target its own suite")
    (target_name,) = targets
    return suite, steps, target_name


def _check_outputs(suite, output: Path | None, junit: Path | None) -> None:
    """--output and --junit must not land on the suite file (or its scenario file): the
    suite would run, then its YAML be replaced by the report."""
    inputs = [(Path(suite.source), "the suite file")] if suite.read is not None else []
    if suite.file is not None:
        inputs.append((Path(suite.file), "the suite's scenario file"))
    for path, flag in ((output, "--output"), (junit, "--junit")):
        for source, what in inputs:
            if path is not None and path.resolve() == source.resolve():
                raise UsageError(f"{flag} {path} is {what}: the report would replace it")


def _as_typed(values: dict) -> dict:
    """A step's `set:` as --set would give it: a YAML `true` becomes the text `true`, which
    a boolean parameter takes and a number refuses (pydantic would read it as 1 s)."""
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in values.items()}


def _declares(scenario_cls, key: str) -> bool:
    from chaos_tui.core.contracts import HOLD_NAMES

    fields = scenario_cls.Params.model_fields
    return key in fields or (key in HOLD_NAMES and "hold_s" in fields)
