"""Screenshots of the console built from fixed data at a fixed terminal size.

Update them after a deliberate change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs under tests/__snapshots__/ before committing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import tui_queue_data

import tui_data
from chaos_tui.app import ChaosApp
from chaos_tui.core.journal import save_result
from chaos_tui.screens.report import ReportScreen
from chaos_tui.screens.run import RunScreen
from chaos_tui.settings import Settings

SIZE = (130, 42)
# The sizes every layout is pinned at: the smallest supported, a laptop, a large monitor.
SIZES = [(80, 24), (140, 42), (200, 50)]
SIZE_IDS = ["80x24", "140x42", "200x50"]
# A fixed path: the detail screen behind the confirmation shows the state directory.
STATE_DIR = Path("/tmp/chaos-tui-snapshot-state")


@pytest.fixture(autouse=True)
def fixed_clock_zone():
    """Timestamps in the event log and the picker are shown in local time: make it UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def app():
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    save_result(STATE_DIR / "results", tui_data.result())  # the picker's "last result"
    yield ChaosApp(Settings(state_dir=STATE_DIR), export_dir=STATE_DIR)
    shutil.rmtree(STATE_DIR, ignore_errors=True)


async def chart_drawn(pilot) -> None:
    """The chart is drawn in a thread: wait for it, so the screenshot always has it."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_picker(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE)


def test_picker_on_local_without_a_file(snap_compare):
    """Nothing to list: the picker says so and how to give a scenario file."""
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    app = ChaosApp(
        Settings(state_dir=STATE_DIR), target_name="local", enable_chaos=True, export_dir=STATE_DIR
    )
    try:
        assert snap_compare(app, terminal_size=SIZE)
    finally:
        shutil.rmtree(STATE_DIR, ignore_errors=True)


def test_confirmation_modal_after_a_wrong_name(snap_compare, app):
    assert snap_compare(app, press=["enter", "r", *"postgres", "enter"], terminal_size=SIZE)


def showing(make_screen):
    """A run_before that shows the screen made by `make_screen` and waits for its chart."""

    async def show(pilot):
        await pilot.app.push_screen(make_screen())
        await chart_drawn(pilot)

    return show


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_run_screen_mid_fault_with_verdicts(snap_compare, app, size):
    """Postgres down, one invariant held and one broken: below 120x34 the compact layout (tabs
    for the probes, checks and recovery; the chart and the events below), above it the wide."""
    live = tui_data.live_run_with_verdicts()
    assert snap_compare(app, run_before=showing(lambda: RunScreen(live)), terminal_size=size)


def test_run_screen_after_the_heal(snap_compare, app):
    live = tui_data.live_run(until_s=20.0)
    assert snap_compare(app, run_before=showing(lambda: RunScreen(live)), terminal_size=SIZE)


SAVED = STATE_DIR / "results" / "postgres_restart_outbox" / "1764100000-fixedrun0001.json"


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("outcome", ["pass", "fail"])
def test_report(snap_compare, app, outcome, size):
    result = tui_data.result() if outcome == "pass" else tui_data.failed_result()
    report = showing(lambda: ReportScreen(result, STATE_DIR, saved_path=SAVED))
    assert snap_compare(app, run_before=report, terminal_size=size)


def test_report_after_a_failed_heal(snap_compare, app):
    """Interrupted, and the heal failed: the open window and the heal's error are shown."""
    report = showing(
        lambda: ReportScreen(tui_data.heal_failed_result(), STATE_DIR, saved_path=SAVED)
    )
    assert snap_compare(app, run_before=report, terminal_size=SIZES[1])


@pytest.mark.parametrize("size", [SIZE, (80, 24)], ids=["130x42", "80x24"])
def test_run_screen_of_a_queue_scenario_with_three_live_faults(snap_compare, app, size):
    """The queue probes in their units, the three windows marked, and the live faults with a
    line per worker injector and the time left to the heal and to the TTL; compact on 80x24."""
    live = tui_queue_data.live_run(until_s=9.0, healed=False)
    assert snap_compare(app, run_before=showing(lambda: RunScreen(live)), terminal_size=size)


def test_report_of_a_queue_scenario(snap_compare, app):
    """The DLQ impact, the backlog drain and the jobs' fate first; a line per injector."""
    report = showing(lambda: ReportScreen(tui_queue_data.result(), STATE_DIR))
    assert snap_compare(app, run_before=report, terminal_size=SIZE)
