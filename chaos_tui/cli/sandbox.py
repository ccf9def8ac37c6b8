"""`chaos-tui sandbox up|down|restart|status`: the embedded sandbox."""

from __future__ import annotations

import asyncio
import json

import click

from chaos_tui.cli.agent import _stop_agent
from chaos_tui.cli.common import command_settings as _settings
from chaos_tui.cli.root import cli
from chaos_tui.core.errors import TargetError, UsageError
from chaos_tui.profiles import PROFILE_NAMES


@cli.group()
def sandbox():
    """The embedded sandbox: local PostgreSQL, NATS and the reference services."""


def _sandbox(starts_something: bool = True):
    """The sandbox of these settings; refused in production when the command may start
    something (status only reads, down only stops what this tool started)."""
    from chaos_tui.core.guard import check_not_production
    from chaos_tui.sandbox.stack import Sandbox

    settings = _settings()
    if starts_something:
        check_not_production(settings)
    return Sandbox(settings)


def _print_status(status: dict) -> None:
    click.echo(f"state dir: {status['state_dir']}")
    for service, info in status["services"].items():
        state = f"running (pid {info['pid']})" if info["running"] else "stopped"
        click.echo(f"  {service:<10} {info['profile']:<14} {state}")
    for name, url in status["urls"].items():
        click.echo(f"  {name + ':':<16}{url}")


PROFILE_HELP = (
    f"Start only this profile (repeatable): {', '.join(PROFILE_NAMES)}. Default: all of them."
)


@sandbox.command("up")
@click.option("--profile", "profiles", multiple=True, metavar="NAME", help=PROFILE_HELP)
def sandbox_up(profiles):
    """Start the sandbox (or what of it is not running)."""
    import httpx

    from chaos_tui.agent.client import AgentError, AgentUnavailable
    from chaos_tui.sandbox.postgres import SandboxError
    from chaos_tui.targets.sandbox import SandboxTarget

    sb = _sandbox()
    unknown = [p for p in profiles if p not in PROFILE_NAMES]
    if unknown:
        raise UsageError(f"unknown profile {unknown[0]!r} (known: {', '.join(PROFILE_NAMES)})")
    target = SandboxTarget(sb.settings)

    async def up() -> None:
        # The fault agent comes up with the services and stays until `sandbox down`: runs on
        # a sandbox kept up then neither start nor stop it (most of a run's cost beyond its
        # fault and load), and the mesh's link runs through its proxies anyway.
        for profile in profiles or [None]:
            await target.ensure_up(profile)

    try:
        asyncio.run(up())
        target.keep_up()
    except (
        SandboxError,
        AgentUnavailable,
        AgentError,
        httpx.HTTPError,
        OSError,
        RuntimeError,
    ) as exc:
        raise TargetError(f"sandbox up: {exc}") from None
    started = target.started + (["agent"] if target.agent_started else [])
    click.echo(f"started: {', '.join(started)}" if started else "already running")
    click.echo("the fault agent stays up with the sandbox (`chaos-tui sandbox down` stops it too)")
    _print_status(sb.status())


@sandbox.command("down")
def sandbox_down():
    """Stop every sandbox process this tool started, and the fault agent (data is kept)."""
    from chaos_tui.agent.client import AgentClient, AgentUnavailable
    from chaos_tui.core.guard import check_not_production
    from chaos_tui.sandbox.postgres import SandboxError
    from chaos_tui.sandbox.usage import release_kept

    sb = _sandbox(starts_something=False)
    try:  # runs using the sandbox see this and end at once, as errors (healed)
        sb.mark_down()
    except (SandboxError, OSError) as exc:
        raise TargetError(f"sandbox down: {exc}") from None
    client = AgentClient(sb.settings)
    if client.info() is None and client.journal_ids():
        # A dead agent's leases: heal them now (a new agent does that first), or a later
        # start would heal them by starting single services of a stack that is down.
        check_not_production(sb.settings)  # that needs an agent, and none starts there
        try:
            asyncio.run(client.ensure())
        except AgentUnavailable as exc:
            raise TargetError(f"sandbox down: leftover leases could not be healed: {exc}") from None
    pid, code = _stop_agent(client)  # it heals its leases first
    try:
        release_kept(sb.settings.state_dir)
        stopped = sb.down()
    except (SandboxError, OSError) as exc:
        raise TargetError(f"sandbox down: {exc}") from None
    stopped += ["agent"] if pid is not None else []
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    raise SystemExit(code)


@sandbox.command("restart")
@click.argument("service")
def sandbox_restart(service):
    """Stop one sandbox service and start it again (the others keep running)."""
    from chaos_tui.sandbox.postgres import SandboxError
    from chaos_tui.sandbox.services import BY_NAME

    if service not in BY_NAME:
        raise UsageError(f"unknown service {service!r} (known: {', '.join(BY_NAME)})")
    sb = _sandbox()
    try:
        stopped = sb.down(only=[service])
        sb.start(service)
    except (SandboxError, OSError, RuntimeError) as exc:
        raise TargetError(f"sandbox restart {service}: {exc}") from None
    record = sb.record(service)
    click.echo(f"{'restarted' if stopped else 'started'} {service} (pid {record.pid})")


@sandbox.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def sandbox_status(as_json):
    """Show the sandbox's processes, ports and URLs."""
    status = _sandbox(starts_something=False).status()
    if as_json:
        click.echo(json.dumps(status, indent=2))
    else:
        _print_status(status)
