"""When each run of a suite starts: which step, which pass over the list, after what pause, and
when the suite is over (its passes done, its `for:` time up, or a stop). Both faces (headless,
the console) ask it, so a suite runs the same in either; it sleeps nothing itself."""

from __future__ import annotations

import time
from dataclasses import dataclass

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.suite.model import SuiteFile, pause_rng, pause_s


@dataclass(frozen=True)
class NextRun:
    step: int  # index into the suite's list
    repetition: int  # 1-based pass over the list
    index: int  # 1-based, in the order run
    wait_s: float  # the pause before it


class Schedule:
    def __init__(self, spec: SuiteFile) -> None:
        self.spec = spec
        self.rng = pause_rng(spec)
        self.started_at = time.time()
        self._deadline = time.monotonic() + spec.for_s if spec.for_s else None
        self._started = 0  # runs started
        self._last_start: float | None = None
        self._last_step: int | None = None
        self.stopped = ""  # why the suite ended before its list did

    @property
    def total(self) -> int | None:
        """Runs in all, when known (`for:` alone bounds them by time, not by count)."""
        passes = self.spec.passes
        return None if passes is None else passes * len(self.spec.runs)

    def next(self) -> NextRun | None:
        """The next run and the pause before it, or None when the suite is over."""
        if self.stopped or not self.time_left():
            return None
        steps = len(self.spec.runs)
        repetition, step = divmod(self._started, steps)
        if self.spec.passes is not None and repetition >= self.spec.passes:
            return None
        wait = 0.0
        if self._last_start is not None:
            if self.spec.every is not None:  # start to start
                wait = max(0.0, self._last_start + self.spec.every - time.monotonic())
            else:
                assert self._last_step is not None
                own = self.spec.runs[self._last_step].pause
                wait = pause_s(own if own is not None else self.spec.pause, self.rng)
        if self._deadline is not None:  # a pause never runs past `for:`
            wait = min(wait, max(0.0, self._deadline - time.monotonic()))
        return NextRun(step, repetition + 1, self._started + 1, wait)

    def time_left(self) -> bool:
        """Whether a run may still start (`for:` is up: the suite ends, it is not stopped)."""
        return self._deadline is None or time.monotonic() < self._deadline

    def starting(self, run: NextRun) -> None:
        self._started += 1
        self._last_start = time.monotonic()
        self._last_step = run.step

    def ended(self, code: ExitCode, index: int) -> None:
        """A run's exit code: a failed heal always stops the suite; any other failure does
        when the suite says `on_failure: stop`."""
        if code == ExitCode.HEAL_FAILED:
            self.stopped = "a heal failed: the target needs a look before any more faults"
        elif code != ExitCode.PASS and self.spec.on_failure == "stop":
            self.stopped = f"on_failure: stop, and run {index} did not pass"

    def stop(self, why: str) -> None:
        self.stopped = self.stopped or why
