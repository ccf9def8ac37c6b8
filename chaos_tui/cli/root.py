"""The `chaos-tui` group: with no subcommand it opens the console, or with --headless runs one
scenario (cli/run.py); the subcommands register on it from their own modules."""

from __future__ import annotations

from pathlib import Path

import click

from chaos_tui import __version__
from chaos_tui.core.errors import UsageError
from chaos_tui.core.limits import PROBE_RATE_DEFAULT_HZ


class ChaosGroup(click.Group):
    """The group, keeping the words it was given: `--set`'s check names the value that
    followed a KEY with no `=` (`--set down_s 10`), which click would take for a command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["chaos_tui.args"] = list(args)
        return super().parse_args(ctx, args)


def check_assignments(ctx: click.Context, _param, values: tuple[str, ...]) -> tuple[str, ...]:
    """Each --set is KEY=VALUE: a forgotten `=` is said as such, before click reads the value
    that followed as a command (`No such command '10'`)."""
    words = ctx.meta.get("chaos_tui.args", [])
    for item in values:
        key, sep, _value = item.partition("=")
        if sep and key.strip():
            continue
        if not sep:
            after = _word_after(words, item)
            example = f"{item}={after}" if after else f"{item}=VALUE"
            raise UsageError(f"--set {item}: expected KEY=VALUE, e.g. --set {example}")
        raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set hold_s=10")
    return values


def _word_after(words: list[str], item: str) -> str | None:
    """The bare word that followed `--set ITEM` (what was meant as its value), if any."""
    for i, word in enumerate(words[:-2]):
        if word == "--set" and words[i + 1] == item and not words[i + 2].startswith("-"):
            return words[i + 2]
    return None


@click.group(
    cls=ChaosGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--headless", is_flag=True, help="Run a scenario or a suite without the console (for CI)."
)
@click.option(
    "--scenario",
    "scenario_name",
    metavar="NAME[,NAME...]",
    help="Scenario to run (see `chaos-tui list`); several, comma-separated, run one after another.",
)
@click.option(
    "--suite",
    metavar="FILE|NAME",
    default=None,
    help="Run a suite: a suite file, or a built-in (platform, queue). One table, one JSON, the "
    "worst run's exit code.",
)
@click.option(
    "--preset",
    metavar="NAME",
    default=None,
    help="A scenario's named parameter set, under --set (plan: the platform plan's hold times).",
)
@click.option(
    "--repeat",
    type=int,
    default=None,
    metavar="N",
    help="Run the scenario (or the suite's list) N times, and report the trend.",
)
@click.option(
    "--stop-on-failure",
    is_flag=True,
    help="End a suite at its first run that does not pass (by default it goes on).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON result here instead of stdout.",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the verdict as JUnit XML here (for CI): a testcase per invariant.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="The JSON result on stdout even when it is a terminal."
)
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    default=None,
    help="A scenario file (also CHAOS_FILE): its scenarios run beside the built-ins.",
)
@click.option(
    "--target",
    "target_name",
    default=None,
    help="Where faults land: sandbox (default), docker, or local (your own system; the "
    "default for a file scenario that names your own processes, containers or proxies).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Resolve the scenario's targets and print its plan and blast radius; inject nothing.",
)
@click.option(
    "--enable-chaos", is_flag=True, help="Allow faults on a target that is not the sandbox."
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    callback=check_assignments,
    help="Override a scenario parameter or a scenario file's variable (repeatable).",
)
@click.option(
    "--rate",
    "rate_hz",
    type=float,
    default=None,
    help=f"Probe sampling rate in Hz (default {PROBE_RATE_DEFAULT_HZ:g}).",
)
@click.option(
    "--invariant-budget", type=float, default=None, help="Seconds allowed for checking invariants."
)
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the console's report exports go (default: exports/ beside the saved results).",
)
@click.option(
    "--keep-sandbox", is_flag=True, help="Leave a sandbox this run started running afterwards."
)
@click.option(
    "--fail-on-regression",
    is_flag=True,
    help="Exit 1 when a passing run regressed against its baseline (see `chaos-tui baseline`).",
)
@click.version_option(__version__, prog_name="chaos-tui")
@click.pass_context
def cli(ctx, /, headless, scenario_name, **_options):
    """chaos-tui: break your stack on purpose, watch it recover, get a verdict with numbers.

    \b
    chaos-tui --headless --scenario postgres_restart_outbox
    chaos-tui --headless --scenario opa_restart,postgres_restart_outbox
    chaos-tui --headless --suite platform      (or --suite my-gameday.yaml)
    chaos-tui list
    chaos-tui init; chaos-tui validate chaos-scenarios.yaml
    chaos-tui --headless --file chaos-scenarios.yaml --scenario NAME --enable-chaos
    chaos-tui sandbox up|down|status
    chaos-tui results; chaos-tui report RUN_ID --html run.html
    """
    if ctx.invoked_subcommand is not None:
        if headless or scenario_name or ctx.params.get("suite"):
            raise UsageError("--headless/--scenario/--suite go without a subcommand")
        # A run's options before a command are a mistake, not something to ignore.
        given = [
            f"--{name.replace('_', '-')}"
            for name in (
                "junit",
                "output",
                "fail_on_regression",
                "dry_run",
                "export_dir",
                "preset",
                "repeat",
                "stop_on_failure",
            )
            if ctx.params.get(name)
        ]
        if given:
            verb = "goes" if len(given) == 1 else "go"
            raise UsageError(
                f"{' and '.join(given)} {verb} with a run, not with `{ctx.invoked_subcommand}`"
            )
        return
    from chaos_tui.cli.run import launch

    raise SystemExit(launch(**ctx.params))
