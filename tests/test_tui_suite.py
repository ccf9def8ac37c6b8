"""A suite in the console (issue 19): scenarios queued in the picker with space, run after
the suite's name is typed once, each run showing where it stands in the suite, each result
saved, and the suite's report at the end; ctrl+c in a pause ends the suite at once. Real
sandbox runs with short windows."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Static

from chaos_tui.app import ChaosApp
from chaos_tui.cli.suite import prepare_suite
from chaos_tui.scenarios.opa_restart import OpaRestartParams
from chaos_tui.scenarios.postgres_restart_outbox import PostgresRestartParams
from chaos_tui.screens.confirm import ConfirmRunScreen
from chaos_tui.screens.run import RunScreen
from chaos_tui.screens.suite_report import SuiteReportScreen
from chaos_tui.settings import Settings
from tests.test_tui import SIZE, shown, wait_until

pytestmark = pytest.mark.slow
SHORT = {"warmup_s": 1, "hold_s": 2, "recover_s": 2}


def suite_shown(app) -> bool:
    return isinstance(app.screen, SuiteReportScreen) and bool(app.screen.query("#suite-runs"))


async def queue(pilot, name: str) -> None:
    await pilot.press("slash", *name, "enter", "space", "escape")


async def test_a_queue_runs_as_a_suite_after_its_name_is_typed(fresh_state_dir, tmp_path):
    app = ChaosApp(
        Settings(state_dir=fresh_state_dir),
        export_dir=tmp_path,
        params={
            "opa_restart": OpaRestartParams(**SHORT),
            "postgres_restart_outbox": PostgresRestartParams(**SHORT),
        },
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("R")  # nothing queued yet: said, nothing asked
            assert not isinstance(app.screen, ConfirmRunScreen)
            await queue(pilot, "opa_restart")
            await queue(pilot, "postgres_restart_outbox")
            assert app.queue == ["opa_restart", "postgres_restart_outbox"]
            line = shown(app.screen.query_one("#picker-queue", Static))
            assert "suite gameday: opa_restart → postgres_restart_outbox" in line
            await pilot.press("R")
            assert isinstance(app.screen, ConfirmRunScreen)
            radius = shown(app.screen.query_one("#confirm-radius", Static))
            assert "opa_restart:" in radius and "postgres_restart_outbox:" in radius
            await pilot.press(*"opa_restart", "enter")  # a scenario's name is not the suite's
            assert isinstance(app.screen, ConfirmRunScreen)
            await pilot.press(*"gameday", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, RunScreen), 30, "run 1")
            assert app.live.suite == "gameday run 1/2"
            await pilot.pause(0.7)  # the status line is painted twice a second
            status = shown(app.screen.query_one("#run-status"))
            assert "gameday run 1/2" in status
            await wait_until(pilot, lambda: app.live.scenario == "postgres_restart_outbox", 120)
            assert app.live.suite == "gameday run 2/2"
            await wait_until(pilot, lambda: suite_shown(app), 120, "the suite's report")
            report = app.screen.report
            assert [(r.scenario, r.outcome) for r in report.runs] == [
                ("opa_restart", "pass"),
                ("postgres_restart_outbox", "pass"),
            ]
            assert report.exit_code == 0 and app.screen.saved is not None
            assert json.loads(app.screen.saved.read_text())["suite"] == "gameday"
            assert app.screen.query_one(DataTable).row_count == 2
            summary = shown(app.screen.query_one("#suite-summary", Static))
            assert "suite gameday (opa_restart, postgres_restart_outbox): PASS 2 of 2" in summary
            await pilot.press("enter")  # the first run's own report
            await wait_until(pilot, lambda: type(app.screen).__name__ == "ReportScreen", 10)
            assert app.screen.result.run_id == report.runs[0].run_id
    finally:
        app.target.stop_what_we_started(keep_sandbox=False)


async def test_ctrl_c_in_a_suites_pause_ends_it_at_once(fresh_state_dir, tmp_path):
    suite_file = tmp_path / "slow.yaml"
    suite_file.write_text(
        "name: slow\npause: 10m\nruns:\n"
        "  - {scenario: opa_restart, set: {warmup_s: 1, hold_s: 2, recover_s: 2}}\n"
        "  - opa_restart\n"
    )
    suite, steps, _ = prepare_suite([], str(suite_file), None, None, (), None, None, False)
    app = ChaosApp(Settings(state_dir=fresh_state_dir), export_dir=tmp_path, suite=(suite, steps))
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert "suite slow: opa_restart → opa_restart, 600 s between runs" in shown(
                app.screen.query_one("#picker-queue", Static)
            )
            await pilot.press("space")  # the command line's suite is not edited here
            assert app.queue == []
            await pilot.press("R", *"slow", "enter")
            await wait_until(pilot, lambda: app.suite.pausing, 120, "the pause after run 1")
            await pilot.press("ctrl+c")
            await wait_until(pilot, lambda: suite_shown(app), 10, "the suite's report")
            report = app.screen.report
            assert [r.outcome for r in report.runs] == ["pass"]
            assert report.outcome == "interrupted" and report.stopped == "stopped by the operator"
            assert not app.suite.running
    finally:
        app.target.stop_what_we_started(keep_sandbox=False)
