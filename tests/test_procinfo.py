"""Naming exact processes: whoever listens on a port, or what a pid file says, resolved to
pid and kernel start time (a reused pid is never mistaken for the one named)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from chaos_tui.core.procinfo import from_pid_file, listeners, start_ticks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, bind: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", bind],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
    )
    deadline = time.monotonic() + 10
    while not listeners(port):
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not listen"
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("bind", ["127.0.0.1", "::1"])
def test_the_process_listening_on_a_port_is_found_exactly(bind):
    port = free_port()
    assert listeners(port) == []
    proc = serve(port, bind)
    try:
        assert listeners(port) == [(proc.pid, start_ticks(proc.pid))]
    finally:
        proc.kill()
        proc.wait(5)
    assert listeners(port) == []


def test_a_pid_file_names_a_live_process_or_says_why_not(tmp_path):
    pid_file = tmp_path / "app.pid"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file.write_text(f"{proc.pid}\n")
        assert from_pid_file(pid_file) == (proc.pid, start_ticks(proc.pid))
    finally:
        proc.kill()
        proc.wait(5)
    with pytest.raises(ValueError, match="which is not running"):
        from_pid_file(pid_file)
    for text, needle in (
        ("hello", "not a process id"),
        ("1", "not a process id"),
        ("", "holds .., not"),
    ):
        pid_file.write_text(text)
        with pytest.raises(ValueError, match=needle):
            from_pid_file(pid_file)
    with pytest.raises(ValueError, match="cannot read pid file"):
        from_pid_file(tmp_path / "missing.pid")
