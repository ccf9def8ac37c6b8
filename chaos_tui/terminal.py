"""The console's terminal may go away mid-run (a window closed, an ssh session dropped): the
console must then heal, save and exit, not freeze.

Textual's LinuxDriver (textual 8) cannot survive that by itself. Once the terminal is hung up,
every write to it fails with EIO: the driver's writer thread dies on the first one, its
30-write queue fills, and the next screen update blocks the event loop for good in
`Queue.put`, so the SIGHUP that `chaos-tui` hands to that loop is never handled. Its input
thread meanwhile spins, because a hung-up terminal reads as an endless end of file.

`HangupSafeDriver` notices the loss where it shows first: a write that fails, or (for a console
that draws nothing while idle) a once-a-second `tcgetattr`, which fails on a hung-up terminal.
From then on
- writes are dropped, so the writer thread lives and the loop never blocks;
- fds 0, 1 and 2 point at /dev/null, so whatever writes later (Textual's shutdown, the exit
  lines of `chaos-tui`, the interpreter's last flush) neither fails nor needs a guard;
- the input thread is told to stop instead of spinning;
- the process sends itself SIGHUP, as the kernel does on a hang-up but only to the terminal's
  session leader and foreground group: whatever handles SIGHUP (for `chaos-tui`, heal, save,
  stop and exit 130) runs however the console was started. A second SIGHUP is harmless there.

Any OSError on a write counts as gone: a console that cannot draw cannot be operated, and
healing then exiting is the safe answer to every way a terminal can fail. Textual's installed
code is left as it is: this subclasses the driver and wraps the file it writes to, the two
hooks that need no copy of Textual's code. (Making the input thread stop on EOF itself would
need such a copy; the driver's `exit_event` stops it from outside instead.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import termios
import threading
from typing import Callable, TextIO

from textual.drivers.linux_driver import LinuxDriver

WATCH_INTERVAL_S = 1.0


class TerminalOutput:
    """The file the driver's writer thread writes to: forwards to the terminal until a write
    fails, then drops everything and reports the loss once."""

    def __init__(self, terminal: TextIO, on_gone: Callable[[], None]) -> None:
        self._terminal = terminal
        self._on_gone = on_gone
        self.gone = False

    def write(self, text: str) -> None:
        self._forward(self._terminal.write, text)

    def flush(self) -> None:
        self._forward(self._terminal.flush)

    def fileno(self) -> int:
        return self._terminal.fileno()

    def _forward(self, call, *args) -> None:
        if self.gone:
            return
        try:
            call(*args)
        except OSError:
            self.gone = True  # only the writer thread calls in here: no race to guard
            self._on_gone()


def silence_standard_fds() -> None:
    """Points fds 0, 1 and 2 at /dev/null, which takes every write and ends every read."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    finally:
        os.close(null)


class HangupSafeDriver(LinuxDriver):
    """Textual's Linux driver, for a terminal that may go away (see the module's doc)."""

    def __init__(self, app, **kwargs) -> None:
        super().__init__(app, **kwargs)
        # LinuxDriver hands `self._file` (sys.__stderr__) to its writer thread when
        # application mode starts.
        self._file = TerminalOutput(self._file, self._terminal_gone)
        self._watch: asyncio.TimerHandle | None = None
        self._gone = False
        self._gone_lock = threading.Lock()  # the writer thread and the watch may both notice

    def start_application_mode(self) -> None:
        super().start_application_mode()
        if os.isatty(self.fileno):
            self._watch_terminal()

    def stop_application_mode(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().stop_application_mode()

    def _watch_terminal(self) -> None:
        """On the app's loop, once a second while the terminal is there."""
        try:
            termios.tcgetattr(self.fileno)
        except termios.error:  # EIO: hung up
            self._watch = None
            self._terminal_gone()
            return
        self._watch = asyncio.get_running_loop().call_later(WATCH_INTERVAL_S,
                                                            self._watch_terminal)

    def _terminal_gone(self) -> None:
        """Once, from the writer thread or the watch on the loop, whichever noticed first."""
        with self._gone_lock:
            if self._gone:
                return
            self._gone = True
        self.exit_event.set()  # the input thread's loop ends at its next turn
        try:
            silence_standard_fds()
        except OSError:
            pass  # no fd left to open /dev/null with: the heal and exit matter more
        os.kill(os.getpid(), signal.SIGHUP)
