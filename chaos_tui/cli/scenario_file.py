"""`chaos-tui validate FILE` and `chaos-tui init [PATH]`: scenario files (issue 14) checked and
started, nothing injected. `list --file` is in listing.py."""

from __future__ import annotations

from pathlib import Path

import click

from chaos_tui.cli.root import cli
from chaos_tui.core.errors import UsageError

DEFAULT_FILE = "chaos-scenarios.yaml"


@cli.command("validate")
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
def validate(file: Path) -> None:
    """Check a scenario file: every problem at once, as FILE:LINE:COL: key.path: message."""
    from chaos_tui.scenario_file.loader import load_file
    from chaos_tui.scenario_file.summary import pattern_lines, summary_line

    parsed = load_file(file)
    for name, scenario in parsed.scenarios.items():
        click.echo(summary_line(name, scenario))
        for line in pattern_lines(scenario):
            click.echo(f"  {line}")


@cli.command("init")
@click.argument(
    "path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_FILE, required=False
)
def init(path: Path) -> None:
    """Write a commented example scenario file (default chaos-scenarios.yaml)."""
    from chaos_tui.scenario_file.example import EXAMPLE

    try:
        # O_EXCL: a file that appears between a check and the write is not overwritten either.
        with path.open("x", encoding="utf-8") as out:
            out.write(EXAMPLE)
    except FileExistsError:
        raise UsageError(f"{path} exists; not overwriting it (give another path)") from None
    click.echo(f"wrote {path}: edit it, then `chaos-tui validate {path}`")
