"""The run screen's event log, probe panels and chart, driven by Textual's Pilot over a real
LiveRun fed a run's events: out-of-order events in the order they happened, one line each, the
whole of a line on selection; a failing panel's outage; the chart's other plots on `u`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tui_queue_data
from rich.text import Text
from test_run_views import out_of_order_run

from chaos_tui.app import ChaosApp
from chaos_tui.core.events import SampleTaken
from chaos_tui.core.model import ProbeSample
from chaos_tui.screens.run import RunScreen
from chaos_tui.settings import Settings
from chaos_tui.widgets.event_log import EventLines, EventLog
from chaos_tui.widgets.probe_panel import ProbePanel
from chaos_tui.widgets.recovery_chart import RecoveryChart
from tui_data import T0

SIZE = (130, 42)


@pytest.fixture
def app(tmp_path: Path):
    yield ChaosApp(Settings(state_dir=tmp_path / "state"), export_dir=tmp_path)
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


async def test_event_log_orders_late_events_and_shows_a_line_in_full(app):
    live, events = out_of_order_run()
    async with app.run_test(size=SIZE) as pilot:
        screen = RunScreen(live)
        await app.push_screen(screen)
        await pilot.pause()
        log = screen.query_one(EventLog)
        shown_before = len(log.lines)
        for event in events:  # as they arrive: the window after the failure it caused
            live.apply(event)
            screen.redraw()
            await pilot.pause()
        lines = [Text.from_markup(line.text).plain for line in log.lines]
        assert len(lines) == shown_before + 3
        assert lines[-3].startswith("inject") and lines[-2].startswith("INJECTED"), lines[-3:]
        assert lines[-1].startswith("probe postgres failing")
        option_list = screen.query_one(EventLines)
        assert option_list.option_count == len(lines)
        # One row per event, however long the error.
        assert option_list.virtual_size.height == option_list.option_count
        # Select the failure and ask for it in full.
        option_list.focus()
        await pilot.press("G")
        assert option_list.highlighted == len(lines) - 1
        await pilot.press("k", "j", "enter")
        await pilot.pause()
        assert "Connection refused. Is the server running on that host" in log.detail
        assert log.detail.endswith("TCP/IP connections?")
        await pilot.press("k")  # the full line follows the highlight
        await pilot.pause()
        assert "INJECTED hard_restart:postgres" in log.detail
        await pilot.press("escape")
        assert log.detail == ""


async def test_a_panel_all_failures_says_for_how_long_and_why(app):
    live, events = out_of_order_run()
    for event in events:
        live.apply(event)
    async with app.run_test(size=SIZE) as pilot:
        screen = RunScreen(live)
        await app.push_screen(screen)
        await pilot.pause()
        panel = screen.query_one("#probe-postgres", ProbePanel)
        for i in range(1, 21):  # two seconds more of the outage
            t = T0 + 7.98 + i / 10
            live.apply(SampleTaken(ProbeSample("postgres", t, False, None, None, "timeout")))
        screen.redraw()
        await pilot.pause()
        head = panel.content.renderables[0].plain  # type: ignore[union-attr]
        assert head.startswith("FAILING") and "down 2.00 s" in head and "timed out" in head, head


async def test_u_on_the_chart_brings_up_the_plot_that_did_not_fit(app):
    live = tui_queue_data.live_run(until_s=9.0, healed=False)  # four units: four plots
    async with app.run_test(size=SIZE) as pilot:
        screen = RunScreen(live)
        await app.push_screen(screen)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        chart = screen.query_one(RecoveryChart)

        def titles() -> list[str]:
            lines = chart.content.renderables  # type: ignore[union-attr]
            return [t.plain.split(" (")[0] for t in lines if "━" in t.plain]

        shown = titles()
        assert shown[0] == "latency ms" and len(shown) < 4, shown
        chart.focus()
        await pilot.press("u")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert titles()[0] == shown[1], "u did not bring the next plot up"
