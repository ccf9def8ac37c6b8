"""The console, driven by Textual's Pilot against the real sandbox: every flow a user takes.

The fault is real (Postgres is SIGKILLed); so is the heal each test checks afterwards.
"""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console
from textual.widgets import DataTable, Label, Static

from chaos_tui.app import ChaosApp
from chaos_tui.core.journal import latest_result
from chaos_tui.core.report import result_facts
from chaos_tui.scenarios import SCENARIOS
from chaos_tui.scenarios.postgres_restart_outbox import Params
from chaos_tui.screens.confirm import AskScreen, ConfirmRunScreen
from chaos_tui.screens.detail import DetailScreen
from chaos_tui.screens.help import HelpScreen
from chaos_tui.screens.picker import PickerScreen
from chaos_tui.screens.report import ReportScreen
from chaos_tui.screens.run import RunScreen
from chaos_tui.settings import Settings
from chaos_tui.widgets.title_bar import TitleBar

NAME = "postgres_restart_outbox"
SIZE = (140, 45)


@pytest.fixture
def make_app(tmp_path):
    """Builds consoles; afterwards stops the agent any of them started, as `chaos-tui` does."""
    apps = []

    def build(state_dir, down_s: float = 2.0) -> ChaosApp:
        params = Params(warmup_s=1, down_s=down_s, recover_s=2)
        apps.append(
            ChaosApp(Settings(state_dir=state_dir), params={NAME: params}, export_dir=tmp_path)
        )
        return apps[-1]

    yield build
    for app in apps:
        app.target.stop_what_we_started(keep_sandbox=True)


async def wait_until(pilot, condition, timeout: float = 90.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.05)


def report_shown(app) -> bool:
    """The report screen is up and composed (a switched-to screen mounts its widgets a moment
    later: querying at once can find nothing)."""
    return isinstance(app.screen, ReportScreen) and bool(app.screen.query("#report"))


async def open_confirmation(pilot) -> None:
    await pilot.press("enter")  # picker -> detail
    assert isinstance(pilot.app.screen, DetailScreen)
    await pilot.press("r")
    assert isinstance(pilot.app.screen, ConfirmRunScreen)


async def start_run(pilot) -> None:
    await open_confirmation(pilot)
    await pilot.press(*NAME, "enter")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen), 5, "the run screen")


async def start_run_until_fault(pilot) -> None:
    await start_run(pilot)
    await wait_until(pilot, lambda: pilot.app.live.live_faults, 30, "the fault")


def shown(widget) -> str:
    """The text a widget displays, as a terminal of the test's width would show it."""
    console = Console(width=SIZE[0], record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def postgres_pid(sandbox) -> int:
    return sandbox.sandbox.record("postgres").pid


async def test_picker_lists_the_scenario_and_filters(sandbox, tmp_path, make_app):
    app = make_app(sandbox.state_dir)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, PickerScreen)
        table = app.screen.query_one(DataTable)
        names = [table.get_row_at(i)[0] for i in range(table.row_count)]
        assert names == list(SCENARIOS)  # the main job first, then the platform scenarios
        await pilot.press("slash", *"no-such-thing")
        assert table.row_count == 0
        await pilot.press(*["backspace"] * len("no-such-thing"), *"opa")
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["opa_restart"]
        await pilot.press("escape")
        assert table.row_count == len(SCENARIOS)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, PickerScreen)


async def test_wrong_confirmation_keeps_the_modal_and_injects_nothing(sandbox, tmp_path, make_app):
    pid = postgres_pid(sandbox)
    app = make_app(sandbox.state_dir)
    async with app.run_test(size=SIZE) as pilot:
        await open_confirmation(pilot)
        await pilot.press(*"postgres_restart", "enter")
        assert isinstance(app.screen, ConfirmRunScreen), "a wrong name must keep the modal open"
        error = shown(app.screen.query_one("#confirm-error", Label))
        assert "nothing was injected" in error
        await pilot.press(*(NAME + " extra"), "enter")
        assert isinstance(app.screen, ConfirmRunScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DetailScreen)
        await pilot.pause(0.5)
        assert app.run_in_progress is None and app.live is None
    assert postgres_pid(sandbox) == pid, "Postgres was restarted although nothing was confirmed"


async def test_production_environment_never_opens_the_modal(tmp_path):
    app = ChaosApp(Settings(state_dir=tmp_path / "state", environment="production"))
    async with app.run_test(size=SIZE) as pilot:
        assert "LOCKED" in shown(app.screen.query_one(TitleBar))
        await pilot.press("enter", "r")
        assert isinstance(app.screen, DetailScreen), "the confirmation must not open"
        assert app.run_in_progress is None
        messages = [n.message for n in app._notifications]
        assert any("production" in m for m in messages), messages
    assert not (tmp_path / "state" / "sandbox.json").exists(), "nothing may be started"


async def test_any_deploy_variable_locks_the_console(tmp_path, monkeypatch):
    """Issue 12, point 8: NODE_ENV / APP_ENV / ... count as much as ENVIRONMENT."""
    monkeypatch.setenv("NODE_ENV", "eu-prod")
    app = ChaosApp(Settings(state_dir=tmp_path / "state"))
    async with app.run_test(size=SIZE) as pilot:
        assert "NODE_ENV='eu-prod'" in shown(app.screen.query_one(TitleBar))
        await pilot.press("enter", "r")
        assert isinstance(app.screen, DetailScreen), "the confirmation must not open"
        assert app.run_in_progress is None
    assert not (tmp_path / "state" / "sandbox.json").exists(), "nothing may be started"


@pytest.mark.slow
async def test_right_name_runs_shows_the_fault_and_reports_pass(sandbox, tmp_path, make_app):
    pid = postgres_pid(sandbox)
    app = make_app(sandbox.state_dir, down_s=4)
    async with app.run_test(size=SIZE) as pilot:
        await start_run(pilot)
        screen = app.screen
        banner = screen.query_one("#banner")
        seen: list[str] = []

        def banner_up_while_the_fault_is_live() -> bool:
            # Sampled together: on a slow machine a fixed pause could outlast the fault, and a
            # banner hidden after the heal is right, not a failure.
            if app.live.chaos_live and app.live.windows and banner.display:
                seen.append(shown(banner))
            return bool(seen) or app.live.finished

        await wait_until(pilot, banner_up_while_the_fault_is_live, 30, "the fault")
        assert seen, "CHAOS MODE banner hidden all the while a fault was live"
        assert "CHAOS MODE" in seen[0]
        await wait_until(pilot, lambda: report_shown(app), 120, "the report")
        result = app.screen.result
        assert result.outcome == "pass", result.reason
        assert result.injection_windows and result.heal.ok and result.heal.verified
        report = shown(app.screen.query_one("#report", Static))
        saved = latest_result(sandbox.state_dir / "results", NAME)
        assert saved is not None and saved.run_id == result.run_id
        for label, value in result_facts(saved):  # the same numbers as the JSON result
            assert label in report and value in report, (label, value)
        await pilot.press("e", "m", "e", "j")  # e then a format: no single key writes
        exported = sorted(p.suffix for p in tmp_path.iterdir())
        assert exported == [".json", ".md"]
    assert postgres_pid(sandbox) != pid, "the fault never reached Postgres"
    assert sandbox.sandbox.healthy("postgres")


@pytest.mark.slow
async def test_ctrl_c_during_the_fault_aborts_and_heals(sandbox, tmp_path, make_app):
    app = make_app(sandbox.state_dir, down_s=30)
    async with app.run_test(size=SIZE) as pilot:
        await start_run_until_fault(pilot)
        assert not sandbox.sandbox.healthy("postgres")
        aborted = time.monotonic()
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: report_shown(app), 60, "the report")
        took = time.monotonic() - aborted
        result = app.screen.result
        assert result.outcome == "interrupted"
        assert result.heal.ok and result.heal.verified
        assert took < 25, f"abort took {took:.1f}s: the 30 s fault was not cut short"
    assert sandbox.sandbox.healthy("postgres")


@pytest.mark.slow
async def test_halt_heals_at_once_and_the_run_still_gets_a_verdict(sandbox, tmp_path, make_app):
    app = make_app(sandbox.state_dir, down_s=30)
    async with app.run_test(size=SIZE) as pilot:
        await start_run_until_fault(pilot)
        await pilot.press("h")
        await wait_until(pilot, lambda: report_shown(app), 90, "the report")
        result = app.screen.result
        w = result.injection_windows[0]
        assert w.healed_at - w.injected_at < 15, "halt did not cut the 30 s fault short"
        assert result.outcome == "pass", result.reason
    assert sandbox.sandbox.healthy("postgres")


@pytest.mark.slow
async def test_quit_during_a_run_asks_then_heals_before_exiting(sandbox, tmp_path, make_app):
    app = make_app(sandbox.state_dir, down_s=30)
    async with app.run_test(size=SIZE) as pilot:
        await start_run_until_fault(pilot)
        await pilot.press("q")
        assert isinstance(app.screen, AskScreen)
        await pilot.press("n")  # keep running: nothing changes
        assert isinstance(app.screen, RunScreen) and app.run_in_progress is not None
        await pilot.press("ctrl+p", *"Quit")  # the palette's own Quit asks the same question
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen), 5, "the question")
        await pilot.press("y")
        deadline = time.monotonic() + 60
        while app.is_running and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert not app.is_running, "the app did not exit after healing"
    result = app.last_result
    assert result is not None and result.outcome == "interrupted"
    assert result.heal.ok
    assert sandbox.sandbox.healthy("postgres"), "quitting left Postgres down"


@pytest.mark.slow
async def test_an_app_that_dies_mid_run_still_heals(sandbox, tmp_path, make_app):
    app = make_app(sandbox.state_dir, down_s=30)
    async with app.run_test(size=SIZE) as pilot:
        await start_run_until_fault(pilot)
        app.exit()  # what a crash in a widget does: no question, no abort
    assert app.run_in_progress is not None, "the run outlived the app, as it must"
    await app.settle()  # what `chaos-tui` does after the app stops
    result = app.last_result
    assert result.outcome == "interrupted" and result.heal.ok and result.heal.verified
    assert sandbox.sandbox.healthy("postgres")


@pytest.mark.slow
async def test_command_palette_offers_run_heal_and_halt(sandbox, tmp_path, make_app):
    """Idle: the scenarios to run. During a real run, on its screen: heal, halt and abort
    (tests/test_tui_keys.py checks the states without a sandbox)."""
    app = make_app(sandbox.state_dir, down_s=30)
    async with app.run_test(size=SIZE) as pilot:
        idle = [c.title for c in app.get_system_commands(app.screen)]
        assert f"Run {NAME}" in idle and "Halt" not in idle, idle
        await start_run_until_fault(pilot)
        running = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Heal live faults", "Halt", "Abort run"):
            assert wanted in running, running
        assert f"Run {NAME}" not in running
        await pilot.press("h")
        await wait_until(pilot, lambda: report_shown(app), 90, "the report")
    assert sandbox.sandbox.healthy("postgres")


@pytest.mark.slow
async def test_a_platform_scenario_runs_in_the_console_with_its_own_numbers(
    fresh_state_dir, tmp_path
):
    """The mesh: its own profile started on demand, the link cut through the agent's proxies,
    and its measurements on the report exactly as in the saved result."""
    from chaos_tui.scenarios.nats_partition_mesh import Params as MeshParams

    name = "nats_partition_mesh"
    app = ChaosApp(
        Settings(state_dir=fresh_state_dir),
        export_dir=tmp_path,
        open_scenario=name,
        params={name: MeshParams(warmup_s=1, cut_s=2, recover_s=1)},
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen), 10, "details")
            await pilot.press("r", *name, "enter")
            await wait_until(pilot, lambda: app.live.live_faults, 60, "the cut")
            assert [w.fault for w in app.live.live_faults] == ["cut_link:full"]
            assert app.live.chaos_live
            await wait_until(pilot, lambda: report_shown(app), 120, "the report")
            result = app.screen.result
            assert result.outcome == "pass", result.reason
            assert result.measurements["messages published during cut"] > 0
            report = shown(app.screen.query_one("#report", Static))
            saved = latest_result(fresh_state_dir / "results", name)
            for label, value in result_facts(saved):
                assert label in report and value in report, (label, value)
    finally:
        app.target.stop_what_we_started(keep_sandbox=False)


@pytest.mark.slow
async def test_a_fail_open_gateway_shows_fails_closed_broken_before_the_heal(
    fresh_state_dir, tmp_path, monkeypatch
):
    """The gateway's test mode allows when OPA is unreachable: the invariants panel must turn
    fails_closed red while OPA is still down, not only once the run is over."""
    from chaos_tui.scenarios.opa_restart import Params as OpaParams

    monkeypatch.setenv("CHAOS_SANDBOX__GATEWAY_TEST_FAIL_OPEN", "true")
    name = "opa_restart"
    app = ChaosApp(
        Settings(state_dir=fresh_state_dir),
        export_dir=tmp_path,
        open_scenario=name,
        params={name: OpaParams(warmup_s=1, down_s=5, recover_s=1)},
    )
    healed: list[float] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen), 10, "details")
            await pilot.press("r", *name, "enter")
            await wait_until(pilot, lambda: app.live.live_faults, 90, "OPA killed")
            run_screen = app.screen

            def fails_closed_row() -> str:
                panel = shown(run_screen.query_one("#invariants", Static))
                return next((row for row in panel.splitlines() if "fails_closed" in row), "")

            def broken() -> bool:
                healed.extend(w.healed_at for w in app.live.windows if w.healed_at is not None)
                return "✘" in fails_closed_row()

            await wait_until(pilot, broken, 30, "fails_closed red in the invariants panel")
            assert app.live.live_faults and not healed, "it turned red only after the heal"
            assert "so far" in fails_closed_row()
            banner = run_screen.query_one("#banner").content.plain
            assert "fails_closed broke at +" in banner, banner
            assert sum("BROKE" in line.text for line in app.live.log) == 1  # the event log, once
            await wait_until(pilot, lambda: report_shown(app), 120, "the report")
            result = app.screen.result
            closed = next(i for i in result.invariants if i.name == "fails_closed")
            assert result.outcome == "fail" and not closed.passed
            window = result.injection_windows[0]
            assert closed.broke_at is not None and closed.broke_at < window.healed_at
    finally:
        app.target.stop_what_we_started(keep_sandbox=False)
