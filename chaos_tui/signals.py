"""SIGINT, SIGTERM and SIGHUP for a face (headless or console), from the start of a run to the
process's exit.

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
from typing import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


def say(line: str) -> None:
    """One line on stderr; a closed terminal is no reason to stop a cleanup."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
