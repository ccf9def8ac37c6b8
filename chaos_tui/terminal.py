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
code is left as it is: `widgets/hangup_driver.py` subclasses the driver and wraps the file it
writes to (with `TerminalOutput` here), the two hooks that need no copy of Textual's code.
This module holds the Textual-free parts (nothing outside app.py, screens/, widgets/ and
messages.py imports Textual). (Making the input thread stop on EOF itself would
need such a copy; the driver's `exit_event` stops it from outside instead.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TextIO


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
