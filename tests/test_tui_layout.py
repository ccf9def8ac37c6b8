"""The run screen at every size from 80x24 up: the chart and the event log keep at least five
rows each, and no invariant name is cut, in the compact layout and in the wide one, and when
the terminal is resized across the line between them.

Driven by Textual's Pilot over the fixed run of tui_data (a real LiveRun fed a run's events);
nothing is started.
"""

from __future__ import annotations

import pytest
from textual.geometry import Region
from textual.widgets import DataTable, TabbedContent

import tui_data
from chaos_tui.app import ChaosApp
from chaos_tui.screens.run import RunScreen
from chaos_tui.settings import Settings
from chaos_tui.widgets.event_log import EventLog

SIZES = [(80, 24), (100, 30), (119, 40), (120, 34), (140, 42), (200, 50)]


def on_screen(widget) -> str:
    """The text the widget shows, line by line, borders included: what a user reads."""
    width, height = widget.outer_size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


def logged(screen: RunScreen) -> str:
    return " ".join(line.text for line in screen.query_one(EventLog).lines)


async def show_run(app: ChaosApp, pilot) -> RunScreen:
    screen = RunScreen(tui_data.live_run_with_verdicts())
    await app.push_screen(screen)
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    return screen


async def assert_readable(screen: RunScreen, pilot) -> None:
    footer_top = screen.app.size.height - 1
    for selector in ("#chart", "#events"):
        region = screen.query_one(selector).content_region  # on screen, not below the footer
        rows = min(region.bottom, footer_top) - region.y
        assert rows >= 5, f"{selector} shows {rows} rows at {screen.app.size}"
    if screen.compact:  # the invariants are on the checks tab, which counts the broken one
        tabs = screen.query_one(TabbedContent)
        assert str(tabs.get_tab("pane-checks").label) == "2 checks ✘1"
        assert str(tabs.get_tab("pane-probes").label) == "1 probes ✘2"
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one(TabbedContent).active == "pane-checks"
    shown = on_screen(screen.query_one("#invariants"))
    for spec in screen.live.invariant_specs:
        assert spec.name in shown, f"{spec.name} cut at {screen.app.size}:\n{shown}"
    assert "…" not in shown, shown


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_chart_and_events_keep_five_rows_and_no_invariant_name_is_cut(tmp_path, size):
    app = ChaosApp(Settings(state_dir=tmp_path / "state"), export_dir=tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await show_run(app, pilot)
        assert screen.compact == (size[0] < 120 or size[1] < 34)
        assert screen.has_class("-narrow") == (size[0] < 120)
        assert screen.has_class("-short") == (size[1] < 34)
        banner = screen.query_one("#banner")
        assert banner.display and banner.content_region.height >= 1
        written = [line for line in on_screen(banner).splitlines() if line.strip()]
        assert len(written) == 1, f"the banner wrapped: {written}"
        await assert_readable(screen, pilot)


async def test_a_resize_across_the_line_changes_the_layout_and_keeps_the_log(tmp_path):
    app = ChaosApp(Settings(state_dir=tmp_path / "state"), export_dir=tmp_path)
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await show_run(app, pilot)
        assert not screen.compact and not screen.query(TabbedContent)
        assert logged(screen).count("INJECTED") == 1
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert screen.compact and screen.query(TabbedContent)
        assert app.focused is screen.query_one("#event-lines"), "the keys went nowhere"
        # The new event log was written again from the LiveRun: nothing lost, nothing twice.
        assert logged(screen).count("INJECTED") == 1
        assert "steady_state" in logged(screen)
        await assert_readable(screen, pilot)
        await pilot.resize_terminal(140, 42)
        await pilot.pause(0.3)
        assert not screen.compact
        await assert_readable(screen, pilot)


@pytest.mark.parametrize("width", [80, 140])
async def test_the_picker_keeps_its_verdict_and_duration_columns(tmp_path, width):
    """Every column shown whole, without scrolling sideways: at 80 columns the hypothesis
    gives way (the preview below has it whole), never the duration or the last result."""
    app = ChaosApp(Settings(state_dir=tmp_path / "state"), export_dir=tmp_path)
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        labels = [str(column.label) for column in table.columns.values()]
        assert labels[:3] == ["scenario", "last result", "duration"]
        assert ("hypothesis" in labels) == (width > 80)
        assert table.virtual_size.width <= table.content_size.width, "scrolls sideways"
        assert table.max_scroll_x == 0


@pytest.mark.parametrize("size", [(120, 34), (140, 42)], ids=["120x34", "140x42"])
async def test_a_recovery_panel_full_of_numbers_leaves_the_event_log_its_rows(tmp_path, size):
    """A live fault whose scenario reports many numbers so far (the OPA decisions by phase,
    say) grew the recovery panel until the event log had no row left in the wide layout."""
    app = ChaosApp(Settings(state_dir=tmp_path / "state"), export_dir=tmp_path)
    async with app.run_test(size=size) as pilot:
        live = tui_data.live_run_with_verdicts()
        live.live_measurements = {
            f"decisions in phase {i}": {"allow": 12, "deny": 10, "error": 0} for i in range(12)
        }
        screen = RunScreen(live)
        await app.push_screen(screen)
        await pilot.pause()
        await app.workers.wait_for_complete()
        screen.redraw(True)
        await pilot.pause()
        assert not screen.compact
        assert "decisions in phase 11" in on_screen(screen.query_one("#metrics"))
        footer_top = app.size.height - 1
        for selector in ("#chart", "#events"):
            # Its rows on screen: a widget pushed below the footer still has a size of its own.
            region = screen.query_one(selector).content_region
            rows = min(region.bottom, footer_top) - region.y
            assert rows >= 5, f"{selector} shows {rows} rows at {size} ({region})"
