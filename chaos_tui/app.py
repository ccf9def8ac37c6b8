"""The Textual console: picker -> detail -> typed confirmation -> live run -> report.

The run itself is the core's `Run`, executed in one async worker on the app's loop; its
events arrive as RunEventMessage and only update a LiveRun, which the run screen redraws
from a few times a second. Quitting, ctrl+c, SIGTERM and the terminal going away during a run
all heal first.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.app import App, SystemCommand
from textual.binding import Binding

from chaos_tui.catalog import PLAN_REFUSALS, Catalog, scenarios_for, unlisted_note
from chaos_tui.console_suite import ConsoleSuite
from chaos_tui.core.contracts import Scenario, ScenarioParams
from chaos_tui.core.events import RunEvent
from chaos_tui.core.guard import Refusal, check_enabled, check_not_production
from chaos_tui.core.history import open_result
from chaos_tui.core.model import OperatorNote, RunResult
from chaos_tui.core.params import check_values
from chaos_tui.core.plan import RunPlan
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.live import LiveRun, ProbeInfo
from chaos_tui.messages import RunEventMessage
from chaos_tui.otlp_export import run_exporter
from chaos_tui.runbooks import RunbookMissing, runbook_text
from chaos_tui.sandbox.usage import RunBusy, RunLock
from chaos_tui.screens.confirm import AskScreen, ConfirmRunScreen
from chaos_tui.screens.detail import DetailScreen
from chaos_tui.screens.help import HelpScreen
from chaos_tui.screens.note import NoteScreen
from chaos_tui.screens.picker import PickerScreen
from chaos_tui.session import ResultSaver, regression_policy
from chaos_tui.settings import Settings
from chaos_tui.targets import make_target
from chaos_tui.widgets.hangup_driver import HangupSafeDriver

# The picker comes up without these (plotext, markdown-it, the report's exports): each is
# imported where it is first shown. A screen of a module never imported cannot be on screen.
if TYPE_CHECKING:
    from chaos_tui.screens.report import ReportScreen
    from chaos_tui.screens.run import RunScreen


def _showing(screen: object, module: str, name: str) -> bool:
    """isinstance(screen, module.name), without importing the module for the answer."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(screen, getattr(loaded, name))


# CHAOS_CONSOLE_STATS=FILE: every STATS_EVERY_S the console appends one JSON line of its
# queue and buffer sizes (`ChaosApp.stats`) to FILE; benchmarks/soak.py reads it.
STATS_ENV = "CHAOS_CONSOLE_STATS"
STATS_EVERY_S = 10.0


class ChaosApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "chaos-tui"
    BINDINGS = [
        Binding("q", "quit_app", "Quit"),
        Binding("ctrl+q", "quit_app", "Quit", show=False, priority=True),
        Binding("ctrl+c", "abort_run", "Abort", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        target_name: str = "sandbox",
        params: dict[str, ScenarioParams] | None = None,
        options: RunOptions | None = None,
        enable_chaos: bool = False,
        export_dir: Path | None = None,
        open_scenario: str | None = None,
        file_scenarios: dict[str, type[Scenario]] | None = None,
        suite: tuple[Any, list] | None = None,
    ) -> None:
        # Textual's own driver freezes the loop once the terminal is gone (see terminal.py).
        super().__init__(driver_class=HangupSafeDriver)
        self.settings = settings
        self.target = make_target(target_name, settings)
        self.results_dir = Path(settings.state_dir) / "results"
        # Each run's result is saved once, when it ends; `chaos-tui`'s run session saves the
        # last one through this same saver on the way out, which then writes nothing again.
        # Each saved result also goes to the user's telemetry (CHAOS_OTLP_ENDPOINT), once.
        self.exporter = run_exporter(settings)
        own = file_scenarios or {}  # a file scenario's `regression:` block, else the default
        self.saver = ResultSaver(
            self.results_dir, lambda name: regression_policy(settings, own.get(name))
        )
        listed = scenarios_for(self.target.name, file_scenarios or {})
        self.catalog = Catalog(self.target, self.results_dir, params, listed)
        # Why the list is empty, or which of the file's scenarios run elsewhere (the picker).
        self.picker_note = unlisted_note(self.target.name, file_scenarios or {}, listed)
        self.options = options or RunOptions(
            rate_hz=settings.probe_rate_hz, invariant_budget_s=settings.invariant_budget_s
        )
        # Where the report's exports go: the user's --export-dir, else beside each run's
        # saved result (export_dir_for).
        self.export_dir = export_dir
        self.open_scenario = open_scenario
        self.lockout = self._lockout(enable_chaos or settings.enabled)
        # A locked console only shows plans: making one must change nothing (no sandbox ports).
        self.target.read_only = self.lockout is not None
        self.live: LiveRun | None = None
        self.last_result: RunResult | None = None
        self._run: Run | None = None
        # The run is our own task, not a Textual worker: Textual cancels its workers on exit
        # without waiting, and the heal must finish whatever ends the app (see settle()).
        self._run_task: asyncio.Task | None = None
        self._aborting = False
        self._quit_when_done = False
        # A suite given on the command line (`--suite`, `--scenario a,b`), else the one the
        # picker's queue makes (space adds a scenario): R asks for its name, then runs it.
        self.queue: list[str] = []
        self.suite: ConsoleSuite | None = ConsoleSuite(self, *suite) if suite else None
        self._suite_from_command_line = suite is not None

    # -- safety --------------------------------------------------------------------------------

    def _lockout(self, enabled: bool) -> str | None:
        try:
            check_not_production(self.settings)
            check_enabled(self.target.name, self.target.is_sandbox, enabled)
        except Refusal as exc:
            return str(exc)
        return None

    def safety_text(self) -> Text:
        if self.lockout:
            return Text(f" LOCKED: {self.lockout} ", style="bold white on red3")
        kind = "the embedded sandbox" if self.target.is_sandbox else "chaos explicitly enabled"
        return Text(
            f" target {self.target.name}: {kind}; every run asks for the scenario's name ",
            style="black on dark_sea_green4",
        )

    @property
    def run_in_progress(self) -> Run | None:
        """The run whose task has not finished (its heal included), if any."""
        if self._run_task is not None and not self._run_task.done():
            return self._run
        return None

    # -- screens -------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(PickerScreen())
        if self.open_scenario:
            self.open_detail(self.open_scenario)
        stats = os.environ.get(STATS_ENV)
        if stats:
            self.set_interval(STATS_EVERY_S, partial(self._write_stats, Path(stats)))

    def stats(self) -> dict[str, float]:
        """What could grow over a long run: the messages waiting (the app's, the screen's),
        the workers, the samples held (the run's, for its result; the LiveRun's, for the
        screen), the log's lines and the event list's. Every one of them has a cap or drains."""
        screen_queue = getattr(self.screen, "_message_queue", None)
        found: dict[str, float] = {
            "t": round(time.time(), 3),
            "app_queue": self._message_queue.qsize(),
            "screen_queue": screen_queue.qsize() if screen_queue is not None else 0,
            "workers": len(self.workers),
            "screens": len(self.screen_stack),
        }
        if self._run is not None:
            found["run_samples"] = self._run.timeline.kept
        if self.live is not None:
            found["live_samples"] = self.live.timeline.kept
            found["live_log_lines"] = len(self.live.log)
        for screen in self.screen_stack:
            log = getattr(screen, "event_lines", None)
            if log is not None:
                found["event_list_lines"] = log()
        return found

    def _write_stats(self, path: Path) -> None:
        try:
            with path.open("a") as out:
                out.write(json.dumps(self.stats()) + "\n")
        except OSError:
            pass  # a benchmark's aid: never a reason to disturb the console

    def open_detail(self, name: str) -> None:
        self.push_screen(DetailScreen(name))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))  # it lists this screen's keys

    def action_back_to_picker(self) -> None:
        while len(self.screen_stack) > 2 and not isinstance(self.screen, PickerScreen):
            self.pop_screen()

    # -- running -------------------------------------------------------------------------------

    def may_run(self) -> bool:
        if self.lockout:
            self.notify(
                self.lockout, title="refused: nothing injected", severity="error", timeout=10
            )
            return False
        if self.run_in_progress is not None:
            self.notify("a run is already in progress", severity="warning")
            return False
        return True

    def request_run(self, name: str, *, fresh: bool = True) -> None:
        """Ask for the typed confirmation, unless a safety rule or a live run says no. The
        detail screen passes `fresh=False`: the plan it shows is the one confirmed and run.
        From elsewhere (the palette) the scenario is planned now, so a pid is never one
        named long ago; the confirmation shows that plan's blast radius either way."""
        if isinstance(self.screen, ConfirmRunScreen) or not self.may_run():
            return
        try:
            plan = self.catalog.plan(name, fresh=fresh)
        except PLAN_REFUSALS as exc:
            self.notify(
                f"cannot plan {name}: {exc}",
                title="refused: nothing injected",
                severity="error",
                timeout=15,
            )
            return
        self.push_screen(ConfirmRunScreen.for_plan(plan), callback=partial(self._confirmed, name))

    def _confirmed(self, name: str, ok: bool | None) -> None:
        if ok and self.may_run():  # asked again: things may have changed while typing
            self.start_run(name)
        else:
            self.notify("cancelled: nothing was injected")

    def start_run(self, name: str) -> None:
        if self.suite is not None and self.suite.running:
            self.notify(f"suite {self.suite.name} is running", severity="warning")
            return
        try:
            run_lock = self.lock_profile(self.catalog.plan(name))
        except (RunBusy, OSError) as exc:
            self.notify(str(exc), title="refused: nothing injected", severity="error", timeout=15)
            return
        self.start_planned(self.catalog.take_plan(name), run_lock)  # the next showing plans afresh

    def lock_profile(self, plan: RunPlan) -> RunLock:
        """One run per profile and state dir, whoever starts it (sandbox/usage.py): RunBusy
        (or an OSError) when another holds it."""
        run_lock = RunLock(self.settings.state_dir, plan.profile)
        run_lock.acquire(plan.scenario_name)
        return run_lock

    def start_planned(
        self, plan: RunPlan, run_lock: RunLock | None, progress: str | None = None
    ) -> None:
        """Run this plan now on the run screen, releasing `run_lock` when it ends (a suite
        holds its profiles' locks itself, and passes None); `progress` is a suite's
        (`platform run 2/4`)."""
        from chaos_tui.screens.run import RunScreen

        name = plan.scenario_name
        self._run = Run(plan, self.target, self._emit, self.options)
        self.live = LiveRun(
            name,
            self.target.name,
            [ProbeInfo(p.name, p.description, p.unit) for p in plan.probes],
            list(plan.invariants),
            plan.recovery_probe,
            plan.backlog_probe,
            recovery_from=self._run.timeline,
        )
        self.live.suite = progress
        self._aborting = False
        screen = RunScreen(self.live)
        self.push_screen(screen)
        self._run_task = asyncio.ensure_future(self._run.execute())
        if run_lock is not None:
            self._run_task.add_done_callback(lambda _: run_lock.release())
        self.run_worker(
            self._drive(self._run_task, screen),
            name=f"run:{name}",
            group="run",
            exit_on_error=False,
        )

    # -- suites: a queue of scenarios, confirmed once by the suite's name ---------------------

    def toggle_queued(self, name: str) -> None:
        """space on the picker: the scenario joins the queue (or leaves it)."""
        if self._suite_from_command_line:
            self.notify(
                f"the queue is suite {self.suite.name} (from the command line)",  # type: ignore[union-attr]
                severity="warning",
            )
            return
        if self.suite is not None and self.suite.running:
            self.notify("a suite is running: its list is fixed", severity="warning")
            return
        if name in self.queue:
            self.queue.remove(name)
        else:
            self.queue.append(name)
        self.suite = self._queue_suite() if self.queue else None

    def _queue_suite(self) -> ConsoleSuite:
        from chaos_tui.cli.suite import SuiteStep
        from chaos_tui.suite.load import listed_suite

        suite = listed_suite(self.queue, None, False)  # named `gameday`
        steps = [
            SuiteStep(self.catalog.scenarios[n], self.catalog.params_of(n), None)
            for n in self.queue
        ]
        return ConsoleSuite(self, suite, steps)

    def action_run_suite(self) -> None:
        """R: the queue (or the command line's suite), after its name is typed."""
        if self.suite is None:
            self.notify("the queue is empty: space adds the highlighted scenario", timeout=6)
            return
        if not self._suite_from_command_line:
            self.suite = self._queue_suite()  # with the parameters chosen since
        self.suite.request()

    def _emit(self, event: RunEvent) -> None:
        self.post_message(RunEventMessage(event))

    def on_run_event_message(self, message: RunEventMessage) -> None:
        if self.live is not None:
            self.live.apply(message.event)

    async def _drive(self, task: asyncio.Task, screen: RunScreen) -> None:
        """The run's one worker: waits for the run (shielded, so Textual's shutdown cannot
        cancel it half-way), saves the result and shows the report."""
        result = await asyncio.shield(task)
        self.last_result = result
        self._keep_note_being_typed(result)
        saved: Path | None = None
        try:
            saved = await asyncio.to_thread(self.saver.save, result)
        except OSError as exc:
            self.notify(f"could not save the result: {exc}", severity="warning")
        suite = self.suite if self.suite is not None and self.suite.running else None
        if suite is not None:
            suite.run_ended(result, saved)
        if self._quit_when_done:
            self.exit(result)
            return
        if self.live is not None and self.live.result is None:
            self.live.result = result  # the RunFinished message may still be queued
        try:
            # Close whatever sits on the run screen (a question, the help, the palette): the
            # report replaces the run screen, not them.
            while self.screen is not screen and screen in self.screen_stack:
                self.pop_screen()
            await self.switch_screen(self.report_screen(result, saved))
        except Exception as exc:  # the result is saved; say so rather than hang on the run screen
            self.notify(
                f"could not show the report ({exc}); the result is in {self.results_dir}",
                severity="error",
                timeout=15,
            )
        # After the report is up, so a slow endpoint never holds it back (quitting instead:
        # the run session sends it on the way out).
        if self.exporter is not None:
            problem = await asyncio.to_thread(self.exporter.export, result)
            if problem:
                self.notify(problem, severity="warning", timeout=10)
        if suite is not None:
            suite.next()  # the next run after its pause, or the suite's report

    def _keep_note_being_typed(self, result: RunResult) -> None:
        """The run ended while a note was being typed: the report is about to close its box
        (without its callback), so the text goes into the result here rather than nowhere."""
        boxes = [s for s in self.screen_stack if isinstance(s, NoteScreen)]
        typed = boxes[-1].typed if boxes else ""
        if typed:
            result.notes.append(OperatorNote(t=time.time(), text=typed))
            self.notify("the run ended while you typed: your note is in its result")

    async def settle(self) -> None:
        """After the app has stopped, however it stopped: a run still going is aborted and its
        heal awaited on this loop. `chaos-tui` calls this before it returns. A suite still
        going ends here, with the run it cut short, and its report is saved."""
        saved = await self._settle_run()
        suite = self.suite
        if suite is not None and suite.running:
            if self.last_result is not None:
                suite.run_ended(self.last_result, saved)
            suite.settle()

    async def _settle_run(self) -> Path | None:
        task = self._run_task
        if task is None:
            return None
        if task.done():
            # Ended just as the app quit: the worker that saves it may have been cancelled
            # before it could. Saving again is harmless (the saver writes a run once).
            if task.cancelled() or task.exception() is not None:
                return None
            self.last_result = task.result()
        else:
            task.cancel()
            try:
                self.last_result = await asyncio.shield(task)
            except asyncio.CancelledError:
                self.last_result = await task  # a second signal: the runner still heals first
        if self.last_result is None:
            return None
        try:
            return await asyncio.to_thread(self.saver.save, self.last_result)
        except OSError:
            return None

    def action_abort_run(self) -> None:
        """ctrl+c: during a run, abort it (the runner heals first), and a suite ends after it;
        in a suite's pause, end the suite; otherwise quit."""
        suite = self.suite
        if suite is not None and suite.running:
            suite.stop("stopped by the operator")
            if self.run_in_progress is None:
                return  # its report is up
        if self.run_in_progress is None:
            self.exit()
            return
        if self._aborting:
            self.notify("already aborting: the heal finishes first", severity="warning")
            return
        self._aborting = True
        self.notify("aborting: healing every live fault first", severity="warning")
        if self._run_task is not None:
            self._run_task.cancel()  # the runner catches it, heals, and returns "interrupted"

    async def action_quit(self) -> None:
        """Textual's own quit (the palette's Quit) goes through the same question."""
        self.action_quit_app()

    def action_quit_app(self) -> None:
        if self.run_in_progress is None:
            self.exit()
            return
        question = (
            "A run is in progress and a fault may be live.\nAbort it, heal everything, then quit?"
        )
        self.push_screen(
            AskScreen(question, yes="Heal and quit", no="Keep running"), callback=self._quit_answer
        )

    def _quit_answer(self, yes: bool | None) -> None:
        if yes:
            self._quit_when_done = True
            self.action_abort_run()

    def on_signal(self, signame: str) -> None:
        """SIGTERM, SIGINT or SIGHUP (the terminal went away): heal, then exit."""
        self._quit_when_done = True
        if self.suite is not None and self.suite.running:
            self.suite.book.stop(f"{signame} received")  # type: ignore[union-attr]
        if self.run_in_progress is None:
            self.exit()
        elif not self._aborting:
            self.notify(f"{signame}: healing before exit", severity="warning")
            self.action_abort_run()
        else:  # reported, never obeyed: the heal finishes first
            self.notify(
                f"{signame}: still healing; the console exits once it is done", severity="warning"
            )

    def action_halt(self) -> None:
        self._operator(
            lambda run: run.halt(),
            "halt: healing every live fault, nothing more will be injected in this run",
        )

    def action_heal(self) -> None:
        self._operator(lambda run: run.heal_now(), "healing every live fault now")

    def _operator(self, act, message: str) -> None:
        run = self.run_in_progress
        if run is None:
            self.notify("no run in progress: nothing is live", severity="warning")
            return
        if not run.live_faults:
            self.notify("no fault is live right now")
        else:
            self.notify(message, severity="warning")
        self.run_worker(act(run), group="operator", exit_on_error=False)

    # -- what next: the report's re-run, runbook, history and exports; notes during a run -----

    def export_dir_for(self, result: RunResult) -> Path:
        """The user's --export-dir, else `exports/` beside the scenario's saved results (not
        in that folder itself: an exported JSON there would count as a second run)."""
        return self.export_dir or self.results_dir / result.scenario / "exports"

    def report_screen(self, result: RunResult, saved: Path | None) -> ReportScreen:
        from chaos_tui.screens.report import ReportScreen

        return ReportScreen(result, self.export_dir_for(result), saved_path=saved)

    def _report(self) -> ReportScreen | None:
        screen = self.screen
        if _showing(screen, "chaos_tui.screens.report", "ReportScreen"):
            return cast("ReportScreen", screen)
        self.notify("no report is open", severity="warning")
        return None

    def action_rerun(self) -> None:
        """`r` on a report: the same scenario with the parameters that run used (edited ones
        included: they are what the result recorded), after the typed confirmation."""
        report = self._report()
        if report is not None:
            self.rerun(report.result)

    def rerun(self, result: RunResult) -> None:
        cls = self.catalog.scenarios.get(result.scenario)
        if cls is None:
            self.notify(
                f"{result.scenario} is not listed in this console (target {self.target.name})",
                title="cannot run it again",
                severity="error",
            )
            return
        # Its parameters; a scenario file's variables recorded beside them are the file's now.
        own = {k: v for k, v in result.parameters.items() if k in cls.Params.model_fields}
        params, errors = check_values(cls.Params, own, result.scenario)
        if params is None:  # a result of an older version, whose parameters changed
            self.notify(
                f"its parameters do not fit {result.scenario} any more: "
                + "; ".join(errors.values()),
                title="cannot run it again",
                severity="error",
                timeout=15,
            )
            return
        if not self.may_run():
            return
        # The catalog plans with these from now on, so what the confirmation shows is what
        # runs, and the detail screen shows the same.
        self.catalog.set_params(result.scenario, params)
        self.request_run(result.scenario, fresh=True)

    def action_runbook(self) -> None:
        report = self._report()
        if report is not None:
            self.open_runbook(report.result.scenario, report.result.runbook)

    def open_runbook(self, scenario: str, fallback: str | None = None) -> None:
        """The scenario's runbook, read from the installed package (a result names its
        runbook only when it failed; the scenario always does)."""
        cls = self.catalog.scenarios.get(scenario)
        ref = (cls.runbook if cls is not None else None) or fallback
        if ref is None:
            self.notify(f"{scenario} has no runbook", severity="warning")
            return
        try:
            text = runbook_text(ref)
        except (RunbookMissing, OSError) as exc:
            self.notify(str(exc), title="no runbook", severity="error")
            return
        from chaos_tui.screens.runbook import RunbookScreen

        self.push_screen(RunbookScreen(ref, text))

    def action_history(self) -> None:
        report = self._report()
        if report is not None:
            self.open_history(report.result.scenario)

    def open_history(self, scenario: str) -> None:
        """Every saved run of the scenario. From a report opened out of that same history,
        back to it rather than one more on top."""
        from chaos_tui.screens.history import HistoryScreen

        stack = self.screen_stack
        if len(stack) > 1 and _showing(self.screen, "chaos_tui.screens.report", "ReportScreen"):
            below = stack[-2]
            if isinstance(below, HistoryScreen) and below.scenario == scenario:
                self.pop_screen()
                return
        self.push_screen(HistoryScreen(scenario, self._default_params(scenario)))

    def _default_params(self, scenario: str) -> dict:
        """The scenario's parameters by default, which a history row compares against (none
        for a scenario no longer listed, or one whose parameters have no defaults)."""
        cls = self.catalog.scenarios.get(scenario)
        try:
            return cls.Params().model_dump() if cls is not None else {}
        except ValueError:
            return {}

    def open_past_report(self, path: Path) -> None:
        try:
            result = open_result(path)
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.notify(
                f"cannot open {path.name}: {first}", title="unreadable result", severity="error"
            )
            return
        self.push_screen(self.report_screen(result, path))

    def action_export_report(self, kind: str) -> None:
        report = self._report()
        if report is not None:
            report.action_export(kind)

    def action_note(self) -> None:
        """`n` during a run: a one-line note, stamped when entered, into the run's timeline
        and result."""
        if self.run_in_progress is None:
            self.notify("no run in progress: a note belongs to a run", severity="warning")
            return
        if not isinstance(self.screen, NoteScreen):
            self.push_screen(NoteScreen(), callback=self._note_typed)

    def _note_typed(self, text: str | None) -> None:
        run = self.run_in_progress
        if not text or not text.strip():
            return
        if run is None:
            self.notify("the run ended before the note: not added", severity="warning")
            return
        run.add_note(text)

    def _report_commands(self, screen):
        """The palette's commands for an open report."""
        if not _showing(screen, "chaos_tui.screens.report", "ReportScreen"):
            return
        from chaos_tui.screens.report import EXPORT_KINDS

        name = screen.result.scenario
        for kind, label in EXPORT_KINDS.items():
            yield SystemCommand(
                f"Export report as {label}",
                f"write it to {screen.export_dir}",
                partial(self.action_export_report, kind),
            )
        yield SystemCommand(
            f"Run {name} again", "with the same parameters, after the typed name", self.action_rerun
        )
        yield SystemCommand(f"Runbook of {name}", "what to do when it fails", self.action_runbook)
        yield SystemCommand(f"History of {name}", "every saved run of it", self.action_history)

    def get_system_commands(self, screen):
        """Textual's own commands, then only those that apply now: a scenario starts only
        while nothing runs; heal, halt and abort only on the screen of a run in progress."""
        yield from super().get_system_commands(screen)
        yield from self._report_commands(screen)
        if self.run_in_progress is None:
            for entry in self.catalog.entries:
                yield SystemCommand(
                    f"Run {entry.name}",
                    f"asks for the name, then runs it on {self.target.name}",
                    partial(self.request_run, entry.name),
                )
            return
        if not _showing(screen, "chaos_tui.screens.run", "RunScreen"):
            return
        yield SystemCommand(
            "Heal live faults", "heal every live fault now; the run goes on", self.action_heal
        )
        yield SystemCommand(
            "Halt", "heal every live fault and inject nothing more in this run", self.action_halt
        )
        yield SystemCommand(
            "Abort run", "stop the run after healing everything", self.action_abort_run
        )
