"""The fault agent's commands: `chaos-tui agent [status|stop]`, `heal`, `halt`, `leases`."""

from __future__ import annotations

import asyncio
import json

import click

from chaos_tui.cli.common import answer_soon as _answer_soon
from chaos_tui.cli.common import command_settings as _settings
from chaos_tui.cli.errors import fail
from chaos_tui.cli.root import cli
from chaos_tui.core.exit_codes import ExitCode


@cli.group(invoke_without_command=True)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: any free one, see status).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@click.option(
    "--started-by", type=click.Choice(["user", "guardian"]), default="user", hidden=True
)  # the guardian's replacement: its leftover heals are the guardian's
@click.pass_context
def agent(ctx, host, port, allow_remote, started_by):
    """The fault agent: leases with TTLs, healed even if the console dies.

    \b
    chaos-tui agent           run it in the foreground (the console starts one when needed)
    chaos-tui agent status    is one running, where, and how many leases
    chaos-tui agent stop      stop it; it heals every lease first
    """
    if ctx.invoked_subcommand is not None:
        return
    from chaos_tui.agent.server import run_agent

    settings = _settings(report_killed_runs=False)
    run_agent(
        settings,
        host or settings.agent.host,  # it refuses in production first
        settings.agent.port if port is None else port,
        allow_remote,
        announce=lambda line: click.echo(line, err=True),
        started_by=started_by,
    )


def _agent_call(action):
    """Run one call against the agent, starting it if needed (not in production)."""
    from chaos_tui.agent.client import AgentClient
    from chaos_tui.core.guard import check_not_production

    settings = _settings()
    client = AgentClient(settings)
    if client.info() is None:
        check_not_production(settings)  # an agent that runs already may still heal
    spawned = False

    async def go():
        nonlocal spawned
        spawned = await client.ensure()
        if spawned:  # a new agent healed what a dead one left: say so
            for item in (await client.status()).recovered:
                state = "healed" if item.healed else f"heal FAILED: {item.error}"
                click.echo(
                    f"leftover lease {item.id} ({item.kind} "
                    f"{json.dumps(item.params)}) of a dead agent: {state}",
                    err=True,
                )
        return await action(client)

    try:
        return asyncio.run(go())
    finally:
        if spawned:  # started only for this command: nothing is live now, let it go
            client.stop_spawned()


def _print_heals(results) -> int:
    for r in results:
        click.echo(
            f"lease {r.id}: "
            + ("healed" if r.healed else f"heal FAILED: {r.error}")
            + (f" (warning: {r.warning})" if r.warning else "")
        )
    if not results:
        click.echo("no live lease")
    return int(ExitCode.HEAL_FAILED) if any(not r.healed for r in results) else 0


@agent.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def agent_status(as_json):
    """Whether an agent serves this state directory, and its leases."""
    from chaos_tui.agent.client import AgentClient

    client = AgentClient(_settings())
    if client.info() is None:
        click.echo(json.dumps({"running": False}) if as_json else "no agent running")
        return
    health = _answer_soon(client, client.status())
    url = (client.info() or {}).get("url")
    if as_json:
        click.echo(
            json.dumps({"running": True, "url": url, **health.model_dump(mode="json")}, indent=2)
        )
        return
    click.echo(
        f"agent pid {health.pid} at {url}: {health.leases} lease(s)"
        + (", HALTED" if health.halted else "")
    )


@agent.command("stop")
def agent_stop():
    """Stop the agent of this state directory; it heals every lease before it exits."""
    from chaos_tui.agent.client import AgentClient

    pid, code = _stop_agent(AgentClient(_settings()))
    click.echo("no agent running" if pid is None else f"agent pid {pid} stopped")
    raise SystemExit(code)


def _stop_agent(client) -> tuple[int | None, int]:
    """Stop the agent of this state dir (it heals every lease before it exits; one that must
    be killed is followed by a replacement that heals what it left) and account for each
    lease it held, from its history and what is left in its journal: (its pid or None, the
    exit code: 4 if a heal failed, 5 if a heal worked but its journal file stayed)."""
    import time

    since = time.time()
    pid, stopped = client.stop_running(announce=lambda line: click.echo(line, err=True))
    if pid is None:
        left = client.journal_ids()
        if left:  # a dead agent's (its guardian may be replacing it): nothing healed them yet
            click.echo(
                f"no agent running, yet {len(left)} lease(s) on disk: "
                f"{', '.join(left)}; `chaos-tui heal` heals them",
                err=True,
            )
            return None, int(ExitCode.HEAL_FAILED)
        return None, 0
    if not stopped:
        fail(ExitCode.ERROR, f"the fault agent (pid {pid}) did not stop")
    ended = client.ended_since(since - 1)
    left = client.journal_ids()
    failed = [lease_id for lease_id in left if lease_id not in ended]
    for lease_id, entry in ended.items():
        note = " (but its journal file could not be removed)" if lease_id in left else ""
        click.echo(f"lease {lease_id}: healed ({entry.by}){note}")
    for lease_id in failed:
        click.echo(
            f"lease {lease_id}: heal FAILED; it stays on disk for the next agent "
            "(`chaos-tui heal`)",
            err=True,
        )
    if failed:
        return pid, int(ExitCode.HEAL_FAILED)
    return pid, int(ExitCode.ERROR) if left else 0


@cli.command("heal")
def heal():
    """Heal every live lease now (starting the agent if needed: it heals leftovers first)."""
    from chaos_tui.agent.protocol import HealResult

    async def heal_and_look(client):
        before = set(client.journal_ids())  # not what a run journals meanwhile: no failed heal
        results = await client.heal_all()
        # What the agent could not even read (a torn lease file) is in no result, yet may
        # still be a live fault: the journal on disk has the last word on what is left.
        stays = (before & set(client.journal_ids())) - {r.id for r in results}
        return results + [
            HealResult(
                id=lease_id,
                healed=False,
                error=f"its journal file stays in {client.journal_folder}",
            )
            for lease_id in sorted(stays)
        ]

    raise SystemExit(_print_heals(_agent_call(heal_and_look)))


@cli.command("halt")
@click.option("--release", is_flag=True, help="Lift the halt: new leases are allowed again.")
def halt(release):
    """Heal every live lease and refuse new ones until `chaos-tui halt --release`."""
    if release:
        _agent_call(lambda c: c.release_halt())
        click.echo("halt released: new leases are allowed")
        return
    code = _print_heals(_agent_call(lambda c: c.halt()))
    click.echo("halted: new leases are refused until `chaos-tui halt --release`")
    raise SystemExit(code)


@cli.command("leases")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def leases(as_json):
    """The live fault leases and when each expires."""
    import time

    from chaos_tui.agent.client import AgentClient

    client = AgentClient(_settings())
    rows = []
    if client.info() is not None:  # a listing starts nothing
        rows = [lease.model_dump(mode="json") for lease in _answer_soon(client, client.leases())]
    else:  # what is on disk is what a dead agent left
        leftover, unreadable = client.journal_leases()
        rows = [lease.model_dump(mode="json") for lease in leftover]
        if rows or unreadable:
            click.echo(
                f"no agent running: {len(rows) + len(unreadable)} leftover lease(s) "
                "on disk; `chaos-tui heal` starts one to heal them",
                err=True,
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no live lease")
    for r in rows:
        left = r["expires_at"] - time.time()
        click.echo(
            f"{r['id']}  {r['kind']} {json.dumps(r['params'])} on {r['target']}  "
            f"{r['state']}  expires in {left:.0f}s  owner {r['owner'] or '-'}"
            + (f"  run {r['run_id']}" if r.get("run_id") else "")
        )
