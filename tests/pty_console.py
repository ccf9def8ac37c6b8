"""The real console in a pseudo-terminal, for end-to-end tests: `chaos-tui` started the way an
operator starts it (its own session, a 120x40 terminal), keys typed into it, its screen read
back as plain text, and its exit code."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import threading
import time

from tests.conftest import CHAOS_TUI

# Escape sequences the console writes (cursor moves, colours, modes): dropped to read the text.
ESCAPES = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]"
)


def _take_controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # runs in the child, after setsid()


class PtyConsole:
    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        controlling_terminal: bool = True,
        rows: int = 40,
        columns: int = 120,
    ) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        # Its own session with this terminal as its controlling one, as a login shell gives it:
        # closing the terminal (hang_up) makes the kernel send it SIGHUP. Without one (a
        # process the hang-up's SIGHUP does not reach) only its failing writes tell it.
        self.proc = subprocess.Popen(
            [*CHAOS_TUI, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color"},
            start_new_session=True,
            preexec_fn=_take_controlling_terminal if controlling_terminal else None,
        )
        os.close(slave)
        self.master = master
        self.output = bytearray()
        # Drained all the time: a console whose terminal is not read blocks on its writes.
        self._stop_reading = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        # Never blocked in read(): a read in flight keeps the master open in the kernel after
        # close(), so hang_up would wait for the console's next write to take effect.
        while not self._stop_reading.is_set():
            if not select.select([self.master], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def text(self) -> str:
        return ESCAPES.sub(b"", bytes(self.output)).decode(errors="replace")

    def wait_for(self, words: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{words!r} never showed (exit {self.proc.poll()}); "
                    f"the screen ended with: {self.text()[-1500:]}"
                )
            time.sleep(0.1)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def hang_up(self) -> None:
        """The terminal goes away (a closed window, a dropped ssh session): at once, as the
        last close of the master hangs up the console's side."""
        self._stop_reading.set()
        self._reader.join(5)
        os.close(self.master)
        self.master = -1

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Whatever happened: the console is gone (SIGKILL of its pid if it still runs)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        if self.master >= 0:
            os.close(self.master)
