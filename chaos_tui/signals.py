"""SIGINT, SIGTERM and SIGHUP for a face (headless or console), from the start of a run to the
process's exit, with one policy for both faces (`CleanupSignals`).

Plain signal handlers rather than the event loop's: the loop's are removed when the loop
closes, and a signal after that (while services are stopped or the result saved) used to
raise KeyboardInterrupt or kill the process with the result lost. These stay in place until
the process exits; each signal is handed to the loop while it runs, or handled at once when
it does not.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
FORCE_WINDOW_S = 2.0  # a third signal this soon after the one before may force the exit


class SignalRelay:
    def __init__(self, handle: Callable[[str], None]) -> None:
        self.handle = handle  # handle("SIGINT"), called on the loop's thread
        self.loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        # Runs between two bytecodes of the main thread, maybe inside the loop's own code:
        # hand the work over rather than do it here.
        name = signal.Signals(signum).name
        loop = self.loop
        if loop is not None and not loop.is_closed() and loop.is_running():
            loop.call_soon_threadsafe(self.handle, name)
        else:
            self.handle(name)


class CleanupSignals:
    """What a signal means at each stage of a face's life: running -> healing -> stopping ->
    saving -> done.

    While running, the first signal aborts (`abort`: the runner heals before it returns);
    later ones go to `repeat` if given (the console shows them in the app), else they are
    reported. From then on every signal is reported and ignored: the heal, stopping what the
    face started and saving the result all finish first. Only once the heal is done may a
    third signal within FORCE_WINDOW_S of the one before give up waiting for the services to
    stop (`forced`); the result is still saved.
    """

    def __init__(
        self, abort: Callable[[str], None], who: str, repeat: Callable[[str], None] | None = None
    ) -> None:
        self.abort, self.repeat = abort, repeat
        self.who = who  # "this run", "the console": whose started services are being stopped
        self.stage = "running"
        self.aborted_at: float | None = None
        self.forced = asyncio.Event()
        self._times: list[float] = []
        self.relay = SignalRelay(self.received)

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.relay.install()  # kept until the process exits
        self.relay.loop = loop

    @property
    def signalled(self) -> bool:
        return bool(self._times)

    def enter(self, stage: str) -> None:
        if stage == "healing" and self.aborted_at is None:
            self.aborted_at = time.monotonic()
        self.stage = stage

    def received(self, name: str) -> None:
        now = time.monotonic()
        self._times.append(now)
        if self.stage == "running":
            if self.aborted_at is None:
                self.aborted_at = now
                self.abort(name)
            elif self.repeat is not None:
                self.repeat(name)
            else:
                self._still_healing(name, now)
        elif self.stage == "healing":
            self._still_healing(name, now)
        elif self.stage == "stopping":
            if len(self._times) >= 3 and now - self._times[-2] <= FORCE_WINDOW_S:
                say(
                    f"{name} received again: not waiting for what {self.who} started to stop "
                    "(`chaos-tui sandbox down` stops it); saving the result"
                )
                self.forced.set()
            else:
                say(
                    f"{name} received: stopping what {self.who} started, then saving the "
                    f"result (a third signal within {FORCE_WINDOW_S:g} s skips the wait)"
                )
        elif self.stage == "saving":
            say(f"{name} received: saving the result, then exiting")
        else:
            say(f"{name} received: exiting")

    def _still_healing(self, name: str, now: float) -> None:
        since = now - (self.aborted_at or now)
        say(
            f"{name} received: still healing, {since:.0f} s; exiting once the heal is done "
            "and the result saved"
        )

    async def unless_forced(self, work) -> None:
        """Await `work` (a future), or stop waiting once a forced exit was asked for."""
        forced = asyncio.ensure_future(self.forced.wait())
        await asyncio.wait([work, forced], return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()


def say(line: str) -> None:
    """One line on stderr; a closed terminal is no reason to stop a cleanup."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
