"""Parameters in the console (issue 16): the detail screen edits them, checked as they are
typed; a refused one blocks the run; an accepted one is what the confirmation shows and the
plan holds. Real Textual Pilot and the real sandbox target, planned only: nothing is run."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.widgets import Input, Label, Static

from chaos_tui.app import ChaosApp
from chaos_tui.screens.confirm import ConfirmRunScreen
from chaos_tui.screens.detail import DetailScreen
from chaos_tui.settings import Settings

NAME = "openobserve_stall"  # a number (hold_s) and a choice (mode=stop|pause) to edit
SIZE = (140, 45)


@pytest.fixture
def app(tmp_path):
    console = ChaosApp(Settings(state_dir=tmp_path / "state"), open_scenario=NAME)
    yield console
    console.target.stop_what_we_started(keep_sandbox=False)


def text_of(widget) -> str:
    out = Console(width=SIZE[0], record=True, file=io.StringIO())
    out.print(widget.content)
    return out.export_text()


async def type_into(pilot, name: str, text: str) -> None:
    box = pilot.app.screen.query_one(f"#param-{name}", Input)
    box.focus()
    box.value = ""
    await pilot.press(*text)


async def test_detail_lists_each_parameter_with_meaning_and_allowed_values(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        hints = " ".join(text_of(s) for s in screen.query(".param-hint").results(Static))
        assert "stop or freeze the backend · stop|pause · default stop" in hints
        assert "how long the backend is out · 0-120 s · default 5" in hints
        assert screen.query_one("#param-hold_s", Input).value == "5"


async def test_a_bad_value_turns_red_and_blocks_the_run(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_into(pilot, "hold_s", "1000")
        box = app.screen.query_one("#param-hold_s", Input)
        assert box.has_class("-invalid")
        error = text_of(app.screen.query_one("#error-hold_s", Label))
        assert "hold_s must be between 0 and 120 seconds, got 1000" in error
        await type_into(pilot, "mode", "melt")
        assert "mode must be one of stop, pause, got 'melt'" in text_of(
            app.screen.query_one("#error-mode", Label)
        )
        app.screen.action_run()
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen), "a refused value must not open the question"
        assert app.catalog.params_of(NAME).hold_s == 5, "a refused value must not be kept"
        # Corrected, the red goes away.
        await type_into(pilot, "hold_s", "10")
        assert not box.has_class("-invalid")
        assert text_of(app.screen.query_one("#error-hold_s", Label)).strip() == ""


async def test_good_values_are_planned_confirmed_and_listed(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_into(pilot, "hold_s", "10")
        await type_into(pilot, "mode", "pause")
        await pilot.press("enter")  # applies: planned again with them
        plan = app.catalog.planned(NAME)
        assert plan is not None and plan.params["hold_s"] == 10 and plan.params["mode"] == "pause"
        assert plan.faults[0].hold_s == 10
        assert "parameters: hold_s=10 (default 5), mode=pause (default stop)" in text_of(
            app.screen.query_one("#detail", Static)
        )
        entry = app.catalog.entry(NAME)
        assert entry is not None and entry.duration_s == pytest.approx(3 + 10 + 3 + 2)
        app.screen.action_run()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmRunScreen)
        radius = text_of(app.screen.query_one("#confirm-radius", Static))
        assert "parameters: hold_s=10 (default 5), mode=pause (default stop)" in radius
        assert app.catalog.planned(NAME) is plan, "the plan confirmed is the plan shown"
        await pilot.press("escape")
        assert isinstance(app.screen, DetailScreen)


async def test_esc_in_a_box_keeps_what_was_typed_and_a_second_esc_goes_back(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_into(pilot, "hold_s", "7")
        await pilot.press("escape")
        assert isinstance(app.screen, DetailScreen), "the first esc only leaves the box"
        assert app.catalog.params_of(NAME).hold_s == 7
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)
