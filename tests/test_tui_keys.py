"""Terminal key habits on every screen, the generated help and the palette's state.

Driven by Textual's Pilot; nothing is started (no sandbox, no run): the run screen shows the
fixed run of tui_data, the report a fixed result.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from textual.containers import ScrollableContainer
from textual.screen import Screen
from textual.widgets import DataTable, OptionList

import tui_data
from chaos_tui.app import ChaosApp
from chaos_tui.screens.confirm import AskScreen, ConfirmRunScreen
from chaos_tui.screens.detail import DetailScreen
from chaos_tui.screens.help import HelpScreen, binding_rows, key_name
from chaos_tui.screens.keys import MOVING_LETTERS
from chaos_tui.screens.report import ReportScreen
from chaos_tui.screens.run import RunScreen
from chaos_tui.settings import Settings

NAME = "postgres_restart_outbox"
SMALL = (80, 24)
MOVES = re.compile(r"^(scroll_|cursor_|page_)")
# `export_menu` (the report's `e`) only asks which format: the file is written by the second
# key of `e` then j/m, in a prompt of its own (checked in test_tui_next.py).
WRITES = re.compile(r"^(export|save|write)(?!_menu)")


@pytest.fixture
def app(tmp_path):
    return ChaosApp(Settings(state_dir=tmp_path / "state"), export_dir=tmp_path)


def cursor_row(app: ChaosApp) -> int:
    return app.screen.query_one(DataTable).cursor_row


async def test_j_k_g_and_home_end_move_the_picker_cursor(app):
    async with app.run_test(size=SMALL) as pilot:
        rows = app.screen.query_one(DataTable).row_count
        assert rows >= 3
        await pilot.press("j", "j")
        assert cursor_row(app) == 2
        await pilot.press("k")
        assert cursor_row(app) == 1
        await pilot.press("G")
        assert cursor_row(app) == rows - 1
        await pilot.press("g")
        assert cursor_row(app) == 0
        await pilot.press("end")
        assert cursor_row(app) == rows - 1
        await pilot.press("home")
        assert cursor_row(app) == 0
        await pilot.press("down")
        assert cursor_row(app) == 1


async def test_the_filter_box_takes_letters_not_the_list(app):
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("slash", *"queue", "enter")
        table = app.screen.query_one(DataTable)
        assert table.row_count >= 1 and all("queue" in str(k.value) for k in table.rows)


async def show_report(app: ChaosApp, pilot, result) -> ScrollableContainer:
    await app.push_screen(ReportScreen(result, app.export_dir))
    await pilot.pause()
    scroll = app.screen.query_one("#report-scroll", ScrollableContainer)
    assert app.focused is scroll, "the report does not take the keys"
    assert scroll.max_scroll_y > 5, "the report fits at 80x24: nothing to scroll"
    return scroll


async def test_j_k_g_and_pages_scroll_the_report(app, tmp_path):
    async with app.run_test(size=SMALL) as pilot:
        scroll = await show_report(app, pilot, tui_data.failed_result())
        await pilot.press("j", "j", "j")
        await pilot.pause(0.2)
        assert scroll.scroll_y == 3
        await pilot.press("k")
        await pilot.pause(0.2)
        assert scroll.scroll_y == 2
        await pilot.press("G")
        await pilot.pause(0.5)
        assert scroll.scroll_y == scroll.max_scroll_y
        await pilot.press("g")
        await pilot.pause(0.5)
        assert scroll.scroll_y == 0
        await pilot.press("pagedown")
        await pilot.pause(0.5)
        assert scroll.scroll_y > 5
        await pilot.press("end")
        await pilot.pause(0.5)
        assert scroll.scroll_y == scroll.max_scroll_y
        # Scrolling with every letter wrote nothing: exports are not on single letters here.
        await pilot.press("m", "j", "k")
        assert not [p for p in tmp_path.iterdir() if p.is_file()]


async def test_the_report_still_exports_through_its_action(app, tmp_path):
    """The keys are gone; the action stays for the export keys and the palette to call."""
    async with app.run_test(size=SMALL) as pilot:
        await show_report(app, pilot, tui_data.result())
        app.screen.action_export("json")
        app.screen.action_export("md")
        assert sorted(p.suffix for p in tmp_path.iterdir() if p.is_file()) == [".json", ".md"]


async def every_screen(app: ChaosApp, pilot):
    """Each screen of the console in turn, shown as a user meets it; yields it on top."""
    yield app.screen  # the picker
    screens = [
        lambda: DetailScreen(NAME),
        lambda: ConfirmRunScreen(NAME, "sandbox", ["hard_restart:postgres"], ["pid 1"]),
        lambda: AskScreen("quit?"),
        lambda: RunScreen(tui_data.live_run_with_verdicts()),
        lambda: ReportScreen(tui_data.result(), app.export_dir),
        lambda: HelpScreen(app.screen),
    ]
    for make in screens:
        await app.push_screen(make())
        await pilot.pause()
        yield app.screen
        app.pop_screen()
        await pilot.pause()


def bindings_of(screen: Screen) -> list[tuple[str, str]]:
    """(key, action) of every binding on the screen, its widgets and the app."""
    nodes = [*screen.walk_children(with_self=True), screen.app]
    return [
        (key, binding.action)
        for node in nodes
        for key, bindings in node._bindings.key_to_bindings.items()
        for binding in bindings
    ]


async def test_no_single_letter_both_moves_and_writes(app):
    """Walks every screen's bindings: a key that writes a file is never a single letter that
    moves anywhere in the console (j exported JSON on the report while it scrolled elsewhere)."""
    found: dict[str, list[tuple[str, str]]] = {}
    async with app.run_test(size=SMALL) as pilot:
        async for screen in every_screen(app, pilot):
            found[type(screen).__name__] = bindings_of(screen)
    assert set(found) == {
        "PickerScreen",
        "DetailScreen",
        "ConfirmRunScreen",
        "AskScreen",
        "RunScreen",
        "ReportScreen",
        "HelpScreen",
    }
    moving = {k for b in found.values() for k, action in b if len(k) == 1 and MOVES.match(action)}
    assert {"j", "k", "g", "G"} <= moving and moving >= MOVING_LETTERS
    writing = [
        (screen, k, action)
        for screen, b in found.items()
        for k, action in b
        if WRITES.match(action.split(".")[-1])
    ]
    clashes = [(screen, k, action) for screen, k, action in writing if k in moving]
    assert not clashes, clashes
    assert not [w for w in writing if len(w[1]) == 1], f"a single letter writes: {writing}"


@pytest.mark.parametrize("screen_name", ["picker", "report", "run"])
async def test_help_lists_every_binding_of_the_screen_it_was_opened_from(app, screen_name):
    async with app.run_test(size=SMALL) as pilot:
        if screen_name == "report":
            await app.push_screen(ReportScreen(tui_data.result(), app.export_dir))
        elif screen_name == "run":
            await app.push_screen(RunScreen(tui_data.live_run_with_verdicts()))
        await pilot.pause()
        shown_on = app.screen
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        listed = {(row.keys, row.does) for row in help_screen.rows}
        keys_listed = {k for row in help_screen.rows for k in row.keys.split(", ")}
        # Everything the screen itself binds, whatever its `show`.
        for binding in shown_on.BINDINGS:
            assert key_name(shown_on, binding) in keys_listed, binding
        # And the moves: arrows, pages and the pager letters of what scrolls there.
        wanted = {"↑", "↓", "pgup", "pgdn", "j", "k", "g", "G"}
        if screen_name == "run":
            wanted |= {"1", "2", "3", "h", "^c"}
        assert wanted <= keys_listed, wanted - keys_listed
        assert any(does == "Help" for _, does in listed)
        # ctrl+c is the app's priority binding (abort, or quit): never the "copy" under it.
        ctrl_c = [does for keys, does in listed if "^c" in keys.split(", ")]
        assert ctrl_c and not any("opy" in does for does in ctrl_c), ctrl_c
        assert help_screen.rows == binding_rows(shown_on), "the help is not the bindings"
        await pilot.press("escape")
        assert app.screen is shown_on


def palette_titles(app: ChaosApp) -> set[str]:
    return {command.title for command in app.get_system_commands(app.screen)}


OPERATOR = {"Heal live faults", "Halt", "Abort run"}


async def test_palette_offers_runs_when_idle_and_operator_commands_only_during_a_run(app):
    async with app.run_test(size=SMALL) as pilot:
        idle = palette_titles(app)
        assert f"Run {NAME}" in idle and not OPERATOR & idle
        # A run in progress is a run task not done yet (ChaosApp.run_in_progress): a pending
        # future stands in for one here; test_tui.py runs real ones against the sandbox.
        pending = asyncio.get_running_loop().create_future()
        app._run, app._run_task = object(), pending  # type: ignore[assignment]
        try:
            elsewhere = palette_titles(app)  # running, but the picker is on top
            assert not OPERATOR & elsewhere
            assert not any(title.startswith("Run ") for title in elsewhere)
            await app.push_screen(RunScreen(tui_data.live_run_with_verdicts()))
            await pilot.pause()
            running = palette_titles(app)
            assert running >= OPERATOR
            assert not any(title.startswith("Run ") for title in running)
        finally:
            pending.cancel()
        assert not OPERATOR & palette_titles(app), "the run ended: nothing to heal"


@pytest.mark.parametrize("size", [SMALL, (140, 42)], ids=["compact", "wide"])
async def test_the_event_log_takes_the_pager_keys(app, size):
    async with app.run_test(size=size) as pilot:
        await app.push_screen(RunScreen(tui_data.live_run_with_verdicts()))
        await pilot.pause()
        lines = app.screen.query_one("#event-lines", OptionList)
        assert app.focused is lines, "the keys do not go to the event log"
        last = lines.option_count - 1
        assert last > 1
        await pilot.press("g")
        await pilot.pause(0.3)
        assert lines.highlighted == 0
        await pilot.press("j")
        await pilot.pause(0.3)
        assert lines.highlighted == 1
        await pilot.press("G")
        await pilot.pause(0.3)
        assert lines.highlighted == last
        await pilot.press("k")
        await pilot.pause(0.3)
        assert lines.highlighted == last - 1


async def test_the_confirmation_pages_its_list_while_letters_go_to_the_box(app):
    radius = [f"sandbox process worker-{i} (pid {1000 + i})" for i in range(40)]
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(ConfirmRunScreen(NAME, "sandbox", ["hard_restart:postgres"], radius))
        await pilot.pause()
        scroll = app.screen.query_one("#confirm-scroll", ScrollableContainer)
        await pilot.press("pagedown")
        await pilot.pause(0.5)
        assert scroll.scroll_y > 0
        await pilot.press("pageup")
        await pilot.pause(0.5)
        assert scroll.scroll_y == 0
        await pilot.press("j", "k", "g")
        assert app.screen.query_one("#confirm-input").value == "jkg"
        assert scroll.scroll_y == 0
