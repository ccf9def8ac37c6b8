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

import tui_data
from chaos_tui.app import ChaosApp
from chaos_tui.core.journal import save_result
from chaos_tui.screens.report import ReportScreen
from chaos_tui.screens.run import RunScreen
from chaos_tui.settings import Settings

SIZE = (130, 42)
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


def test_run_screen_while_the_fault_is_live(snap_compare, app):
    async def show(pilot):
        await pilot.app.push_screen(RunScreen(tui_data.live_run(until_s=10.5, healed=False)))
        await chart_drawn(pilot)

    assert snap_compare(app, run_before=show, terminal_size=SIZE)


def test_run_screen_after_the_heal(snap_compare, app):
    async def show(pilot):
        await pilot.app.push_screen(RunScreen(tui_data.live_run(until_s=20.0)))
        await chart_drawn(pilot)

    assert snap_compare(app, run_before=show, terminal_size=SIZE)


def test_report(snap_compare, app):
    async def show(pilot):
        await pilot.app.push_screen(ReportScreen(tui_data.result(), STATE_DIR))
        await pilot.pause()

    assert snap_compare(app, run_before=show, terminal_size=SIZE)
