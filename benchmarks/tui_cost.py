"""What the console costs: start-up time, CPU share and memory during a real sandbox run.

The app runs in a real pseudo-terminal (130x42) as a user would run it; a thread reads the
terminal so the app never blocks on output. The same scenario with the same parameters is
then run headless, so the console's own overhead is the difference between the two.

    python benchmarks/tui_cost.py [--run-seconds 60] [--output result.json]

Prints one JSON document. Needs nothing but the installed package (the sandbox comes from
its wheels); it uses a state directory of its own and stops everything it started.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

SCENARIO = "postgres_restart_outbox"
COLS, ROWS = 130, 42
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Terminal:
    """The app on a pty of a fixed size; everything it draws is read and counted."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the app
            os.execvpe(args[0], args, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.output = bytearray()
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
                self.output += chunk

    def wait_for(self, text: bytes, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with self.lock:
                if text in self.output:
                    return time.monotonic() - start
            time.sleep(0.01)
        raise TimeoutError(f"{text!r} did not appear within {timeout}s")

    def type(self, keys: str, pause: float = 0.3) -> None:
        os.write(self.fd, keys.encode())
        time.sleep(pause)

    def close(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGTERM)  # our own child, by its pid
        return os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])


def results(state: Path) -> set[Path]:
    return set((state / "results" / SCENARIO).glob("*.json"))


def measure_startup(exe: str, env: dict[str, str], tries: int) -> list[float]:
    times = []
    for _ in range(tries):
        started = time.monotonic()
        term = Terminal([exe], env)
        term.wait_for(SCENARIO.encode(), 30)
        times.append(round(time.monotonic() - started, 3))
        term.type("q")
        term.close()
    return times


def measure_console(exe: str, env: dict[str, str], state: Path, params: list[str]) -> dict:
    before = results(state)
    term = Terminal([exe, "--scenario", SCENARIO, *params], env)
    term.wait_for(b"blast radius", 30)
    term.type("r")
    cpu0, t0 = cpu_seconds(term.pid), time.monotonic()
    term.type(SCENARIO + "\r", pause=0)
    with term.lock:
        drawn0 = len(term.output)
    while results(state) == before:
        if time.monotonic() - t0 > 600:
            raise TimeoutError("the run did not finish")
        time.sleep(0.1)
    cpu1, t1 = cpu_seconds(term.pid), time.monotonic()
    with term.lock:
        drawn = len(term.output) - drawn0
    rss = peak_rss_mb(term.pid)
    term.type("q")
    term.close()
    verdict = json.loads(max(results(state) - before, key=lambda p: p.stat().st_mtime).read_text())
    return {
        "run_seconds": round(t1 - t0, 2),
        "cpu_seconds": round(cpu1 - cpu0, 2),
        "cpu_share_of_one_core": round((cpu1 - cpu0) / (t1 - t0), 4),
        "peak_rss_mb": round(rss, 1),
        "terminal_bytes_per_second": round(drawn / (t1 - t0)),
        "outcome": verdict["outcome"],
        "samples_taken": sum(len(p["samples"]) for p in verdict["probes"].values()),
    }


def measure_headless(exe: str, env: dict[str, str], state: Path, params: list[str]) -> dict:
    before = results(state)
    proc = subprocess.Popen(
        [
            exe,
            "--headless",
            "--scenario",
            SCENARIO,
            "--keep-sandbox",
            *params,
            "--output",
            str(state / "headless.json"),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    cpu0 = t0 = None
    for line in proc.stderr:  # the run begins with its "prepare" line
        if cpu0 is None and " prepare" in line:
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        if results(state) != before or "result saved" in line:
            break
    cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
    rss = peak_rss_mb(proc.pid)
    proc.stderr.read()
    proc.wait(60)
    return {
        "run_seconds": round(t1 - t0, 2),
        "cpu_seconds": round(cpu1 - cpu0, 2),
        "cpu_share_of_one_core": round((cpu1 - cpu0) / (t1 - t0), 4),
        "peak_rss_mb": round(rss, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-seconds",
        type=float,
        default=60.0,
        help="length of the scenario run (warm-up + fault + recovery)",
    )
    parser.add_argument("--rate", type=float, default=10.0, help="probe rate in Hz")
    parser.add_argument("--startup-tries", type=int, default=3)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    exe = shutil.which("chaos-tui") or str(Path(sys.executable).with_name("chaos-tui"))
    state = Path(tempfile.mkdtemp(prefix="chaos-tui-bench-", dir="/tmp"))  # 0700, as it should be
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_")}
    env.update(
        CHAOS_STATE_DIR=str(state),
        CHAOS_PROBE_RATE_HZ=str(args.rate),
        TERM="xterm-256color",
        COLUMNS=str(COLS),
        LINES=str(ROWS),
    )
    third = args.run_seconds / 3
    params = [
        "--set",
        f"warmup_s={third:g}",
        "--set",
        f"down_s={min(third, 60):g}",
        "--set",
        f"recover_s={third:g}",
    ]
    report: dict = {
        "benchmark": "tui_cost",
        "scenario": SCENARIO,
        "probe_rate_hz": args.rate,
        "terminal": f"{COLS}x{ROWS}",
        "goal_cpu_share_of_one_core": 0.15,
    }
    try:
        subprocess.run(
            [exe, "sandbox", "up"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        measure_startup(exe, env, 1)  # the first start warms caches; it is not counted
        startup = measure_startup(exe, env, args.startup_tries)
        report["startup_seconds_warm"] = {"best": min(startup), "all": startup}
        report["console"] = measure_console(exe, env, state, params)
        report["headless"] = measure_headless(exe, env, state, params)
        report["console_overhead_cpu_share"] = round(
            report["console"]["cpu_share_of_one_core"]
            - report["headless"]["cpu_share_of_one_core"],
            4,
        )
        report["meets_goal"] = report["console"]["cpu_share_of_one_core"] <= 0.15
    finally:
        subprocess.run(
            [exe, "sandbox", "down"], env=env, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        from chaos_tui.sandbox import postgres

        postgres.remove_home(state / "pg")  # as root, PostgreSQL's data lives outside the state dir
        shutil.rmtree(state, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
