"""`chaos-tui list [--file FILE]`: the built-in scenarios, and a scenario file's beside them.

Each built-in with its expected duration (refined by the saved runs of the state dir) and
each parameter with its default, allowed values and meaning: what `--set` takes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from chaos_tui.cli.root import cli
from chaos_tui.core.params import value_text
from chaos_tui.core.report import duration_text


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    help="A scenario file (also CHAOS_FILE): its scenarios are listed too (checked first, as "
    "`validate` does).",
)
def list_scenarios(as_json, file):
    """List the built-in scenarios (and a scenario file's with --file)."""
    if file is None and os.environ.get("CHAOS_FILE"):  # the setting --file stands for
        file = Path(os.environ["CHAOS_FILE"])
    # The file first: a bad file is its errors alone, before anything heavier is imported.
    file_rows = _file_rows(file) if file is not None else []
    from chaos_tui.scenarios import SCENARIOS, source_of

    results_dir = _results_dir()
    rows: list[dict[str, Any]] = [
        {
            "name": cls.name,
            "profile": cls.profile,
            "hypothesis": cls.hypothesis,
            "parameters": {k: f.default for k, f in cls.Params.model_fields.items()},
            "source": source_of(cls.name),  # built-in, or plugin DISTRIBUTION
            "presets": dict(getattr(cls, "presets", {})),
        }
        | how_to_run(cls, results_dir)
        for cls in SCENARIOS.values()
    ]
    rows += [row | how_to_run(cls, results_dir) for row, cls in file_rows]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        about = duration_text(row["expected_duration_s"])
        if "summary" in row:  # a scenario of the file
            click.echo(
                f"{row['name']}  (from {row['source']}, about {about} a run)\n"
                f"    {row['hypothesis']}"
            )
            click.echo(f"    {row['summary']}")
        else:
            plugin = "" if row["source"] == "built-in" else f", {row['source']}"
            click.echo(
                f"{row['name']}  (profile {row['profile']}{plugin}, about {about} a run)\n"
                f"    {row['hypothesis']}"
            )
        click.echo("    parameters (--set KEY=VALUE):")
        for p in row["parameter_details"]:
            allowed = f" ({p['allowed']})" if p["allowed"] else ""
            setting = f"{p['name']}={value_text(p['default'])}"
            click.echo(f"      {setting:<24} {p['meaning']}{allowed}")
        if row.get("presets"):
            click.echo("    presets (--preset NAME):")
            for name, values in row["presets"].items():
                given = ", ".join(f"{k}={value_text(v)}" for k, v in values.items())
                click.echo(f"      {name:<24} {given or 'the defaults'}")
    import yaml

    from chaos_tui.suite.builtin import BUILTIN_SUITES

    click.echo("\nsuites (--suite NAME, or a suite file):")
    for name, text in BUILTIN_SUITES.items():
        suite = yaml.safe_load(text)  # ours, and checked by tests: the model is not needed
        click.echo(f"  {name}  ({', '.join(suite['runs'])})")
        click.echo(f"    {suite['description']}")


def how_to_run(cls, results_dir: Path) -> dict[str, Any]:
    """What a run of it takes: its expected duration, and each parameter with its default,
    allowed values and meaning (what `--set` takes)."""
    from chaos_tui.catalog import expected_duration
    from chaos_tui.core.params import param_infos

    return {
        "expected_duration_s": round(expected_duration(cls, None, results_dir), 3),
        "parameter_details": [
            {"name": i.name, "default": i.default, "allowed": i.allowed, "meaning": i.meaning}
            for i in param_infos(cls.Params)
        ],
    }


def _results_dir() -> Path:
    """Where the saved runs are that refine the expected durations (none: nothing to read)."""
    from chaos_tui.settings import load_settings

    try:
        return Path(load_settings().state_dir) / "results"
    except Exception:  # a bad setting: the durations come from the parameters alone
        return Path("/nonexistent")


def _file_rows(file: Path) -> list[tuple[dict[str, Any], Any]]:
    """The file's scenarios as rows, each with the class a run of it would use."""
    from chaos_tui.scenario_file.loader import load_file
    from chaos_tui.scenario_file.summary import summary_line

    parsed = load_file(file)
    from chaos_tui.from_file.load import scenario_class  # once the file is known to be good

    return [
        (
            {
                "name": name,
                "source": str(file),
                "hypothesis": scenario.hypothesis,
                "summary": summary_line(name, scenario).partition(": ")[2],
                "probes": scenario.probe_names,
                "actions": [action.type for action in scenario.actions],
                "hold_s": scenario.hold_s,
            },
            scenario_class(name, scenario, file),
        )
        for name, scenario in parsed.scenarios.items()
    ]
