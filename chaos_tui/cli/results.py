"""`chaos-tui results [filters]`: the saved runs, newest first; `results show ID`: one of them.

The list comes from the results index (core/results_index.py), refreshed from the files first,
so ten thousand runs list at once; `show` reads the one result file and prints it as the
headless run's summary does, with its comparison against the baseline when it has one.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from chaos_tui.cli.root import cli
from chaos_tui.core.errors import UsageError

OUTCOMES = ("pass", "fail", "error", "aborted", "interrupted")  # model.Outcome (a test checks)
DEFAULT_LIMIT = 20
ID_WIDTH = 12  # a run id is 12 characters: shown whole
# More than this is every run (and more than SQLite's 64-bit LIMIT takes: 10**20 crashed).
ALL = 2**62


@cli.group("results", invoke_without_command=True)
@click.option("--scenario", metavar="NAME", help="Only this scenario's runs.")
@click.option("--target", metavar="NAME", help="Only runs on this target (sandbox, docker, ...).")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only runs with this verdict.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="How many of the newest runs to list.",
)
@click.option("--all", "every", is_flag=True, help="List every run (no --limit).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, for scripts.")
@click.pass_context
def results(ctx, scenario, target, outcome, limit, every, as_json):
    """List the saved runs, newest first (`results show ID` prints one)."""
    if ctx.invoked_subcommand is not None:
        return
    limit_given = ctx.get_parameter_source("limit") is not click.core.ParameterSource.DEFAULT
    if every and limit_given:
        raise UsageError("--all and --limit say two things: give one")
    from chaos_tui.core.results_index import Query, ResultsIndex

    index = ResultsIndex(_results_dir())
    query = Query(
        scenario=scenario,
        target=target,
        outcome=outcome,
        limit=None if every or limit >= ALL else limit,
    )
    runs = index.runs(query)
    for problem in filter(None, (index.rebuilt, index.problem)):
        click.echo(f"chaos-tui: warning: {problem}", err=True)
    if not runs and scenario is not None:
        _check_scenario(scenario, index.scenarios())
    if as_json:
        # One run a line: a JSON array still, written by json's C encoder (indent= would
        # take its pure-Python one, several times slower over ten thousand runs).
        click.echo("[\n" + ",\n".join(json.dumps(_run_json(run)) for run in runs) + "\n]")
        return
    if not runs:
        click.echo(_nothing_line(index.results_dir, any_filter=bool(scenario or target or outcome)))
        return
    for line in _table(runs):
        click.echo(line)
    total = index.total
    if total is not None and total > len(runs):
        click.echo(f"{len(runs)} of {total} runs shown (--all for every one, --limit N)")


@results.command("show")
@click.argument("ref", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The whole result as JSON.")
def show(ref, as_json):
    """Print one saved run: a run id, the start of one, or a result file's path."""
    from chaos_tui.core.history import find_result, open_result

    path = find_result(_results_dir(), ref)
    try:
        result = open_result(path)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else type(exc).__name__
        raise UsageError(f"{path} is not a result this version can read ({why})") from None
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    from rich.console import Console

    from chaos_tui.core.report import comparison_table
    from chaos_tui.headless import print_summary

    console = Console(highlight=False)
    when = dt.datetime.fromtimestamp(result.started_at).strftime("%Y-%m-%d %H:%M:%S")
    click.echo(f"run {result.run_id}, started {when}: {path}")
    print_summary(console, result)
    # Every metric against its baseline, where there was one (the summary above already
    # says why not, or nothing at all for a scenario's first run).
    compared = result.comparison is not None and bool(result.comparison.metrics)
    facts = comparison_table(result) if compared else []
    if facts:
        click.echo("\ncompared with the baseline:")
        for label, value in facts:
            click.echo(f"  {label}: {value}")


def _results_dir() -> Path:
    from chaos_tui.cli.common import command_settings

    return Path(command_settings(report_killed_runs=False).state_dir) / "results"


def _check_scenario(scenario: str, with_results: list[str]) -> None:
    """A --scenario that names nothing known is a mistake (a typo), not an empty history; a
    built-in scenario that has never run is only an empty history."""
    from chaos_tui.scenarios import SCENARIOS

    if scenario in with_results or scenario in SCENARIOS:
        return
    known = ", ".join(with_results) or "none yet"
    raise UsageError(f"unknown scenario {scenario!r} (scenarios with saved runs: {known})")


def _nothing_line(results_dir: Path, any_filter: bool) -> str:
    if any_filter:
        return "no saved run matches (chaos-tui results lists them all)"
    return f"no saved runs yet: each run's result is saved under {results_dir}"


def _run_json(run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "scenario": run.scenario,
        "target": run.target or None,
        "started_at": run.started_at,
        "outcome": run.outcome,
        "duration_s": run.duration_s,
        "parameters": run.parameters,
        "changed_parameters": run.changed,
        "time_to_detect_s": run.time_to_detect_s,
        "time_to_recover_s": run.time_to_recover_s,
        "outage_s": run.outage_s,
        "error_rate_during_fault": run.error_rate,
        "backlog_drain_s": run.backlog_drain_s,
        "regressions": list(run.regressions),
        "notes": run.notes,
        "path": str(run.path),
        "problem": run.problem,
    }


def _figures(run) -> str:
    """The key figures in a few words: `detect 1.20 s, recover 3.10 s, outage 4.00 s, ...`."""
    from chaos_tui.core.report import duration_text, percent

    figures = [
        (name, duration_text(value))
        for name, value in (
            ("detect", run.time_to_detect_s),
            ("recover", run.time_to_recover_s),
            ("outage", run.outage_s),
        )
        if value is not None
    ]
    if run.error_rate is not None:
        figures.append(("errors", percent(run.error_rate)))
    if run.backlog_drain_s is not None:
        figures.append(("drain", duration_text(run.backlog_drain_s)))
    return ", ".join(f"{name} {value}" for name, value in figures) or "-"


def _row(run) -> list[str]:
    from chaos_tui.core.params import value_text
    from chaos_tui.core.report import duration_text, metric_name_text

    when = (
        dt.datetime.fromtimestamp(run.started_at).strftime("%Y-%m-%d %H:%M")
        if run.started_at
        else "?"
    )
    if not run.readable:
        return [when, run.run_id[:ID_WIDTH], run.scenario, "", "?", "", run.problem or "", "", ""]
    changed = ", ".join(f"{k}={value_text(v)}" for k, v in run.changed.items()) or "-"
    names = ", ".join(metric_name_text(m) for m in run.regressions)
    flag = f"regressed: {names}" if names else ""
    return [
        when,
        run.run_id[:ID_WIDTH],
        run.scenario,
        run.target or "?",
        (run.outcome or "?").upper(),
        duration_text(run.duration_s),
        _figures(run),
        changed,
        flag,
    ]


HEADER = ["when", "run id", "scenario", "target", "verdict", "took", "figures", "changed", ""]


def _table(runs) -> list[str]:
    """The rows in aligned columns (the last one, the flag, left ragged). The times are the
    machine's local time, and the header says which zone."""
    import time

    header = [f"when ({time.strftime('%Z')})", *HEADER[1:]]
    rows = [header] + [_row(run) for run in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        + (f"  {row[-1]}" if row[-1] else "")
        for row in rows
    ]
