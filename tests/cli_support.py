"""A chaos-tui process watched as it runs: its stderr read line by line, so a test can wait
for a line (then send a signal, say) and read all of it afterwards."""

from __future__ import annotations

import queue
import subprocess
import threading
import time

from tests.conftest import CHAOS_TUI


class Watched:
    """A chaos-tui process whose stderr is read line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            CHAOS_TUI + args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self._stdout: list[str] = []
        threading.Thread(
            target=self._read, args=(self.proc.stderr, self._queue), daemon=True
        ).start()
        threading.Thread(
            target=lambda: self._stdout.append(self.proc.stdout.read()), daemon=True
        ).start()

    @staticmethod
    def _read(stream, into: queue.Queue) -> None:
        for line in stream:
            into.put(line)
        into.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout:g}s:\n{self.stderr}")

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.wait_for_eof(10)
        return code

    def wait_for_eof(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
        deadline = time.monotonic() + timeout
        while not self._stdout and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)
