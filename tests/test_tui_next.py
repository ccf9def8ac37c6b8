"""What next after a run: the report's saved path, `r` (the same parameters again, after the
typed name), `b` (the runbook, from the package), `e` then a format (exports beside the results,
0644), the history screen, and notes typed during a real run.

Results are real: saved by a real run in the console (the slow test), or built by the core's
own timeline as tests/tui_data.py does and saved by the core's journal.
"""

from __future__ import annotations

import io
import json
import shutil
import stat
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, Markdown, Static

import tui_data
from chaos_tui.app import ChaosApp
from chaos_tui.core.history import result_files, summarize
from chaos_tui.core.journal import latest_result, load_result, save_result
from chaos_tui.core.model import BaselineComparison, MetricComparison
from chaos_tui.core.report import markdown_report
from chaos_tui.report_html import result_html
from chaos_tui.runbooks import runbook_text
from chaos_tui.scenarios.postgres_restart_outbox import Params
from chaos_tui.screens.confirm import ConfirmRunScreen
from chaos_tui.screens.history import COLUMNS, HistoryScreen, row_cells
from chaos_tui.screens.note import NoteScreen
from chaos_tui.screens.picker import PickerScreen
from chaos_tui.screens.report import ExportPrompt, ReportScreen, report_body
from chaos_tui.screens.run import RunScreen
from chaos_tui.screens.runbook import RunbookScreen
from chaos_tui.settings import Settings

NAME = "postgres_restart_outbox"
SIZE = (140, 45)
REPO = Path(__file__).resolve().parent.parent


def shown(widget, width: int = 400) -> str:
    """What a widget displays, rendered wide enough that a long path stays on one line."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def wait_until(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.05)


def files_under(folder: Path) -> set[Path]:
    """The files a user would call written, without the results index: the history screen
    builds that cache (results/index.sqlite3 and its WAL) when it opens."""
    return {p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("index.sqlite")}


def a_result(started_offset: float = 0.0, run_id: str = "fixedrun0001", **params):
    """tui_data's result (the core's timeline and invariants), started later and run with
    other parameters if asked."""
    result = tui_data.result()
    parameters = {**result.parameters, **params}
    return result.model_copy(
        update={
            "run_id": run_id,
            "started_at": result.started_at + started_offset,
            "parameters": parameters,
        }
    )


async def open_report(pilot, app: ChaosApp, path: Path) -> ReportScreen:
    app.open_past_report(path)
    await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen), what="the report")
    await pilot.pause()
    return app.screen


async def test_report_shows_where_it_was_saved_and_exports_only_after_e(tmp_path):
    state = tmp_path / "state"
    results = state / "results"
    saved = save_result(results, a_result())
    app = ChaosApp(Settings(state_dir=state))
    async with app.run_test(size=SIZE) as pilot:
        report = await open_report(pilot, app, saved)
        assert f"saved: {saved}" in shown(report.query_one("#report-files", Static))
        # No export anywhere: the results, or the current directory (where they used to go).
        # (`r` plans a run, and planning on the sandbox books its ports: that is no export.)
        before = files_under(results), set(Path.cwd().iterdir())
        # Every letter but quit, on the report: none writes a file (those that open a screen
        # are closed again).
        for key in string.ascii_letters.replace("q", ""):
            await pilot.press(key)
            await pilot.pause()
            while app.screen is not report:
                await pilot.press("escape")
                await pilot.pause()
        assert (files_under(results), set(Path.cwd().iterdir())) == before, "a key wrote a file"

        await pilot.press("e")
        assert isinstance(app.screen, ExportPrompt)
        await pilot.press("j")
        await wait_until(pilot, lambda: app.screen is report, what="the prompt to close")
        exports = results / NAME / "exports"
        [written] = list(exports.glob("*.json"))
        assert stat.S_IMODE(written.stat().st_mode) == 0o644
        assert load_result(written) == report.result
        assert f"exported: {written}" in shown(report.query_one("#report-files", Static))
        assert any(str(written) in n.message for n in app._notifications)
        # The export is beside the results, not among them: still one run in the history.
        assert result_files(results, NAME) == [saved]

        await pilot.press("e", "escape")  # cancelled: nothing more written
        assert len(files_under(exports)) == 1

        # The palette offers both formats on the report.
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Export report as JSON" in titles and "Export report as Markdown" in titles
        app.action_export_report("md")
        [markdown] = list(exports.glob("*.md"))
        assert stat.S_IMODE(markdown.stat().st_mode) == 0o644
        assert markdown.read_text() == markdown_report(report.result)


async def test_export_dir_given_by_the_user_is_used(tmp_path):
    state = tmp_path / "state"
    saved = save_result(state / "results", a_result())
    app = ChaosApp(Settings(state_dir=state), export_dir=tmp_path / "out")
    async with app.run_test(size=SIZE) as pilot:
        await open_report(pilot, app, saved)
        await pilot.press("e", "m")
        await pilot.pause()
        [written] = list((tmp_path / "out").glob("*.md"))
        assert stat.S_IMODE(written.stat().st_mode) == 0o644


async def test_e_then_h_exports_the_html_report_with_its_charts(tmp_path):
    state = tmp_path / "state"
    saved = save_result(state / "results", a_result())
    app = ChaosApp(Settings(state_dir=state))
    async with app.run_test(size=SIZE) as pilot:
        report = await open_report(pilot, app, saved)
        await pilot.press("e")
        assert isinstance(app.screen, ExportPrompt)
        await pilot.press("h")
        await wait_until(pilot, lambda: app.screen is report, what="the prompt to close")
        [written] = list((state / "results" / NAME / "exports").glob("*.html"))
        assert stat.S_IMODE(written.stat().st_mode) == 0o644
        page = written.read_text()
        assert page == result_html(report.result)
        # One chart per probe, each with the fault's window shaded.
        assert page.count('<rect class="window"') == len(report.result.probes) > 0
        assert f"exported: {written}" in shown(report.query_one("#report-files", Static))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Export report as HTML" in titles


async def test_b_shows_the_runbook_and_scrolls(tmp_path):
    state = tmp_path / "state"
    saved = save_result(state / "results", a_result())  # a pass: the result names no runbook
    app = ChaosApp(Settings(state_dir=state))
    async with app.run_test(size=(100, 24)) as pilot:
        report = await open_report(pilot, app, saved)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="runbook")
        screen = app.screen
        expected = runbook_text("chaos_tui/runbooks/postgres_restart_outbox.md")
        assert screen.query_one(Markdown).source == expected
        await pilot.pause(0.3)
        # What it shows, not only what it holds: the runbook's first heading is on screen.
        first_heading = next(line for line in expected.splitlines() if line.startswith("#"))
        blocks = " ".join(str(b.render()) for b in screen.query("MarkdownBlock"))
        assert first_heading.lstrip("# ").strip() in blocks
        scroll = screen.query_one("#runbook-scroll")
        assert scroll.max_scroll_y > 0, "the runbook fits: scrolling proves nothing"
        await pilot.press("j", "j", "j")
        await pilot.pause(0.3)
        assert scroll.scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause(0.3)
        moved = scroll.scroll_y
        await pilot.press("k")
        await pilot.pause(0.3)
        assert scroll.scroll_y < moved
        await pilot.press("escape")
        assert app.screen is report


async def test_r_asks_for_the_name_with_the_parameters_the_run_used(tmp_path):
    state = tmp_path / "state"
    used = {"warmup_s": 1.0, "hold_s": 2.0, "recover_s": 1.5}
    saved = save_result(state / "results", a_result(**used))
    app = ChaosApp(Settings(state_dir=state))  # the console's own defaults differ
    async with app.run_test(size=SIZE) as pilot:
        await open_report(pilot, app, saved)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmRunScreen), what="confirm")
        plan = app.catalog.planned(NAME)
        assert plan is not None and plan.scenario_name == NAME
        assert {k: plan.params[k] for k in used} == used
        assert plan.params == load_result(saved).parameters
        await pilot.press("escape")  # cancelled: nothing runs
        await pilot.pause()
        assert app.run_in_progress is None and isinstance(app.screen, ReportScreen)


def write_history(results: Path) -> dict[str, Path]:
    paths = {
        "old": save_result(results, a_result(0, "run0000old01")),
        "new": save_result(results, a_result(7200, "run0000new01", hold_s=2.0)),
        "mid": save_result(results, a_result(3600, "run0000mid01")),
    }
    folder = results / NAME
    broken = folder / f"{int(tui_data.T0) + 5000}-brokenrun001.json"
    broken.write_text('{"run_id": "brokenrun001", "outcome": "pa')  # cut short
    old_format = folder / f"{int(tui_data.T0) + 100}-oldformat001.json"
    old_format.write_text(json.dumps({"run_id": "oldformat001", "verdict": "ok"}))
    paths |= {"broken": broken, "old_format": old_format}
    return paths


def test_the_report_and_the_history_say_what_regressed_against_the_baseline(tmp_path):
    outage = MetricComparison(
        name="outage_s",
        label="outage (postgres)",
        unit="s",
        value=9.79,
        baseline_median=4.15,
        baseline_p95=5.45,
        baseline_runs=10,
        threshold_pct=20,
        floor=3.0,
        limit=7.15,
        regressed=True,
    )
    steady = outage.model_copy(update={"name": "time_to_detect_s", "label": "time to detect"})
    steady.value, steady.regressed = 0.01, False
    comparison = BaselineComparison(
        scenario=NAME,
        target="sandbox",
        runs=[f"r{i}" for i in range(10)],
        metrics=[outage, steady],
        note="baseline: 10 runs, regressed: outage_s",
    )
    result = a_result().model_copy(update={"comparison": comparison})
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(report_body(result))
    text = console.export_text()
    assert "10 runs, 1 regressed" in text
    assert "REGRESSION outage (postgres)" in text and "limit 7.15 s" in text
    assert "time to detect" not in text.split("1 regressed")[-1]  # only what regressed

    row = row_cells(summarize(save_result(tmp_path, result)), {})
    cells = dict(zip(COLUMNS, row, strict=True))
    assert str(cells["regressed"]) == "outage"
    steady.regressed = False
    outage.regressed = False
    calm = result.model_copy(update={"run_id": "calm00000001"})
    row = row_cells(summarize(save_result(tmp_path, calm)), {})
    cells = dict(zip(COLUMNS, row, strict=True))
    assert str(cells["regressed"]) == ""


def test_history_summaries_tolerate_broken_files(tmp_path):
    paths = write_history(tmp_path)
    files = result_files(tmp_path, NAME)
    order = [paths[k] for k in ("new", "broken", "mid", "old_format", "old")]
    assert files == order, "newest first, from the file names"
    rows = {p: summarize(p) for p in files}
    assert rows[paths["broken"]].problem == "unreadable: not JSON"
    assert "old or unknown format" in (rows[paths["old_format"]].problem or "")
    good = rows[paths["new"]]
    assert good.readable and good.outcome == "pass" and good.parameters["hold_s"] == 2.0
    assert good.time_to_recover_s == a_result().recovery.time_to_recover_s


def test_history_summaries_are_fast_for_hundreds_of_results(tmp_path):
    for i in range(300):
        save_result(tmp_path, a_result(i * 60, f"run{i:09d}"))
    started = time.perf_counter()
    files = result_files(tmp_path, NAME)
    listed = time.perf_counter() - started
    rows = [summarize(p) for p in files[:25]]  # the first batch the screen shows
    first_batch = time.perf_counter() - started
    assert len(files) == 300 and all(r.readable for r in rows)
    assert listed < 0.2 and first_batch < 1.0, (listed, first_batch)


async def test_history_lists_runs_newest_first_and_opens_one(tmp_path):
    state = tmp_path / "state"
    paths = write_history(state / "results")
    app = ChaosApp(Settings(state_dir=state))
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, PickerScreen)  # the first row is NAME
        await pilot.press("H")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        history = app.screen
        await wait_until(pilot, lambda: len(history.runs) == 5, what="the rows' numbers")
        await pilot.pause()
        table = history.query_one(DataTable)
        keys = [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(5)]
        assert keys == [str(paths[k]) for k in ("new", "broken", "mid", "old_format", "old")]
        first = [str(c) for c in table.get_row_at(0)]
        assert first[1] == "PASS" and first[6] == "hold_s=2", first
        assert str(table.get_row_at(2)[6]) == "defaults"
        assert str(table.get_row_at(1)[1]) == "?"
        assert "unreadable" in str(table.get_row_at(1)[6])

        await pilot.press("j")  # to the broken one: enter says so and stays
        assert table.cursor_row == 1
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is history
        assert any(n.title == "unreadable result" for n in app._notifications)

        await pilot.press("j", "enter")  # the middle run: its own report
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen), what="report")
        assert app.screen.result.run_id == "run0000mid01"
        assert app.screen.saved_path == paths["mid"]
        await pilot.press("H")  # back to the history it came from, not one more
        assert app.screen is history
        await pilot.press("k", "k", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen), what="report")
        assert app.screen.result.run_id == "run0000new01"
        await pilot.press("escape")
        assert app.screen is history
        await pilot.press("escape")
        assert isinstance(app.screen, PickerScreen)


def test_a_runbook_is_read_from_an_installed_wheel(tmp_path):
    """Built as a user would get it, installed in a venv of its own, and read by the function
    the console uses, from site-packages: not from this checkout."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((REPO / name).read_bytes())
    # Symlinks (the sandbox's sql/ and policies/) are followed: the wheel gets the files.
    shutil.copytree(
        REPO / "chaos_tui", source / "chaos_tui", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", str(source), "--no-deps", "-w", str(dist)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = list(dist.glob("chaos_tui-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr
    probe = (
        "import json, chaos_tui, sys\n"
        "from chaos_tui.runbooks import runbook_text\n"
        "ref = 'chaos_tui/runbooks/postgres_restart_outbox.md'\n"
        "print(json.dumps({'file': chaos_tui.__file__, 'path': sys.path,\n"
        "                  'text': runbook_text(ref)}))\n"
    )
    env = {"PATH": "/usr/bin:/bin"}  # no PYTHONPATH: nothing of this checkout
    # -I: isolated (no PYTHONPATH, no user site, not the current directory).
    read = subprocess.run(
        [str(python), "-I", "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert read.returncode == 0, read.stderr
    got = json.loads(read.stdout)
    assert Path(got["file"]).is_relative_to(venv), got["file"]
    assert not any(Path(p).resolve() == REPO for p in got["path"] if p)
    assert got["text"] == (REPO / "chaos_tui/runbooks/postgres_restart_outbox.md").read_text()
    assert got["text"].startswith("#")


@pytest.mark.slow
async def test_a_note_during_a_real_run_is_in_the_result_and_the_report(sandbox, tmp_path):
    """A short real run (Postgres SIGKILLed and healed): `n` during the fault adds a note that
    the event log shows, the saved result keeps, and the report and the Markdown export say;
    the report shows where the result was saved; `r` offers the same parameters again."""
    used = Params(warmup_s=1, down_s=2, recover_s=2)
    app = ChaosApp(Settings(state_dir=sandbox.state_dir), params={NAME: used})
    note = "paged the DBA: failover seen on the dashboard"
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter", "r", *NAME, "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, RunScreen), 10, "run screen")
            await wait_until(pilot, lambda: app.live.live_faults, 60, "the fault")
            await pilot.press("n")
            assert isinstance(app.screen, NoteScreen)
            app.screen.query_one(Input).value = note
            await pilot.press("enter")
            assert isinstance(app.screen, RunScreen)
            await wait_until(
                pilot, lambda: any(note in line.text for line in app.live.log), 5, "the note logged"
            )
            await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen), 120, "report")
            await pilot.pause(0.2)
            report = app.screen
            result = report.result
            assert result.outcome == "pass", result.reason
            [kept] = result.notes
            assert kept.text == note
            window = result.injection_windows[0]
            assert window.injected_at <= kept.t <= window.healed_at + 1
            saved = latest_result(sandbox.state_dir / "results", NAME)
            assert saved is not None and saved.notes == result.notes
            [saved_path] = [
                p
                for p in result_files(sandbox.state_dir / "results", NAME)
                if result.run_id in p.name
            ]
            assert report.saved_path == saved_path
            assert f"saved: {saved_path}" in shown(report.query_one("#report-files", Static))
            assert note in shown(report.query_one("#report", Static))
            assert f"{note}" in markdown_report(saved)
            await pilot.press("e", "m")
            await pilot.pause()
            [exported] = list((sandbox.state_dir / "results" / NAME / "exports").glob("*.md"))
            assert "## Notes" in exported.read_text() and note in exported.read_text()
            await pilot.press("e", "j")
            await pilot.pause()
            [as_json] = list((sandbox.state_dir / "results" / NAME / "exports").glob("*.json"))
            assert json.loads(as_json.read_text())["notes"] == [{"t": kept.t, "text": note}]
            shutil.rmtree(exported.parent)

            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmRunScreen), 10, "ask")
            plan = app.catalog.planned(NAME)
            assert plan is not None and plan.params == result.parameters
            assert plan.params["hold_s"] == 2 and plan.params["warmup_s"] == 1
            await pilot.press("escape")
            await pilot.pause()
            assert app.run_in_progress is None
    finally:
        app.target.stop_what_we_started(keep_sandbox=True)
    assert sandbox.sandbox.healthy("postgres")


async def test_history_closed_while_it_reads_leaves_the_console_running(tmp_path):
    state = tmp_path / "state"
    for i in range(300):
        save_result(state / "results", a_result(i * 60, f"run{i:09d}"))
    app = ChaosApp(Settings(state_dir=state))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("H", "escape")  # at once: the rows are still being read
        await pilot.pause(1.0)
        await app.workers.wait_for_complete()
        assert app.is_running and isinstance(app.screen, PickerScreen)
        await pilot.press("H")  # and again, to the end: every row read
        history = app.screen
        assert isinstance(history, HistoryScreen)
        # A hang detector, not a speed goal: 300 results on a slow, busy CI machine took over 10 s.
        await wait_until(pilot, lambda: len(history.runs) == 300, timeout=120, what="every row")
        assert history.query_one(DataTable).row_count == 300


def test_export_dir_is_the_consoles_and_headless_refuses_it(tmp_path):
    from conftest import env_for, run_cli

    proc = run_cli(
        ["--headless", "--scenario", NAME, "--export-dir", str(tmp_path / "out")],
        env_for(tmp_path / "state"),
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "chaos-tui: --export-dir goes with the console (headless writes --output)"
    ]
    assert not (tmp_path / "out").exists()


async def test_a_note_still_being_typed_when_the_run_ends_is_kept(tmp_path):
    """The report replaces the run screen and closes whatever sits on it: a note box with
    text in it was closed without its callback, and the note was lost without a word."""
    import asyncio

    app = ChaosApp(Settings(state_dir=tmp_path / "state"), export_dir=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        result = tui_data.result()
        assert result.notes == []
        run_screen = RunScreen(tui_data.live_run_with_verdicts())
        await app.push_screen(run_screen)
        await app.push_screen(NoteScreen())
        await pilot.pause()
        await pilot.press(*"late note")
        ended: asyncio.Future = asyncio.get_running_loop().create_future()
        ended.set_result(result)  # the run is over: its result is made
        await app._drive(ended, run_screen)
        await pilot.pause()
        assert isinstance(app.screen, ReportScreen)
        assert [n.text for n in app.screen.result.notes] == ["late note"]
        saved = latest_result(tmp_path / "state" / "results", result.scenario)
        assert saved is not None and [n.text for n in saved.notes] == ["late note"]
