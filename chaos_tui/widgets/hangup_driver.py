"""`HangupSafeDriver`: Textual's Linux driver for a terminal that may go away mid-run (a window
closed, an ssh session dropped). Why and how: see chaos_tui/terminal.py, which holds the
Textual-free parts (the file wrapper, the silencing of fds 0-2); this module is only the
driver subclass, here because only app.py, screens/, widgets/ and messages.py import Textual.
"""

from __future__ import annotations

import asyncio
import os
import signal
import termios
import threading

from textual.drivers.linux_driver import LinuxDriver

from chaos_tui.terminal import TerminalOutput, silence_standard_fds

WATCH_INTERVAL_S = 1.0


class HangupSafeDriver(LinuxDriver):
    """Textual's Linux driver, for a terminal that may go away (see chaos_tui/terminal.py)."""

    def __init__(self, app, **kwargs) -> None:
        super().__init__(app, **kwargs)
        # LinuxDriver hands `self._file` (sys.__stderr__) to its writer thread when
        # application mode starts.
        # (LinuxDriver types _file as a TextIOWrapper; the writer thread only writes and flushes)
        self._file = TerminalOutput(self._file, self._terminal_gone)  # type: ignore[assignment,arg-type]
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
        self._watch = asyncio.get_running_loop().call_later(WATCH_INTERVAL_S, self._watch_terminal)

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
