"""Launching a run: the input checked first (nothing starts before), then headless
(chaos_tui/headless.py) or the console (app.py), each inside a run session (session.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from chaos_tui.cli.common import command_settings
from chaos_tui.core.errors import UsageError
from chaos_tui.core.limits import PROBE_RATE_MAX_HZ


def launch(
    *,
    headless,
    scenario_name,
    output,
    as_json,
    file,
    target_name,
    dry_run,
    enable_chaos,
    assignments,
    rate_hz,
    invariant_budget,
    keep_sandbox,
    export_dir=None,
    junit=None,
    fail_on_regression=False,
    suite=None,
    preset=None,
    repeat=None,
    stop_on_failure=False,
) -> int:
    """The exit code of the console, of one headless run, or of a suite of them."""
    if headless and (scenario_name or suite):
        from chaos_tui import status_line

        status_line.show(f"preparing {suite or scenario_name}\u2026")  # before the slow imports
    from chaos_tui.core.guard import check_enabled, check_not_production
    from chaos_tui.scenarios import UnknownScenario

    settings = command_settings()
    if headless or dry_run:
        check_not_production(settings)  # first, whatever else was asked
    given_file = file  # --file; a suite's own `file:` comes before CHAOS_FILE
    file = file if file is not None else settings.file
    if not scenario_name and suite is None and settings.scenario:
        scenario_name = settings.scenario  # CHAOS_SCENARIO
    names = scenario_names(scenario_name)
    is_suite = suite is not None or len(names) > 1 or repeat is not None
    try:
        if suite is not None and not suite.strip():
            raise UsageError("--suite needs a suite file or a built-in's name (platform, queue)")
        if suite is not None and scenario_name:
            raise UsageError("give --suite or --scenario, not both (a suite names its scenarios)")
        if (headless or dry_run) and not scenario_name and suite is None:
            flag = "--headless" if headless else "--dry-run"
            raise UsageError(
                f"{flag} needs --scenario NAME (or CHAOS_SCENARIO) or --suite NAME "
                "(see `chaos-tui list`)"
            )
        if assignments and not scenario_name and suite is None:
            raise UsageError("--set needs --scenario NAME: parameters belong to a scenario")
        if preset is not None and not scenario_name and suite is None:
            raise UsageError("--preset needs --scenario NAME or --suite NAME")
        if repeat is not None and not 1 <= repeat <= 10_000:
            raise UsageError(f"--repeat must be between 1 and 10000, got {repeat}")
        if stop_on_failure and not is_suite:
            raise UsageError("--stop-on-failure goes with a suite (--suite, or --scenario a,b)")
        _check_run_flags(
            headless, dry_run, rate_hz, invariant_budget, output, junit, export_dir, as_json,
            fail_on_regression,
        )  # fmt: skip
        if is_suite:
            from chaos_tui.cli.suite import launch_suite, prepare_suite

            prepared = prepare_suite(
                names, suite, given_file, target_name, assignments, preset, repeat,
                stop_on_failure, settings.file,
            )  # fmt: skip
            options = _run_options(settings, rate_hz, invariant_budget)
            if not (headless or dry_run):  # the console, with the suite queued
                suite, steps, target_name = prepared
                return run_console(
                    settings, target_name, None, None, options, enable_chaos, keep_sandbox,
                    {}, export_dir, suite=(suite, steps),
                )  # fmt: skip
            return launch_suite(
                settings,
                *prepared,
                dry_run=dry_run,
                enable_chaos=enable_chaos,
                options=options,
                output=output,
                as_json=as_json,
                junit=junit,
                keep_sandbox=keep_sandbox,
                fail_on_regression=fail_on_regression,
            )
        file_scenarios, assignments, variables = _file_scenarios(file, assignments)
        scenario_cls = (
            _scenario_class(scenario_name, file_scenarios, file) if scenario_name else None
        )
        target_name = _target_name(target_name, scenario_cls, file_scenarios)
        params = (
            parse_params(scenario_cls, assignments, variables, preset=preset)
            if scenario_cls
            else None
        )
    except (UnknownScenario, OSError) as exc:
        raise UsageError(str(exc)) from None
    options = _run_options(settings, rate_hz, invariant_budget)
    if not headless and not dry_run:
        return run_console(
            settings,
            target_name,
            scenario_name,
            params,
            options,
            enable_chaos,
            keep_sandbox,
            file_scenarios,
            export_dir,
        )

    from chaos_tui.core.plan import plan_run
    from chaos_tui.headless import run_headless
    from chaos_tui.otlp_export import run_exporter
    from chaos_tui.sandbox.usage import RunLock
    from chaos_tui.session import regression_policy
    from chaos_tui.targets import make_target

    assert scenario_cls is not None  # --headless without --scenario was refused above

    target = make_target(target_name, settings)
    if dry_run:
        # Resolved as for a run (pids, containers, free ports), and nothing more.
        target.read_only = True
        from chaos_tui.cli.dry_run import print_plan

        print_plan(plan_run(scenario_cls(params), target))
        return 0
    check_enabled(target.name, target.is_sandbox, settings.enabled or enable_chaos)
    run_lock = RunLock(Path(settings.state_dir), scenario_cls.profile)  # held until exit
    try:  # one run per profile and state dir: a second is refused, nothing started
        run_lock.acquire(scenario_cls.name)  # RunBusy is a UsageError: exit 2
    except OSError as exc:
        raise UsageError(f"cannot lock {settings.state_dir} for this run: {exc}") from None
    # Planned before anything starts: a name that resolves to nothing is refused here.
    plan = plan_run(scenario_cls(params), target)
    return run_headless(
        plan,
        target,
        options=options,
        results_dir=Path(settings.state_dir) / "results",
        output=output,
        stop_sandbox_after=not keep_sandbox,
        json_to_stdout=True if as_json else None,
        junit=junit,
        exporter=run_exporter(settings),
        policy=regression_policy(settings, scenario_cls),
        fail_on_regression=fail_on_regression,
    )


def _run_options(settings, rate_hz, invariant_budget):
    from chaos_tui.core.runner import RunOptions

    return RunOptions(
        rate_hz=rate_hz or settings.probe_rate_hz,
        invariant_budget_s=invariant_budget or settings.invariant_budget_s,
        record_dir=Path(settings.state_dir) / "runs",
    )


def scenario_names(given: str | None) -> list[str]:
    """`--scenario a,b,c`: the names in order (one for a plain --scenario NAME)."""
    if not given:
        return []
    names = [name.strip() for name in given.split(",")]
    if any(not name for name in names):
        raise UsageError(f"--scenario {given}: an empty name in the list (a,b,c)")
    return names


def _check_run_flags(
    headless, dry_run, rate_hz, invariant_budget, output, junit, export_dir, as_json,
    fail_on_regression,
) -> None:  # fmt: skip
    """The run's flags that do not depend on the scenario: each in its range, each with the
    face it goes with, and every output file writable before anything starts."""
    from chaos_tui.headless import check_distinct, check_output_path

    if rate_hz is not None and not 0 < rate_hz <= PROBE_RATE_MAX_HZ:
        raise UsageError(f"--rate must be between 0 and {PROBE_RATE_MAX_HZ:g} Hz, got {rate_hz:g}")
    if invariant_budget is not None and invariant_budget <= 0:
        raise UsageError(f"--invariant-budget must be positive, got {invariant_budget:g}")
    if output is not None:
        if not headless:
            raise UsageError("--output goes with --headless (the console exports from its report)")
        check_output_path(output)
    if junit is not None:
        if not headless:
            raise UsageError("--junit goes with --headless (CI runs headless)")
        check_output_path(junit, flag="--junit")
        if output is not None:
            check_distinct([(output, "--output"), (junit, "--junit")])
    if export_dir is not None and (headless or dry_run):
        raise UsageError("--export-dir goes with the console (headless writes --output)")
    if as_json and not headless:
        raise UsageError("--json goes with --headless (the console exports from its report)")
    if fail_on_regression and not headless:
        raise UsageError("--fail-on-regression goes with --headless (an exit code for CI)")


def _file_scenarios(file, assignments: tuple[str, ...]):
    """The scenario file's scenarios by name (none without a file), the `--set` pairs left
    once those naming the file's variables are taken, and the variables' names (said when a
    --set names neither them nor a parameter)."""
    if file is None:
        return {}, assignments, ()
    from chaos_tui.from_file.load import declared_variables, load_scenarios, split_assignments

    declared = declared_variables(file)
    variables, rest = split_assignments(assignments, declared)
    return load_scenarios(file, variables), rest, tuple(sorted(declared))


def _scenario_class(name: str, file_scenarios: dict, file):
    """A scenario of the file, else a built-in, by name."""
    from chaos_tui.scenarios import SCENARIOS, get_scenario

    if name in file_scenarios:
        if name in SCENARIOS:
            from chaos_tui.signals import say

            say(f"chaos-tui: {name} is the scenario of {file} (a built-in has the same name)")
        return file_scenarios[name]
    if file_scenarios:
        known = ", ".join(list(file_scenarios) + sorted(SCENARIOS))
        if name not in SCENARIOS:
            raise UsageError(f"unknown scenario {name!r}: not in {file} nor built in ({known})")
    return get_scenario(name)


def _target_name(given: str | None, scenario_cls, file_scenarios: dict) -> str:
    """--target as given, checked against the scenario; else `local` for a file scenario of the
    user's own system (or, for the console, a file whose scenarios all are), else the
    sandbox."""
    from chaos_tui.targets import PLATFORM_TARGETS, TARGET_NAMES

    own_system = getattr(scenario_cls, "profile", None) == "local"
    if scenario_cls is None and file_scenarios:  # the console, no scenario named
        own_system = all(cls.profile == "local" for cls in file_scenarios.values())
    if given is None:
        return "local" if own_system else "sandbox"
    if given not in TARGET_NAMES:
        raise UsageError(f"unknown target {given!r} (known: {', '.join(TARGET_NAMES)})")
    if scenario_cls is None:
        return given
    if given == "local" and file_scenarios.get(scenario_cls.name) is not scenario_cls:
        raise UsageError(
            f"{scenario_cls.name} is a built-in scenario of the platform: it runs on "
            f"{' or '.join(PLATFORM_TARGETS)}, not local (your own system is a scenario file's)"
        )
    if given == "local" and not own_system:
        raise UsageError(
            f"{scenario_cls.name} breaks parts of the platform: it runs on "
            f"{' or '.join(PLATFORM_TARGETS)}, not local"
        )
    if given in PLATFORM_TARGETS and own_system:
        raise UsageError(
            f"{scenario_cls.name} breaks your own processes, containers or proxies: it runs on "
            "--target local, not " + given
        )
    return given


def parse_params(
    scenario_cls,
    assignments: tuple[str, ...],
    variables: tuple[str, ...] = (),
    *,
    preset: str | None = None,
    given: dict | None = None,
    where: str = "",
):
    """The scenario's parameters from, lowest first: its defaults, its `preset`, `given`
    (a suite's `set:`), then the `--set key=value` pairs. A bad value is said in plain words
    that name the key and what it accepts (after `where`, the suite step it came from)."""
    layers = [
        preset_values(scenario_cls, preset),
        dict(given or {}),
        assignment_values(assignments),
    ]
    from chaos_tui.core.contracts import HOLD_NAMES
    from chaos_tui.core.params import check_values

    values: dict = {}
    for layer in layers:
        holds = [name for name in HOLD_NAMES if name in layer]
        if len(holds) > 1:  # one parameter under its old names too: which one is meant?
            raise UsageError(
                f"{where}--set {' and '.join(holds)} name the same parameter (hold_s): give one"
            )
        if holds:  # a later layer's hold replaces an earlier one's, whatever its name
            values = {k: v for k, v in values.items() if k not in HOLD_NAMES}
        values.update(layer)
    params, errors = check_values(scenario_cls.Params, values, scenario_cls.name)
    if params is not None:
        return params
    name, words = next(iter(errors.items()))
    if variables and name not in scenario_cls.Params.model_fields:
        words += f"; or one of the file's variables: {', '.join(variables)}"
    raise UsageError(where + words)


def assignment_values(assignments: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item}: expected KEY=VALUE, e.g. --set hold_s=10")
        values[key.strip()] = value.strip()
    return values


def preset_values(scenario_cls, preset: str | None) -> dict:
    """A scenario's named preset; one it does not have is refused, naming those it has."""
    if preset is None:
        return {}
    presets = getattr(scenario_cls, "presets", {})
    if preset not in presets:
        has = ", ".join(sorted(presets)) or "none"
        raise UsageError(f"{scenario_cls.name} has no preset {preset!r} (its presets: {has})")
    return dict(presets[preset])


def run_console(
    settings,
    target_name,
    scenario_name,
    params,
    options,
    enable_chaos,
    keep_sandbox,
    file_scenarios=None,
    export_dir=None,
    suite=None,
) -> int:
    """The Textual console. It opens even where chaos is refused (production, a target not
    enabled): it then shows why, and nothing can be run from it."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        run = "--suite NAME" if suite is not None else "--scenario NAME"
        raise UsageError(f"the console needs a terminal; without one use --headless {run}")
    from chaos_tui.app import ChaosApp

    app = ChaosApp(
        settings,
        target_name=target_name,
        params={scenario_name: params} if scenario_name and params is not None else None,
        options=options,
        enable_chaos=enable_chaos,
        open_scenario=scenario_name,
        file_scenarios=file_scenarios,
        export_dir=export_dir,
        suite=suite,
    )
    session = console_session(app, keep_sandbox)
    session.exporter = app.exporter
    session.install()
    return session.run(lambda: console_body(app, session), after=_tell_heal_failed)


def console_session(app, keep_sandbox: bool):
    """The console's run session. While the app runs, every signal goes to it (it aborts a
    run, heals, then exits, and says so of later ones); once it has stopped, signals are
    reported and ignored until the heal, the saved result and the stopping of what the
    console started are done. Any signal ends the console as interrupted (130)."""
    from chaos_tui.session import RunSession

    return RunSession(
        app.target,
        app.results_dir,
        who="the console",
        abort=app.on_signal,
        repeat=app.on_signal,
        keep_sandbox=keep_sandbox,
        saver=app.saver,
        signal_is_interrupt=True,
    )


async def console_body(app, session):
    """The app, then the heal of a run it left going (however it stopped); the last result."""
    from chaos_tui.signals import say

    try:
        await app.run_async()
    finally:
        session.guard.enter("healing")
        if app.run_in_progress is not None:
            say("chaos-tui: the console stopped during a run; healing first")
        await app.settle()  # heals a run still going; its result is saved once, by the app
    return app.last_result


def _tell_heal_failed(result) -> None:
    from chaos_tui.signals import say

    if result is not None and not result.heal.ok:
        say("chaos-tui: the last run's heal FAILED; check the target")
