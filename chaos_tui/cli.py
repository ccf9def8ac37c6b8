"""The `chaos-tui` command. No flags: the console. --headless: one scenario for CI and scripts.

Every user mistake ends as one line on stderr and a non-zero exit code; nothing is started
before the input has been checked. Commands raise; `main` alone turns the failures it knows
into that line and an exit code (`explain`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from chaos_tui import __version__
from chaos_tui.core.exit_codes import ExitCode


# A status answer takes milliseconds; a stopped or hung agent must not hold the shell for the
# client's long request timeout (which is sized for heals).
STATUS_TIMEOUT_S = 5.0


class UsageProblem(Exception):
    """Bad input from the user: one line, exit 2."""


def fail(code: int, message: str) -> None:
    click.echo(f"chaos-tui: {message}", err=True)
    raise SystemExit(int(code))


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The failures a command may end with, as (exit code, one line); None for a bug, which
    keeps its traceback."""
    from chaos_tui.core.guard import Refusal

    if isinstance(exc, Refusal):
        return exc.code, str(exc)
    if isinstance(exc, UsageProblem):
        return ExitCode.USAGE, str(exc)
    import httpx  # only now: these imports cost time that a successful command need not pay

    from chaos_tui.agent import client, server
    from chaos_tui.sandbox.postgres import SandboxError

    if isinstance(exc, server.AgentError):
        return (ExitCode.USAGE if "refusing" in str(exc) else ExitCode.ERROR), str(exc)
    if isinstance(exc, (client.AgentUnavailable, client.AgentError, SandboxError)):
        return ExitCode.ERROR, str(exc)
    if isinstance(exc, httpx.HTTPError):
        return ExitCode.ERROR, f"cannot talk to the agent: {type(exc).__name__} {exc}".strip()
    if isinstance(exc, OSError):  # e.g. a read-only state dir: "path: reason", as Unix says it
        if not exc.filename:
            return ExitCode.ERROR, str(exc) or type(exc).__name__
        path = str(exc.filename)
        link = f" (a symlink to {os.readlink(path)})" if os.path.islink(path) else ""
        return ExitCode.ERROR, f"{path}{link}: {exc.strerror or exc}"
    return None


def _settings(report_killed_runs: bool = True):
    """The settings. A bad value ends the command (one line, exit 2); a CHAOS_* variable that
    nothing reads is named in a warning, since pydantic-settings would ignore it silently.
    Also says, once, what became of runs killed since the last command (not in the agent
    itself: it runs unseen, and would swallow the news)."""
    from pydantic_settings import SettingsError

    from chaos_tui.settings import load_settings, unknown_variables
    from chaos_tui.statedir import StateDirProblem, prepare_state_dir

    unknown = unknown_variables()
    if unknown:
        click.echo(f"chaos-tui: warning: unknown setting{'s' * (len(unknown) > 1)} "
                   f"{', '.join(unknown)}", err=True)
    try:
        settings = load_settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "CHAOS_" + "__".join(str(p).upper() for p in err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        raise UsageProblem(f"bad setting {where}: {reason}") from None
    except SettingsError as exc:  # a nested group (CHAOS_AGENT=...) that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        where = f"CHAOS_{field.group(1).upper()}" if field else "CHAOS_*"
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise UsageProblem(f"bad setting {where}: not valid JSON{cause}") from None
    try:  # every command that touches the state dir comes through here first, the agent too
        prepare_state_dir(settings.state_dir)
    except StateDirProblem as exc:
        raise UsageProblem(str(exc)) from None
    if report_killed_runs:
        _report_killed_runs(settings)
    return settings


def _report_killed_runs(settings) -> None:
    """A run killed since the last command is said once, with what became of its faults."""
    from chaos_tui.crash_report import report_killed_runs

    for line in report_killed_runs(Path(settings.state_dir)):
        click.echo(f"chaos-tui: {line}", err=True)


def _answer_soon(client, call):
    """Await one quick agent call (status, leases) for STATUS_TIMEOUT_S at most."""
    from chaos_tui.agent.client import AgentUnavailable

    async def go():
        try:
            return await asyncio.wait_for(call, STATUS_TIMEOUT_S)
        except TimeoutError:
            pid = (client.info() or {}).get("pid")
            raise AgentUnavailable(
                f"the agent (pid {pid}) did not answer within {STATUS_TIMEOUT_S:g} s"
                + (f"; it is stopped (SIGSTOP?): `kill -CONT {pid}` resumes it"
                   if _is_stopped(pid) else f"; see {client.folder / 'agent.log'}")) from None

    return asyncio.run(go())


def _is_stopped(pid: int | None) -> bool:
    from chaos_tui.core.procinfo import proc_stat

    found = proc_stat(pid) if pid is not None else None
    return found is not None and found[0] in "tT"


def parse_params(scenario_cls, assignments: tuple[str, ...]):
    """`--set key=value` pairs, validated against the scenario's parameter model."""
    values = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageProblem(f"--set expects KEY=VALUE, got {item!r}")
        values[key.strip()] = value.strip()
    try:
        return scenario_cls.Params(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "?"
        known = ", ".join(scenario_cls.Params.model_fields)
        raise UsageProblem(
            f"bad --set {field} for {scenario_cls.name}: {err['msg']} (parameters: {known})"
        ) from None


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--headless", is_flag=True, help="Run one scenario without the console (for CI).")
@click.option("--scenario", "scenario_name", metavar="NAME", help="Scenario to run (see `chaos-tui list`).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON result here instead of stdout.")
@click.option("--json", "as_json", is_flag=True, help="The JSON result on stdout even when it is a terminal.")
@click.option("--target", "target_name", default="sandbox", show_default=True, help="Where faults land.")
@click.option("--enable-chaos", is_flag=True, help="Allow faults on a target that is not the sandbox.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Override a scenario parameter (repeatable).")
@click.option("--rate", "rate_hz", type=float, default=None, help="Probe sampling rate in Hz (default 10).")
@click.option("--invariant-budget", type=float, default=None, help="Seconds allowed for checking invariants.")
@click.option("--keep-sandbox", is_flag=True, help="Leave a sandbox this run started running afterwards.")
@click.version_option(__version__, prog_name="chaos-tui")
@click.pass_context
def cli(ctx, headless, scenario_name, output, as_json, target_name, enable_chaos, assignments, rate_hz,
        invariant_budget, keep_sandbox):
    """chaos-tui: break your stack on purpose, watch it recover, get a verdict with numbers.

    \b
    chaos-tui --headless --scenario postgres_restart_outbox
    chaos-tui list
    chaos-tui sandbox up|down|status
    """
    if ctx.invoked_subcommand is not None:
        if headless or scenario_name:
            fail(ExitCode.USAGE, "--headless/--scenario go without a subcommand")
        return
    from chaos_tui.core.guard import check_enabled, check_not_production
    from chaos_tui.core.runner import RunOptions
    from chaos_tui.headless import check_output_path
    from chaos_tui.scenarios import UnknownScenario, get_scenario
    from chaos_tui.targets import TARGET_NAMES, make_target

    settings = _settings()
    if headless:
        check_not_production(settings)  # first, whatever else was asked
    try:
        if headless and not scenario_name:
            raise UsageProblem("--headless needs --scenario NAME (see `chaos-tui list`)")
        if assignments and not scenario_name:
            raise UsageProblem("--set needs --scenario NAME: parameters belong to a scenario")
        scenario_cls = get_scenario(scenario_name) if scenario_name else None
        params = parse_params(scenario_cls, assignments) if scenario_cls else None
        if target_name not in TARGET_NAMES:
            raise UsageProblem(f"unknown target {target_name!r} (known: {', '.join(TARGET_NAMES)})")
        if rate_hz is not None and not 0 < rate_hz <= 100:
            raise UsageProblem(f"--rate must be between 0 and 100 Hz, got {rate_hz:g}")
        if invariant_budget is not None and invariant_budget <= 0:
            raise UsageProblem(f"--invariant-budget must be positive, got {invariant_budget:g}")
        if output is not None:
            if not headless:
                raise UsageProblem("--output goes with --headless (the console exports from its report)")
            check_output_path(output)
        if as_json and not headless:
            raise UsageProblem("--json goes with --headless (the console exports from its report)")
    except (UnknownScenario, UsageProblem, OSError) as exc:
        fail(ExitCode.USAGE, str(exc))
    options = RunOptions(
        rate_hz=rate_hz or settings.probe_rate_hz,
        invariant_budget_s=invariant_budget or settings.invariant_budget_s,
        record_dir=Path(settings.state_dir) / "runs",
    )
    if not headless:
        code = run_console(settings, target_name, scenario_name, params, options,
                           enable_chaos, keep_sandbox)
        raise SystemExit(code)

    from chaos_tui.headless import run_headless
    from chaos_tui.sandbox.usage import RunBusy, RunLock

    target = make_target(target_name, settings)
    check_enabled(target.name, target.is_sandbox, settings.enabled or enable_chaos)
    run_lock = RunLock(Path(settings.state_dir), scenario_cls.profile)  # held until exit
    try:  # one run per profile and state dir: a second is refused, nothing started
        run_lock.acquire(scenario_cls.name)
    except RunBusy as exc:
        fail(ExitCode.USAGE, str(exc))
    except OSError as exc:
        fail(ExitCode.USAGE, f"cannot lock {settings.state_dir} for this run: {exc}")
    code = run_headless(
        scenario_cls(params),
        target,
        options=options,
        results_dir=Path(settings.state_dir) / "results",
        output=output,
        stop_sandbox_after=not keep_sandbox,
        json_to_stdout=True if as_json else None,
    )
    raise SystemExit(code)


def run_console(settings, target_name, scenario_name, params, options, enable_chaos,
                keep_sandbox) -> int:
    """The Textual console. It opens even where chaos is refused (production, a target not
    enabled): it then shows why, and nothing can be run from it."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail(ExitCode.USAGE, "the console needs a terminal; without one use "
                             "--headless --scenario NAME")
    from chaos_tui.app import ChaosApp

    app = ChaosApp(
        settings,
        target_name=target_name,
        params={scenario_name: params} if scenario_name and params is not None else None,
        options=options,
        enable_chaos=enable_chaos,
        open_scenario=scenario_name,
    )
    session = console_session(app, keep_sandbox)
    session.install()
    return session.run(lambda: console_body(app, session), after=_tell_heal_failed)


def console_session(app, keep_sandbox: bool):
    """The console's run session. While the app runs, every signal goes to it (it aborts a
    run, heals, then exits, and says so of later ones); once it has stopped, signals are
    reported and ignored until the heal, the saved result and the stopping of what the
    console started are done. Any signal ends the console as interrupted (130)."""
    from chaos_tui.session import RunSession

    return RunSession(app.target, app.results_dir, who="the console", abort=app.on_signal,
                      repeat=app.on_signal, keep_sandbox=keep_sandbox, saver=app.saver,
                      signal_is_interrupt=True)


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


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_scenarios(as_json):
    """List the built-in scenarios."""
    from chaos_tui.scenarios import SCENARIOS

    rows = [
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


PROFILE_HELP = ("Start only this profile (repeatable): chaos-outbox, chaos-opa, chaos-observe, "
                "mesh. Default: all of them.")


@sandbox.command("up")
@click.option("--profile", "profiles", multiple=True, metavar="NAME", help=PROFILE_HELP)
def sandbox_up(profiles):
    """Start the sandbox (or what of it is not running)."""
    import httpx

    from chaos_tui.agent.client import AgentError, AgentUnavailable
    from chaos_tui.sandbox.postgres import SandboxError
    from chaos_tui.sandbox.services import PROFILES
    from chaos_tui.targets.sandbox import SandboxTarget

    sb = _sandbox()
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        fail(ExitCode.USAGE, f"unknown profile {unknown[0]!r} (known: {', '.join(PROFILES)})")
    target = SandboxTarget(sb.settings)

    async def up() -> None:
        for profile in profiles or PROFILES:
            if profile == "mesh":  # its link runs through the fault agent's proxies
                await target.ensure_up(profile)
            else:
                await asyncio.to_thread(sb.up, target.started, [profile])

    try:
        asyncio.run(up())
    except (SandboxError, AgentUnavailable, AgentError, httpx.HTTPError, OSError,
            RuntimeError) as exc:
        fail(ExitCode.ERROR, f"sandbox up: {exc}")
    started = target.started + (["agent"] if target.agent_started else [])
    click.echo(f"started: {', '.join(started)}" if started else "already running")
    if "mesh" in (profiles or PROFILES):
        click.echo("the mesh link runs through the fault agent's proxies "
                   "(`chaos-tui sandbox down` stops the agent too)")
    _print_status(sb.status())


@sandbox.command("down")
def sandbox_down():
    """Stop every sandbox process this tool started, and the fault agent (data is kept)."""
    from chaos_tui.agent.client import AgentClient, AgentUnavailable
    from chaos_tui.core.guard import check_not_production
    from chaos_tui.sandbox.postgres import SandboxError

    sb = _sandbox(starts_something=False)
    try:  # runs using the sandbox see this and end at once, as errors (healed)
        sb.mark_down()
    except (SandboxError, OSError) as exc:
        fail(ExitCode.ERROR, f"sandbox down: {exc}")
    client = AgentClient(sb.settings)
    if client.info() is None and any((client.folder / "leases").glob("*.json")):
        # A dead agent's leases: heal them now (a new agent does that first), or a later
        # start would heal them by starting single services of a stack that is down.
        check_not_production(sb.settings)  # that needs an agent, and none starts there
        try:
            asyncio.run(client.ensure())
        except AgentUnavailable as exc:
            fail(ExitCode.ERROR, f"sandbox down: leftover leases could not be healed: {exc}")
    pid, code = _stop_agent(client)  # it heals its leases first
    try:
        stopped = sb.down()
    except (SandboxError, OSError) as exc:
        fail(ExitCode.ERROR, f"sandbox down: {exc}")
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
        fail(ExitCode.USAGE, f"unknown service {service!r} (known: {', '.join(BY_NAME)})")
    sb = _sandbox()
    try:
        stopped = sb.down(only=[service])
        sb.start(service)
    except (SandboxError, OSError, RuntimeError) as exc:
        fail(ExitCode.ERROR, f"sandbox restart {service}: {exc}")
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


# -- the fault agent ---------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: any free one, see status).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@click.option("--started-by", type=click.Choice(["user", "guardian"]), default="user",
              hidden=True)  # the guardian's replacement: its leftover heals are the guardian's
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
    run_agent(settings, host or settings.agent.host,  # it refuses in production first
              settings.agent.port if port is None else port, allow_remote,
              announce=lambda line: click.echo(line, err=True), started_by=started_by)


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
            for item in (await client.status())["recovered"]:
                state = "healed" if item["healed"] else f"heal FAILED: {item['error']}"
                click.echo(f"leftover lease {item['id']} ({item['kind']} "
                           f"{json.dumps(item['params'])}) of a dead agent: {state}", err=True)
        return await action(client)

    try:
        return asyncio.run(go())
    finally:
        if spawned:  # started only for this command: nothing is live now, let it go
            client.stop_spawned()


def _print_heals(results: list[dict]) -> int:
    for r in results:
        click.echo(f"lease {r['id']}: " + ("healed" if r["healed"] else f"heal FAILED: {r['error']}")
                   + (f" (warning: {r['warning']})" if r.get("warning") else ""))
    if not results:
        click.echo("no live lease")
    return int(ExitCode.HEAL_FAILED) if any(not r["healed"] for r in results) else 0


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
    if as_json:
        click.echo(json.dumps({"running": True, "url": client.info()["url"], **health}, indent=2))
        return
    click.echo(f"agent pid {health['pid']} at {client.info()['url']}: {health['leases']} lease(s)"
               + (", HALTED" if health["halted"] else ""))


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

    from chaos_tui.agent.history import LeaseHistory

    since = time.time()
    pid, stopped = client.stop_running(announce=lambda line: click.echo(line, err=True))
    if pid is None:
        left = sorted(p.stem for p in (client.folder / "leases").glob("*.json"))
        if left:  # a dead agent's (its guardian may be replacing it): nothing healed them yet
            click.echo(f"no agent running, yet {len(left)} lease(s) on disk: "
                       f"{', '.join(left)}; `chaos-tui heal` heals them", err=True)
            return None, int(ExitCode.HEAL_FAILED)
        return None, 0
    if not stopped:
        fail(ExitCode.ERROR, f"the fault agent (pid {pid}) did not stop")
    ended = {e["id"]: e for e in LeaseHistory(client.folder / "history.jsonl").entries()
             if e.get("ended_at", 0) >= since - 1}
    left = sorted(p.stem for p in (client.folder / "leases").glob("*.json"))
    failed = [lease_id for lease_id in left if lease_id not in ended]
    for lease_id, entry in ended.items():
        note = " (but its journal file could not be removed)" if lease_id in left else ""
        click.echo(f"lease {lease_id}: healed ({entry['by']}){note}")
    for lease_id in failed:
        click.echo(f"lease {lease_id}: heal FAILED; it stays on disk for the next agent "
                   "(`chaos-tui heal`)", err=True)
    if failed:
        return pid, int(ExitCode.HEAL_FAILED)
    return pid, int(ExitCode.ERROR) if left else 0


@cli.command("heal")
def heal():
    """Heal every live lease now (starting the agent if needed: it heals leftovers first)."""
    async def heal_and_look(client):
        def journal() -> set[str]:
            return {path.stem for path in (client.folder / "leases").glob("*.json")}

        before = journal()  # not what a run journals meanwhile: that is no failed heal
        results = await client.heal_all()
        # What the agent could not even read (a torn lease file) is in no result, yet may
        # still be a live fault: the journal on disk has the last word on what is left.
        stays = (before & journal()) - {r["id"] for r in results}
        return results + [{"id": lease_id, "healed": False,
                           "error": f"its journal file stays in {client.folder / 'leases'}"}
                          for lease_id in sorted(stays)]

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
    from chaos_tui.agent.leases import LeaseJournal

    client = AgentClient(_settings())
    rows = []
    if client.info() is not None:  # a listing starts nothing
        rows = _answer_soon(client, client.leases())
    elif (client.folder / "leases").is_dir():  # what is on disk is what a dead agent left
        leftover, unreadable = LeaseJournal(client.folder / "leases").load_all()
        rows = [lease.model_dump() for lease in leftover]
        if rows or unreadable:
            click.echo(f"no agent running: {len(rows) + len(unreadable)} leftover lease(s) "
                       "on disk; `chaos-tui heal` starts one to heal them", err=True)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no live lease")
    for r in rows:
        left = r["expires_at"] - time.time()
        click.echo(f"{r['id']}  {r['kind']} {json.dumps(r['params'])} on {r['target']}  "
                   f"{r['state']}  expires in {left:.0f}s  owner {r['owner'] or '-'}"
                   + (f"  run {r['run_id']}" if r.get("run_id") else ""))


def main(argv: list[str] | None = None) -> int:
    """Entry point: click's usage errors become one line instead of a usage dump."""
    try:
        cli.main(args=argv, prog_name="chaos-tui", standalone_mode=False)
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
        code, line = problem
        click.echo(f"chaos-tui: {line}", err=True)
        return int(code)
    return 0
