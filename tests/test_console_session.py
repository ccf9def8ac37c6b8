"""The console ends like headless: its exit code says how the last run went (1 after a FAIL,
130 after an abort) and each run's result is saved once, through the same run session."""

from __future__ import annotations

import json

import pytest

import chaos_tui.session
from chaos_tui.app import ChaosApp
from chaos_tui.cli.run import console_session
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.scenarios.postgres_restart_outbox import Params
from chaos_tui.settings import Settings
from tests.conftest import env_for
from tests.pty_console import PtyConsole
from tests.test_tui import NAME, SIZE, report_shown, start_run, start_run_until_fault, wait_until

# The relay always takes longer than a millisecond to publish again: a sure FAIL.
FAILING = Params(warmup_s=1, down_s=1, recover_s=1, resume_limit_s=0.001)


@pytest.fixture
def save_calls(monkeypatch):
    """Every file write of a result, counted where the session makes it."""
    calls = []
    real = chaos_tui.session.save_result

    def counting(results_dir, result):
        calls.append(result.run_id)
        return real(results_dir, result)

    monkeypatch.setattr(chaos_tui.session, "save_result", counting)
    return calls


def run_console(app: ChaosApp, drive) -> int:
    """The console's own session (signal handlers aside: pytest keeps its own), with the app
    driven by Pilot instead of a terminal."""
    session = console_session(app, keep_sandbox=True)

    async def body():
        async with app.run_test(size=SIZE) as pilot:
            await drive(pilot)
        await app.settle()
        return app.last_result

    return session.run(body)


def test_the_console_exits_1_after_a_fail_and_saves_it_once(sandbox, tmp_path, save_calls):
    app = ChaosApp(
        Settings(state_dir=sandbox.state_dir), params={NAME: FAILING}, export_dir=tmp_path
    )

    async def drive(pilot):
        await start_run(pilot)
        await wait_until(pilot, lambda: report_shown(app), 90, "the report")
        await pilot.press("q")

    code = run_console(app, drive)
    assert app.last_result.outcome == "fail", app.last_result.reason
    assert code == ExitCode.FAIL
    assert save_calls == [app.last_result.run_id], save_calls


@pytest.mark.slow
def test_the_console_exits_130_after_an_abort_and_saves_it_once(sandbox, tmp_path, save_calls):
    app = ChaosApp(
        Settings(state_dir=sandbox.state_dir),
        params={NAME: Params(warmup_s=1, down_s=30, recover_s=1)},
        export_dir=tmp_path,
    )

    async def drive(pilot):
        await start_run_until_fault(pilot)
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: report_shown(app), 60, "the report")
        await pilot.press("q")

    code = run_console(app, drive)
    assert app.last_result.outcome == "interrupted" and app.last_result.heal.ok
    assert code == ExitCode.INTERRUPTED
    assert save_calls == [app.last_result.run_id], save_calls


def test_a_console_left_mid_run_heals_and_saves_once(sandbox, tmp_path, save_calls):
    """The app dies mid-run (no question, no abort): the session heals, saves, exits 130."""
    app = ChaosApp(
        Settings(state_dir=sandbox.state_dir),
        params={NAME: Params(warmup_s=1, down_s=30, recover_s=1)},
        export_dir=tmp_path,
    )

    async def drive(pilot):
        await start_run_until_fault(pilot)
        app.exit()

    code = run_console(app, drive)
    assert app.last_result.outcome == "interrupted" and app.last_result.heal.ok
    assert code == ExitCode.INTERRUPTED
    assert save_calls == [app.last_result.run_id], save_calls


def test_the_real_console_exits_1_after_a_fail(sandbox):
    """`chaos-tui` in a terminal: a FAIL, then q. It used to exit 0."""
    results = sandbox.state_dir / "results" / NAME
    before = set(results.glob("*.json"))
    console = PtyConsole(
        [
            "--scenario",
            NAME,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=1",
            "--set",
            "recover_s=1",
            "--set",
            "resume_limit_s=0.001",
        ],
        env_for(sandbox.state_dir),
    )
    try:
        console.wait_for("Run")  # the scenario's detail screen
        console.type("r")
        console.wait_for("the scenario name, exactly")
        console.type(f"{NAME}\r")
        console.wait_for("Scenarios", timeout=90)  # the report's footer: the run is over
        console.type("q")
        code = console.wait(30)
    finally:
        console.close()
    saved = set(results.glob("*.json")) - before
    assert len(saved) == 1, saved
    assert json.loads(saved.pop().read_text())["outcome"] == "fail"
    assert code == ExitCode.FAIL, console.text()[-1500:]


async def test_a_run_that_ended_as_the_console_quit_is_still_saved(tmp_path, save_calls):
    """The run task done, the worker that saves it cancelled by the app's shutdown before it
    could: settle saves it (and the exit code is then that run's)."""
    import asyncio
    import time

    from chaos_tui.core.model import RunResult

    app = ChaosApp(Settings(state_dir=tmp_path / "state"), export_dir=tmp_path)
    now = time.time()
    result = RunResult(
        run_id="endedatquit",
        scenario=NAME,
        hypothesis="",
        target="sandbox",
        outcome="fail",
        started_at=now - 5,
        finished_at=now,
        duration_s=5.0,
        probe_rate_hz=10.0,
    )

    async def the_run() -> RunResult:
        return result

    app._run_task = asyncio.ensure_future(the_run())
    await app._run_task
    await app.settle()
    assert app.last_result is result
    assert save_calls == ["endedatquit"]
    await app.settle()  # twice: still one file
    assert save_calls == ["endedatquit"]
