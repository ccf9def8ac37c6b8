"""The `chaos-tui` command. No flags: the console. --headless: one scenario for CI and scripts.

One module per job: root.py (the group and its options), run.py (a run, headless or in the
console), listing.py, results.py (saved runs), sandbox.py, agent.py (the fault agent, heal,
halt, leases); common.py holds what they share. Every user mistake ends as one line on
stderr and a non-zero exit code; nothing is started before the input has been checked.
Commands raise `ChaosError` (core/errors.py); `main` alone turns a failure into that line and
an exit code (`explain`).
Heavy imports stay inside the commands: `chaos-tui --help` loads none of them.
"""

from __future__ import annotations

import click

from chaos_tui import status_line

# Each module registers its commands on the group as it is imported.
from chaos_tui.cli import (  # noqa: F401
    agent,
    baseline,
    listing,
    report,
    results,
    sandbox,
    scenario_file,
)
from chaos_tui.cli.errors import explain
from chaos_tui.cli.root import cli
from chaos_tui.core.exit_codes import ExitCode

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: click's usage errors become one line instead of a usage dump."""
    try:
        try:
            cli.main(args=argv, prog_name="chaos-tui", standalone_mode=False)
        finally:
            status_line.erase()  # a status line still up: what is said next takes its place
    except click.UsageError as exc:
        fail_line = exc.format_message().rstrip(".")
        click.echo(f"chaos-tui: {fail_line} (see chaos-tui --help)", err=True)
        return int(ExitCode.USAGE)
    except (click.Abort, KeyboardInterrupt):
        # Only before a run installs its own handlers (during start-up): nothing was injected.
        click.echo("chaos-tui: interrupted before anything was started", err=True)
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        click.echo(f"chaos-tui: {exc.format_message()}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:
        problem = explain(exc)
        if problem is None:
            raise  # a bug: its traceback is what a report needs
        code, message = problem
        # A scenario file's problems are one line each, all of them (`validate`).
        for line in message.splitlines() or [""]:
            click.echo(f"chaos-tui: {line}", err=True)
        return int(code)
    return 0
