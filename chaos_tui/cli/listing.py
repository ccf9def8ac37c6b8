"""`chaos-tui list`: the built-in scenarios."""

from __future__ import annotations

import json
from typing import Any

import click

from chaos_tui.cli.root import cli


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_scenarios(as_json):
    """List the built-in scenarios."""
    from chaos_tui.scenarios import SCENARIOS

    rows: list[dict[str, Any]] = [
        {
            "name": cls.name,
            "profile": cls.profile,
            "hypothesis": cls.hypothesis,
            "parameters": {k: f.default for k, f in cls.Params.model_fields.items()},
        }
        for cls in SCENARIOS.values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']}  (profile {row['profile']})\n    {row['hypothesis']}")
        params = ", ".join(f"{k}={v}" for k, v in row["parameters"].items())
        click.echo(f"    parameters: {params}")
