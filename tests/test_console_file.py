"""The console with a scenario file (issue 14), against the user's own service: a real HTTP
server on a loopback port, a YAML file in tmp_path that kills it by its port and restarts it,
and the console driven by Textual's pilot (and once as `chaos-tui` in a pseudo-terminal, to
show that CHAOS_FILE reaches it).

What is checked is what the user sees before typing the name: the file scenario listed with
its source, the exact pid and command line it will kill and the command the agent will run,
in the detail view and in the typed confirmation; then that typing it runs exactly that."""

from __future__ import annotations

import io
import json
import signal
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable, Static

from chaos_tui.agent.client import AgentClient
from chaos_tui.app import ChaosApp
from chaos_tui.cli.run import _target_name
from chaos_tui.core.procinfo import listeners
from chaos_tui.from_file.load import load_scenarios
from chaos_tui.screens.confirm import ConfirmRunScreen
from chaos_tui.screens.detail import DetailScreen
from chaos_tui.screens.picker import PickerScreen
from chaos_tui.screens.report import ReportScreen
from chaos_tui.settings import Settings
from tests.conftest import env_for
from tests.pty_console import PtyConsole
from tests.test_process_faults import (
    free_port,
    restart_command,
    server,  # noqa: F401 - the fixture, by name
    start_server,
)

SIZE = (140, 45)
NAME = "own_crash"


def scenario_file(tmp_path: Path, port: int, restart: str | None = None) -> Path:
    restart_line = f"        restart: {json.dumps(restart)}\n" if restart else ""
    path = tmp_path / "own.yaml"
    path.write_text(f"""\
version: 1
scenarios:
  {NAME}:
    hypothesis: "the service answers again within 5 s of a crash"
    warmup_seconds: 0.5
    recover_seconds: 1
    steady_state:
      - http_200_from: http://127.0.0.1:{port}/
        name: service
    actions:
      - type: kill_process
        target: {{listening_on: {port}}}
        duration_seconds: 1
{restart_line}    validation:
      - http_recovery_time_max_seconds: 5
""")
    return path


def proxy_file(tmp_path: Path, listen: int, upstream: int) -> Path:
    path = tmp_path / "slow.yaml"
    path.write_text(f"""\
version: 1
scenarios:
  slow_path:
    hypothesis: "100 ms more on the way in costs no request"
    steady_state:
      - http_200_from: http://127.0.0.1:{listen}/
        name: service
    actions:
      - type: latency
        proxy: {{listen: "127.0.0.1:{listen}", upstream: "127.0.0.1:{upstream}"}}
        latency: 100
        duration_seconds: 1
""")
    return path


def platform_file(tmp_path: Path) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text("""\
version: 1
scenarios:
  db_bounce:
    hypothesis: "the gateway shrugs off a database restart"
    steady_state:
      - http_200_from: http://127.0.0.1:1/
        name: gateway
    actions:
      - type: restart_container
        target: postgres
        duration_seconds: 2
""")
    return path


@pytest.fixture
def console(fresh_state_dir, tmp_path):
    """Consoles on the test's own state dir, chaos enabled as the user would enable it;
    afterwards whatever one started (the agent) is stopped, as `chaos-tui` does."""
    apps: list[ChaosApp] = []

    def build(file_scenarios: dict, target_name: str = "local") -> ChaosApp:
        app = ChaosApp(
            Settings(state_dir=fresh_state_dir),
            target_name=target_name,
            file_scenarios=file_scenarios,
            enable_chaos=True,
            export_dir=tmp_path,
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.target.stop_what_we_started(keep_sandbox=False)


def shown(widget) -> str:
    """A widget's text as a terminal of the test's width shows it, with the wrapping undone
    (a long command line wraps inside the detail view and the confirmation box)."""
    out = Console(width=SIZE[0], record=True, file=io.StringIO())
    out.print(widget.content)
    return " ".join(out.export_text().split())


def rows(app) -> list[list[str]]:
    """Each row's scenario, source and profile, found by the columns' labels (the picker puts
    the verdict and the duration right after the name)."""
    table = app.screen.query_one(DataTable)
    labels = [str(column.label) for column in table.columns.values()]
    picked = [labels.index(label) for label in ("scenario", "source", "profile")]
    return [[str(table.get_row_at(i)[j]) for j in picked] for i in range(table.row_count)]


def agent_running(state_dir: Path) -> bool:
    return AgentClient(Settings(state_dir=state_dir)).info() is not None


async def wait_until(pilot, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        await pilot.pause(0.05)


async def test_a_file_scenario_is_listed_shown_with_its_pids_confirmed_and_run(
    server,  # noqa: F811 - the imported fixture, by name
    tmp_path,
    fresh_state_dir,
    console,
):
    port, proc = server
    restart = restart_command(port)
    path = scenario_file(tmp_path, port, restart)
    command_line = " ".join(proc.args)  # what /proc/PID/cmdline says of it
    app = console(load_scenarios(path))
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, PickerScreen)
        assert [row[:3] for row in rows(app)] == [[NAME, "own.yaml", "local"]]
        assert f"from {path}" in shown(app.screen.query_one("#preview", Static))
        assert not app.screen.query_one("#picker-note", Static).display

        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        detail = shown(app.screen.query_one("#detail", Static))
        assert f"from {path}" in detail
        assert f"process {proc.pid}: {command_line}" in detail
        assert f"command run by the agent at the heal: {restart}" in detail

        await pilot.press("r")
        assert isinstance(app.screen, ConfirmRunScreen)
        asked = shown(app.screen.query_one("#confirm-radius", Static))
        assert f"process {proc.pid}: {command_line}" in asked, asked
        assert f"command run by the agent at the heal: {restart}" in asked, asked
        assert f"SIGKILL the process(es) listening on port {port}" in asked
        assert proc.poll() is None and not agent_running(fresh_state_dir), "nothing yet"

        await pilot.press(*NAME, "enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, ReportScreen) and app.last_result is not None,
            60,
            "the report",
        )
        result = app.last_result
        assert result.outcome == "pass", result.reason
        assert result.target == "local" and result.heal.ok
    assert proc.poll() == -signal.SIGKILL, "the process the confirmation named was killed"
    now = listeners(port)
    assert now and all(pid != proc.pid for pid, _ in now), "the restart command brought it back"


async def test_a_plan_that_cannot_be_made_is_one_line_and_the_run_is_refused(
    server,  # noqa: F811 - the imported fixture, by name
    tmp_path,
    fresh_state_dir,
    console,
):
    """The service died after its detail was seen: opened again, the scenario is planned
    again and says, in one line, that nothing listens there; `r` refuses with nothing
    injected. Once a service listens there again, `r` asks about that new process."""
    port, proc = server
    app = console(load_scenarios(scenario_file(tmp_path, port)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        assert f"process {proc.pid}: " in shown(app.screen.query_one("#detail", Static))
        await pilot.press("escape")
        proc.kill()
        proc.wait(5)

        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        detail = shown(app.screen.query_one("#detail", Static))
        refusal = f"cannot plan {NAME}: nothing listens on port {port} (as this user sees it)"
        assert refusal in detail, detail
        assert detail.count("cannot plan") == 1 and "blast radius" not in detail
        assert f"process {proc.pid}" not in detail, "an old plan shown again"

        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen), "no confirmation without a plan"
        refused = [n for n in app._notifications if n.title == "refused: nothing injected"]
        assert refused and f"nothing listens on port {port}" in refused[-1].message
        assert app.run_in_progress is None and app.live is None
        assert not agent_running(fresh_state_dir), "nothing may be started"

        again = start_server(port)  # the service is back, as a new process
        try:
            await pilot.press("r")
            assert isinstance(app.screen, ConfirmRunScreen)
            assert f"process {again.pid}: " in shown(app.screen.query_one("#confirm-radius"))
            await pilot.press("escape")
            assert isinstance(app.screen, DetailScreen)
            assert f"process {again.pid}: " in shown(app.screen.query_one("#detail", Static))
        finally:
            again.kill()
            again.wait(5)
    assert not agent_running(fresh_state_dir)


async def test_a_proxy_the_run_opens_is_in_every_plan_shown(tmp_path, fresh_state_dir, console):
    """Planned twice (the detail opened twice), the proxy is named both times, and in the
    confirmation; planning opens nothing."""
    listen, upstream = free_port(), free_port()
    app = console(load_scenarios(proxy_file(tmp_path, listen, upstream)))
    line = f"proxy 127.0.0.1:{listen} -> 127.0.0.1:{upstream} (opened for the run)"
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(2):
            await pilot.press("enter")
            assert line in shown(app.screen.query_one("#detail", Static))
            await pilot.press("escape")
        await pilot.press("enter", "r")
        assert isinstance(app.screen, ConfirmRunScreen)
        assert line in shown(app.screen.query_one("#confirm-radius", Static))
        await pilot.press("escape")
    assert not listeners(listen) and not agent_running(fresh_state_dir)


async def test_local_without_a_file_says_there_is_nothing_and_how_to_give_one(
    fresh_state_dir, console
):
    app = console({})
    async with app.run_test(size=SIZE) as pilot:
        note = app.screen.query_one("#picker-note", Static)
        assert note.display
        text = shown(note)
        assert "Nothing to run on target local" in text
        assert "--file FILE" in text and "CHAOS_FILE=FILE" in text and "chaos-tui init" in text
        assert rows(app) == []
        await pilot.press("enter", "r")
        assert isinstance(app.screen, PickerScreen)


async def test_a_file_scenario_for_another_target_is_named_with_where_it_runs(
    tmp_path, fresh_state_dir, console
):
    own = load_scenarios(scenario_file(tmp_path, free_port()))
    platform = load_scenarios(platform_file(tmp_path))

    app = console(own, target_name="sandbox")  # the built-ins, and a note for own_crash
    async with app.run_test(size=SIZE):
        assert NAME not in [row[0] for row in rows(app)]
        assert {row[1] for row in rows(app)} == {"built-in"}
        note = shown(app.screen.query_one("#picker-note", Static))
        assert f"{NAME} runs on your own system, with --target local" in note

    app = console(platform)  # on local: nothing of the user's own system in that file
    async with app.run_test(size=SIZE):
        assert rows(app) == []
        note = shown(app.screen.query_one("#picker-note", Static))
        assert "Nothing to run on target local" in note and "db_bounce runs" in note
        assert "--target sandbox or docker" in note

    app = console({**own, **platform}, target_name="sandbox")  # listed beside the built-ins
    async with app.run_test(size=SIZE):
        listed = {row[0]: row[1:3] for row in rows(app)}
        assert listed["db_bounce"] == ["platform.yaml", "chaos-outbox"]
        assert listed["postgres_restart_outbox"] == ["built-in", "chaos-outbox"]


def test_the_console_opens_on_local_for_a_file_of_the_users_own_system(tmp_path):
    own = load_scenarios(scenario_file(tmp_path, free_port()))
    platform = load_scenarios(platform_file(tmp_path))
    assert _target_name(None, None, own) == "local"
    assert _target_name(None, None, {**own, **platform}) == "sandbox"  # a note names own_crash
    assert _target_name(None, None, {}) == "sandbox"
    assert _target_name("sandbox", None, own) == "sandbox"  # as given


@pytest.mark.parametrize("how", ["CHAOS_FILE", "--file"])
def test_the_console_takes_the_file_from_chaos_file_or_file(tmp_path, fresh_state_dir, how):
    """`chaos-tui` itself, in a terminal: the file's scenario listed with its source, on
    target local without --target; q quits with nothing run."""
    path = scenario_file(tmp_path, free_port())
    if how == "CHAOS_FILE":
        env = env_for(fresh_state_dir, CHAOS_FILE=str(path), CHAOS_ENABLED="true")
        console = PtyConsole([], env)
    else:
        env = env_for(fresh_state_dir, CHAOS_ENABLED="true")
        console = PtyConsole(["--file", str(path)], env)
    try:
        console.wait_for(f" {NAME} ")  # a row of the list, with its source
        console.wait_for(" own.yaml ")
        console.wait_for("target local: chaos explicitly enabled")
        console.type("q")
        assert console.wait(15) == 0
    finally:
        console.close()


def test_the_console_on_local_without_a_file_says_how_to_give_one(fresh_state_dir):
    console = PtyConsole(["--target", "local"], env_for(fresh_state_dir))
    try:
        console.wait_for("Nothing to run on target local")
        console.type("q")
        assert console.wait(15) == 0
    finally:
        console.close()


def test_sigkill_of_the_console_mid_fault_still_restarts_the_service(
    server,  # noqa: F811 - the imported fixture, by name
    tmp_path,
    fresh_state_dir,
):
    """The console itself (`chaos-tui --file F --scenario NAME`, in a terminal) is SIGKILLed
    while its kill_process is held: nothing is typed afterwards, and the agent, finding the
    lease's owner dead, runs the file's restart command."""
    port, proc = server
    path = scenario_file(tmp_path, port, restart_command(port))
    path.write_text(path.read_text().replace("duration_seconds: 1", "duration_seconds: 60"))
    env = env_for(fresh_state_dir, CHAOS_ENABLED="true")
    console = PtyConsole(["--file", str(path), "--scenario", NAME], env)
    try:
        console.wait_for("blast radius")  # the detail view of the scenario, opened at start
        console.type("r")
        console.wait_for(f"Type {NAME} to run it")
        console.type(NAME + "\r")
        deadline = time.monotonic() + 60
        while proc.poll() is None:  # the fault has landed once the service is dead
            assert time.monotonic() < deadline, "the fault never landed"
            time.sleep(0.05)
        console.proc.send_signal(signal.SIGKILL)
        console.wait(5)
        deadline = time.monotonic() + 15
        while not listeners(port):
            assert time.monotonic() < deadline, "the service never came back"
            time.sleep(0.1)
    finally:
        console.close()
        AgentClient(Settings(state_dir=fresh_state_dir)).stop_spawned()
