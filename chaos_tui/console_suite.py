"""A suite in the console: the queue shown in the picker, one typed confirmation of the
suite's name for all its runs, each run on the run screen with the suite's progress, its
report between runs (for the suite's pause), and the suite's report at the end.

The schedule, the records and the report are the headless face's (suite_book.py), so a suite
runs the same in both. This drives them with the app's own calls; Textual itself is only
imported by the screens it opens.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos_tui.catalog import PLAN_REFUSALS
from chaos_tui.core.errors import UsageError
from chaos_tui.core.model import RunResult
from chaos_tui.core.plan import RunPlan, plan_run
from chaos_tui.core.report import duration_text
from chaos_tui.core.suite import SuiteReport
from chaos_tui.suite.schedule import NextRun
from chaos_tui.suite_book import SuiteBook, lock_profiles, save_report
from chaos_tui.suite_view import describe

if TYPE_CHECKING:
    from chaos_tui.app import ChaosApp


class ConsoleSuite:
    def __init__(self, app: ChaosApp, suite, steps: list) -> None:
        self.app, self.suite, self.steps = app, suite, steps
        self.book: SuiteBook | None = None  # while it runs
        self.following: NextRun | None = None  # the run going on, or the next one
        self._timer: Any = None  # the pause before the next run
        self._locks: list = []  # its profiles' run locks, held from the confirmation to the end

    @property
    def name(self) -> str:
        return self.suite.name

    @property
    def running(self) -> bool:
        return self.book is not None

    @property
    def pausing(self) -> bool:
        return self._timer is not None

    def describe(self) -> str:
        return describe(self.suite.spec)

    # -- starting ------------------------------------------------------------------------------

    def request(self) -> None:
        """The typed confirmation of the whole suite, with every run's plan in it."""
        from chaos_tui.screens.confirm import ConfirmRunScreen

        if self.running:
            self.app.notify(f"suite {self.name} is already running", severity="warning")
            return
        if not self.app.may_run():
            return
        try:
            plans = [self._plan(step) for step in self.steps]
        except PLAN_REFUSALS as exc:
            self.app.notify(
                f"cannot plan suite {self.name}: {exc}",
                title="refused: nothing injected",
                severity="error",
                timeout=15,
            )
            return
        screen = ConfirmRunScreen.for_suite(self.name, plans, self.describe())
        self.app.push_screen(screen, callback=self._confirmed)

    def _plan(self, step) -> RunPlan:
        return plan_run(step.scenario_cls(step.params), self.app.target)

    def _confirmed(self, ok: bool | None) -> None:
        if not (ok and self.app.may_run()):  # asked again: things may have changed meanwhile
            self.app.notify("cancelled: nothing was injected")
            return
        try:  # as headless: no other run of these profiles between the suite's runs
            self._locks = lock_profiles(self.app.settings.state_dir, self.steps, self.name)
        except (OSError, UsageError) as exc:  # RunBusy (a UsageError) names the holder
            self.app.notify(str(exc), title="refused: nothing injected", severity="error")
            return
        self.book = SuiteBook(
            self.suite, self.steps, self.app.target.name, policy_for=self.app.saver.policy_for
        )
        self.next()

    def _release(self) -> None:
        for lock in self._locks:
            lock.release()
        self._locks = []

    def next(self) -> None:
        """The next run now, or after its pause; the suite's report when it is over."""
        if self.book is None:
            return
        following = self.book.schedule.next()
        if following is None:
            self.finish()
            return
        self.following = following
        if following.wait_s <= 0:
            self._start(following)
            return
        scenario = self.book.step_name(following)
        self.app.notify(
            f"suite {self.name}: {scenario} in {duration_text(following.wait_s)} "
            "(ctrl+c ends the suite)",
            timeout=min(following.wait_s, 10),
        )
        self._timer = self.app.set_timer(following.wait_s, partial(self._start, following))

    def _start(self, following: NextRun) -> None:
        self._timer = None
        book = self.book
        if book is None:
            return
        if book.schedule.stopped or not book.schedule.time_left():
            self.finish()
            return
        if not self.app.may_run():
            book.stop("the console refused the next run")
            self.finish()
            return
        plan = book.start(following, self.app.target)
        if plan is None:  # recorded, and the suite ends: its report says why
            self.app.notify(book.records[-1].reason, severity="error", timeout=10)
            self.next()
            return
        self.app.action_back_to_picker()  # the last report goes: a soak must not pile them up
        self.app.start_planned(plan, None, progress=f"{self.name} {book.progress(following)}")

    # -- ending --------------------------------------------------------------------------------

    def run_ended(self, result: RunResult, saved: Path | None) -> None:
        """Called by the app once a suite run's result is saved (and again, harmlessly, by
        the app's settle on the way out)."""
        book = self.book
        if book is None or self.following is None:
            return
        if book.records and book.records[-1].run_id == result.run_id:
            return  # recorded already
        book.add(result, self.following, saved)

    def stop(self, why: str) -> bool:
        """End the suite (ctrl+c, a signal): no run after this one; during a pause, at once.
        False when no suite is running."""
        if self.book is None:
            return False
        self.book.stop(why)
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
            self.finish()
        return True

    def finish(self) -> None:
        from chaos_tui.screens.suite_report import SuiteReportScreen

        if self.book is None:
            return
        report, where = self._save(self.book)
        self.book = None
        self._release()
        self.app.action_back_to_picker()
        self.app.push_screen(SuiteReportScreen(report, where))

    def settle(self) -> None:
        """The console has stopped: a suite still going ends here, its report saved (no
        screen: the app is gone)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.book is not None:
            self.book.stop("the console stopped")
            self._save(self.book)
            self.book = None
        self._release()

    def _save(self, book: SuiteBook) -> tuple[SuiteReport, Path | None]:
        report = book.report()
        try:
            return report, save_report(report, Path(self.app.settings.state_dir))
        except OSError as exc:
            self.app.notify(f"could not save the suite's result: {exc}", severity="warning")
            return report, None
