"""What most commands share: the settings (checked, with the news of runs killed since the
last command) and a quick call to the agent that must not hang the shell."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import click

from chaos_tui.core.errors import UsageError

# A status answer takes milliseconds; a stopped or hung agent must not hold the shell for the
# client's long request timeout (which is sized for heals).
STATUS_TIMEOUT_S = 5.0


def command_settings(report_killed_runs: bool = True):
    """The settings. A bad value ends the command (one line, exit 2); a CHAOS_* variable that
    nothing reads is named in a warning, since pydantic-settings would ignore it silently.
    Also says, once, what became of runs killed since the last command (not in the agent
    itself: it runs unseen, and would swallow the news)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from chaos_tui.settings import load_settings, unknown_variables
    from chaos_tui.statedir import StateDirProblem, prepare_state_dir

    unknown = unknown_variables()
    if unknown:
        click.echo(
            f"chaos-tui: warning: unknown setting{'s' * (len(unknown) > 1)} {', '.join(unknown)}",
            err=True,
        )
    try:
        settings = load_settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "CHAOS_" + "__".join(str(p).upper() for p in err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        raise UsageError(f"bad setting {where}: {reason}") from None
    except SettingsError as exc:  # a nested group (CHAOS_AGENT=...) that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        where = f"CHAOS_{field.group(1).upper()}" if field else "CHAOS_*"
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise UsageError(f"bad setting {where}: not valid JSON{cause}") from None
    try:  # every command that touches the state dir comes through here first, the agent too
        prepare_state_dir(settings.state_dir)
    except StateDirProblem as exc:
        raise UsageError(str(exc)) from None
    if report_killed_runs:
        _report_killed_runs(settings)
    return settings


def _report_killed_runs(settings) -> None:
    """A run killed since the last command is said once, with what became of its faults."""
    from chaos_tui.crash_report import report_killed_runs

    for line in report_killed_runs(Path(settings.state_dir)):
        click.echo(f"chaos-tui: {line}", err=True)


def answer_soon(client, call):
    """Await one quick agent call (status, leases) for STATUS_TIMEOUT_S at most."""
    from chaos_tui.agent.client import AgentUnavailable

    async def go():
        try:
            return await asyncio.wait_for(call, STATUS_TIMEOUT_S)
        except TimeoutError:
            pid = (client.info() or {}).get("pid")
            raise AgentUnavailable(
                f"the agent (pid {pid}) did not answer within {STATUS_TIMEOUT_S:g} s"
                + (
                    f"; it is stopped (SIGSTOP?): `kill -CONT {pid}` resumes it"
                    if _is_stopped(pid)
                    else f"; see {client.folder / 'agent.log'}"
                )
            ) from None

    return asyncio.run(go())


def _is_stopped(pid: int | None) -> bool:
    from chaos_tui.core.procinfo import proc_stat

    found = proc_stat(pid) if pid is not None else None
    return found is not None and found[0] in "tT"
