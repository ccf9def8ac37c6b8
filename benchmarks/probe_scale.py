"""Probe scale: how sampling holds its rhythm and what it costs as the probes grow.

    python benchmarks/probe_scale.py [--counts 10,50,100,200] [--rounds 3] [--hold-seconds 5]
                                     [--rate 10] [--code DIR] [--output FILE]

Each measurement is a real headless run (`python -m chaos_tui --headless --file ...`, a
state directory of its own) of a scenario file written here with N `steady_state` probes,
half `http_200_from` and half `tcp_open`, against local servers this benchmark starts in a
process of its own (`--serve`: an HTTP/1.1 server that answers every request on a kept-alive
connection, and a TCP port that accepts and closes). The fault is the cheapest one a file can
declare on your own system that touches nothing: a `latency` toxic on a proxy the run opens in
front of the TCP port, through which nothing is sent. Every run also samples the fault agent's
health (probe `agent`): N + 1 probes in all, each in the figures. The run is warm-up, hold and
recovery (`--hold-seconds` each), at `--rate` Hz (CHAOS_PROBE_RATE_HZ).

Measured over the window from the run's `warmup` phase to its `verify` phase (after start-up
and the steady-state wait, before the verdict and the teardown):

- jitter: every probe's sample times are in the result JSON (`probes.NAME.samples`, seconds
  since the run started, to the millisecond; a sample's time is when it began); each interval
  between two samples of one probe is compared with 1/rate, and the figure is the p99 of
  |interval - 1/rate| over all intervals of all probes in the window;
- waiting: the share of the window the headless process was ready to run but waited for a
  CPU others held (/proc/PID/schedstat). On a shared 2-core machine this, not the sampler,
  can decide the jitter: at 100 probes, during a build of this benchmark, p99 12 ms in a run
  that waited 9 % of the time and 89-107 ms in runs that waited 34-51 % (other work at load
  3-5); read the jitter with it (the runs' details have it per run);
- CPU: utime + stime of the headless process (/proc/PID/stat) over the window's wall time, in
  cores; the processes the run starts (the fault agent and its guardian, found by their
  CHAOS_STATE_DIR) and the servers are reported apart, as details, not in the figure.

A scenario file declares all N probes itself (steady_state entries, each named p000...), so
nothing here drives the core directly: what is measured is what a user's run would do.

N values are interleaved round by round (10, 50, 100, 200, 10, 50, ...) so a burst of load
from elsewhere on the machine hits every N alike; each figure is the median over the rounds.
Goals (at 100 probes): jitter p99 at most 20 ms, the headless process under half a core.
`--code DIR` measures another checkout (its root leads PYTHONPATH), e.g. the code before a
change. The default (4 counts x 3 rounds of ~25 s) takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from figures import document, emit, figure, percentile

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
SCENARIO = "probe_scale"
GOAL_PROBES = 100
GOAL_JITTER_MS = 20.0
GOAL_CPU_CORES = 0.5
RUN_TIMEOUT_S = 240.0
PHASE_LINE = re.compile(r"^\S+ (\w+)\b")  # "22:10:01.123 warmup (8s of load ...)"


# -- the servers the probes watch (a process of their own: `--serve`) -------------------------


class _Http(asyncio.Protocol):
    """Answers every request on a connection with 200 and a 2-byte body; keeps it alive."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        # Probes send GETs without a body: one blank line ends each request.
        count = self.pending.count(b"\r\n\r\n")
        if count:
            self.pending = self.pending[self.pending.rindex(b"\r\n\r\n") + 4 :]
            self.transport.write(self.ANSWER * count)  # type: ignore[attr-defined]


class _Accept(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    http = await loop.create_server(_Http, "127.0.0.1", 0, backlog=1024)
    tcp = await loop.create_server(_Accept, "127.0.0.1", 0, backlog=1024)
    ports = {
        "http": http.sockets[0].getsockname()[1],
        "tcp": tcp.sockets[0].getsockname()[1],
    }
    print(json.dumps(ports), flush=True)
    # Until the benchmark closes our stdin.
    await loop.run_in_executor(None, sys.stdin.read)


class Servers:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ports = json.loads(self.proc.stdout.readline())
        self.http_port, self.tcp_port = int(ports["http"]), int(ports["tcp"])

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) or 0.0

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by its pid
            self.proc.wait()


# -- processes and their CPU -------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def waited_seconds(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU (the
    scheduler's run-queue delay, /proc/PID/schedstat): jitter that is the machine's, not ours."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def started_for(state: Path, but: int) -> dict[int, float]:
    """CPU seconds of every process of ours that carries this run's CHAOS_STATE_DIR (the fault
    agent and its guardian), the headless process itself left out."""
    marker = f"CHAOS_STATE_DIR={state}".encode()
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == but:
            continue
        try:
            if marker not in Path(entry.path, "environ").read_bytes().split(b"\0"):
                continue
        except OSError:
            continue
        cpu = cpu_seconds(int(entry.name))
        if cpu is not None:
            found[int(entry.name)] = cpu
    return found


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- one run -----------------------------------------------------------------------------------


def scenario_file(count: int, servers: Servers, hold_s: float) -> str:
    lines = [
        "version: 1",
        "scenarios:",
        f"  {SCENARIO}:",
        f'    hypothesis: "{count} probes keep their rhythm"',
        f"    warmup_seconds: {hold_s:g}",
        f"    recover_seconds: {hold_s:g}",
        "    steady_state:",
    ]
    for i in range(count):
        if i % 2 == 0:
            lines.append(f'      - http_200_from: "http://127.0.0.1:{servers.http_port}/p{i}"')
        else:
            lines.append(f'      - tcp_open: "127.0.0.1:{servers.tcp_port}"')
        lines.append(f"        name: p{i:03d}")
    proxy = f"{{listen: '127.0.0.1:{free_port()}', upstream: '127.0.0.1:{servers.tcp_port}'}}"
    lines += [
        "    actions:",
        "      - type: latency",
        f"        proxy: {proxy}",
        "        latency: 1",
        f"        duration_seconds: {hold_s:g}",
    ]
    return "\n".join(lines) + "\n"


def run_once(count: int, args: argparse.Namespace, servers: Servers) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="chaos-probe-scale-", dir="/tmp"))
    try:
        scenario = state / "probes.yaml"
        scenario.write_text(scenario_file(count, servers, args.hold_seconds))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_")}
        code = str(args.code or ROOT)
        env.update(
            CHAOS_STATE_DIR=str(state),
            CHAOS_PROBE_RATE_HZ=str(args.rate),
            PYTHONPATH=os.pathsep.join(filter(None, [code, env.get("PYTHONPATH", "")])),
        )
        return _measure(count, args, servers, state, scenario, env)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _measure(
    count: int,
    args: argparse.Namespace,
    servers: Servers,
    state: Path,
    scenario: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    result_path = state / "result.json"
    load_1m = os.getloadavg()[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaos_tui", "--headless", "--file", str(scenario)]
        + ["--scenario", SCENARIO, "--enable-chaos", "--output", str(result_path)],
        env=env,
        cwd=state,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    marks: dict[str, tuple[float, float, dict[int, float], float, float]] = {}
    tail: list[str] = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for line in proc.stderr:  # the narration: one line per phase, among others
        tail = (tail + [line.rstrip()])[-20:]
        said = PHASE_LINE.match(line)
        phase = said.group(1) if said else ""
        if phase in ("warmup", "verify") and phase not in marks:
            marks[phase] = (
                time.monotonic(),
                cpu_seconds(proc.pid) or 0.0,
                started_for(state, proc.pid),
                servers.cpu(),
                waited_seconds(proc.pid),
            )
        if time.monotonic() > deadline:
            proc.terminate()  # our own child: it heals, then exits
            break
    proc.wait(60)
    if "warmup" not in marks or "verify" not in marks or not result_path.exists():
        raise RuntimeError(
            f"the run with {count} probes did not go through (exit {proc.returncode}):\n"
            + "\n".join(tail)
        )
    (t0, cpu0, others0, serve0, wait0), (t1, cpu1, others1, serve1, wait1) = (
        marks["warmup"],
        marks["verify"],
    )
    wall = t1 - t0
    helpers = sum(cpu - others0.get(pid, 0.0) for pid, cpu in others1.items())
    result = json.loads(result_path.read_text())
    jitter, intervals, failed, samples = _jitter(result, args.rate)
    return {
        "probes": count,
        "probes_in_run": len(result["probes"]),  # and the run's own: the fault agent's health
        "load_1m_at_start": round(load_1m, 2),
        "outcome": result["outcome"],
        "window_s": round(wall, 2),
        "cpu_cores": round((cpu1 - cpu0) / wall, 4),
        "helpers_cpu_cores": round(helpers / wall, 4),
        "servers_cpu_cores": round((serve1 - serve0) / wall, 4),
        # Of the window, the share the headless process spent ready to run but waiting for a
        # CPU that others held: the machine's load, felt as jitter.
        "waited_for_cpu_share": round((wait1 - wait0) / wall, 4),
        "jitter_p50_ms": round(percentile(jitter, 50), 2),
        "jitter_p99_ms": round(percentile(jitter, 99), 2),
        "jitter_max_ms": round(max(jitter), 2),
        "interval_mean_ms": round(1000 * sum(intervals) / len(intervals), 2),
        "samples_in_window": samples,
        "samples_expected": round(
            len(result["probes"])
            * (result["phases"]["verify"] - result["phases"]["warmup"])
            * args.rate
        ),
        "failed_samples": failed,
        "exit": proc.returncode,
    }


def _jitter(result: dict[str, Any], rate: float) -> tuple[list[float], list[float], int, int]:
    """|interval - 1/rate| in ms for each pair of consecutive samples of a probe inside the
    warmup..verify window, the intervals themselves (s), failing samples, samples."""
    started, phases = result["started_at"], result["phases"]
    low, high = phases["warmup"] - started, phases["verify"] - started
    period = 1.0 / rate
    jitter: list[float] = []
    intervals: list[float] = []
    failed = taken = 0
    for probe in result["probes"].values():
        times = [t for t, ok, _, _ in probe["samples"] if low <= t <= high]
        taken += len(times)
        failed += sum(1 for t, ok, _, _ in probe["samples"] if low <= t <= high and not ok)
        for a, b in itertools.pairwise(times):
            intervals.append(b - a)
            jitter.append(1000 * abs(b - a - period))
    if not jitter:
        raise RuntimeError("no sample intervals in the window")
    return jitter, intervals, failed, taken


# -- the benchmark -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10,50,100,200", help="probe counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="runs per count, interleaved")
    parser.add_argument(
        "--hold-seconds", type=float, default=5.0, help="warm-up, hold and recovery, each"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="sampling rate, Hz")
    parser.add_argument("--code", type=Path, help="measure this checkout instead of this one")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve())
        return 0
    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    servers = Servers()
    runs: list[dict[str, Any]] = []
    try:
        for round_no in range(args.rounds):
            for count in counts:
                measured = run_once(count, args, servers)
                measured["round"] = round_no + 1
                runs.append(measured)
                print(f"probe_scale: {json.dumps(measured)}", file=sys.stderr, flush=True)
    finally:
        servers.stop()
    by_count = {c: [r for r in runs if r["probes"] == c] for c in counts}
    figures = []
    if GOAL_PROBES in by_count:
        at = by_count[GOAL_PROBES]
        figures += [
            figure(
                f"sampling jitter p99, {GOAL_PROBES} probes at {args.rate:g} Hz",
                [r["jitter_p99_ms"] for r in at],
                "ms",
                GOAL_JITTER_MS,
                note="|interval - 1/rate| over every probe's samples, warm-up to verify",
            ),
            figure(
                f"headless CPU, {GOAL_PROBES} probes at {args.rate:g} Hz",
                [r["cpu_cores"] for r in at],
                "cores",
                GOAL_CPU_CORES,
                note="the headless process alone; agent and servers in the runs' details",
            ),
            figure(
                f"headless waiting for a CPU, {GOAL_PROBES} probes",
                [r["waited_for_cpu_share"] for r in at],
                "share of wall time",
                note="run-queue delay (/proc/PID/schedstat): the machine's load, not ours; "
                "the jitter follows it",
            ),
        ]
    for count in counts:
        figures += [
            figure(
                f"jitter p99 at {count} probes", [r["jitter_p99_ms"] for r in by_count[count]], "ms"
            ),
            figure(
                f"headless CPU at {count} probes",
                [r["cpu_cores"] for r in by_count[count]],
                "cores",
            ),
        ]
    doc = document(
        "probe_scale",
        figures,
        rate_hz=args.rate,
        hold_seconds=args.hold_seconds,
        rounds=args.rounds,
        code=str(args.code or ROOT),
        runs=runs,
    )
    emit(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
