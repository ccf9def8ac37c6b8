"""What tui_cost.py and soak.py share: the console in a real pseudo-terminal, a scenario with
eight probes against a local HTTP server, and the process figures read from /proc.

The scenario is a scenario file written into the benchmark's own state directory: three HTTP
probes and four TCP probes (two of each through a proxy the run opens, the rest straight to
the server), and the fault agent's own probe that every run adds: eight probes, sampled at the
probe rate. The
fault is 50 ms of latency on the proxy. Nothing in it needs the sandbox, so what is measured
is the console and the runner, not PostgreSQL starting. The server is a process of its own
(a thread per request, a two-byte body) that the benchmark stops at its end.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "console_cost"
COLS, ROWS = 130, 42
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

SERVER = """
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

SCENARIO_FILE = """version: 1
variables:
  port: 8080
  proxy_port: 18080
scenarios:
  {name}:
    hypothesis: "Eight probes at the probe rate stay up through 50 ms of added latency"
    warmup_seconds: {warmup:g}
    recover_seconds: {recover:g}
    steady_state:
{probes}
    actions:
      - type: latency
        proxy: {{listen: "127.0.0.1:${{proxy_port}}", upstream: "127.0.0.1:${{port}}"}}
        latency: 50
        duration_seconds: {hold:g}
"""


def probes_yaml() -> str:
    """Three HTTP probes (two through the proxy), four TCP probes (two through the proxy):
    with the agent's own, eight. TCP probes are cheap, so the runner's share stays modest
    and the console's own cost shows in the ratio."""
    lines = []
    for name, port in (
        ("proxied_1", "proxy_port"),
        ("proxied_2", "proxy_port"),
        ("direct", "port"),
    ):
        lines += [f'      - http_200_from: "http://127.0.0.1:${{{port}}}/{name}"']
        lines += [f"        name: {name}"]
    for name, port in (("tcp_proxied_1", "proxy_port"), ("tcp_proxied_2", "proxy_port")):
        lines += [f'      - tcp_open: "127.0.0.1:${{{port}}}"', f"        name: {name}"]
    for name in ("tcp_direct_1", "tcp_direct_2"):
        lines += ['      - tcp_open: "127.0.0.1:${port}"', f"        name: {name}"]
    return "\n".join(lines)


def write_scenario(state: Path, warmup_s: float, hold_s: float, recover_s: float) -> Path:
    path = state / "console-cost.yaml"
    path.write_text(
        SCENARIO_FILE.format(
            name=SCENARIO, warmup=warmup_s, hold=hold_s, recover=recover_s, probes=probes_yaml()
        )
    )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The HTTP server the probes read, in a process of its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.terminate()  # our own child, by its handle
        self.proc.wait(10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    return status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    return status_mb(pid, "VmRSS")


def code_env(code: Path, state: Path, rate_hz: float) -> dict[str, str]:
    """The environment of a chaos-tui process that runs the code in `code` (its root leads
    PYTHONPATH) with the benchmark's own state directory. Children run in the state
    directory: `python -m` and `-c` put their working directory first on sys.path, which
    would otherwise win over PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_")}
    env.update(
        PYTHONPATH=str(code),
        CHAOS_STATE_DIR=str(state),
        CHAOS_PROBE_RATE_HZ=f"{rate_hz:g}",
        TERM="xterm-256color",
        COLUMNS=str(COLS),
        LINES=str(ROWS),
    )
    return env


def chaos_tui() -> list[str]:
    return [sys.executable, "-m", "chaos_tui"]


class Terminal:
    """The app on a pty of a fixed size; everything it draws is read and counted."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the app
            os.chdir(cwd)
            os.execvpe(args[0], args, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.output = bytearray()
        self.total = 0  # bytes read so far; `output` keeps only the newest
        self.lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.total += len(chunk)
                self.output += chunk
                if len(self.output) > 4 << 20:  # a long run: keep the last few MB to search
                    del self.output[: len(self.output) - (1 << 20)]

    def wait_for(self, text: bytes, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with self.lock:
                if text in self.output:
                    return time.monotonic() - start
            time.sleep(0.005)
        raise TimeoutError(f"{text!r} did not appear within {timeout}s")

    def type(self, keys: str, pause: float = 0.3) -> None:
        os.write(self.fd, keys.encode())
        time.sleep(pause)

    def close(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGTERM)  # our own child, by its pid
        code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        os.close(self.fd)
        return code


def results(state: Path) -> set[Path]:
    return set((state / "results" / SCENARIO).glob("*.json"))


def start_console_run(
    code: Path,
    state: Path,
    scenario_file: Path,
    port: int,
    rate_hz: float,
    extra_env: dict[str, object] | None = None,
) -> Terminal:
    """The console on the scenario's detail screen, the run asked for and its name typed:
    the run starts as this returns."""
    args = [*chaos_tui(), *run_args(scenario_file, port)]
    env = code_env(code, state, rate_hz)
    env.update({k: str(v) for k, v in (extra_env or {}).items()})
    term = Terminal(args, env, state)
    term.wait_for(b"blast radius", 60)
    term.type("r")
    term.type(SCENARIO + "\r", pause=0)
    return term


def run_args(scenario_file: Path, port: int) -> list[str]:
    return [
        "--file",
        str(scenario_file),
        "--scenario",
        SCENARIO,
        "--enable-chaos",
        "--set",
        f"port={port}",
        "--set",
        f"proxy_port={free_port()}",
    ]
