"""Fault kinds on the user's own processes, each named exactly: params {"pids": [[PID, START
TICKS], ...]} as resolved when the run was confirmed (whoever listened on a port, what a pid
file said), so a pid reused since by another process is never signalled.

    process.kill       SIGKILL them; the heal runs `restart` if given (else their supervisor
                       is expected to bring them back, which the run's probes judge)
    process.terminate  SIGTERM them; heals like process.kill
    process.pause      SIGSTOP them; the heal sends SIGCONT

`restart` (a shell command) runs in the agent, so it also runs at the TTL or when the console
that asked dies. It must start the service and return; one still running after
RESTART_RETURN_S is taken to be the service itself, running in the foreground, and is left to
run in its own session. A lease whose signal was never sent (journalled, then its agent died
before the apply, or a halt refused it) does not run it: its service never stopped, and the
heal says so (agent.log) instead of starting a second copy.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

from chaos_tui.agent.protocol import Lease
from chaos_tui.core.procinfo import alive, is_chaos_machinery

RESTART_RETURN_S = 10.0  # a start command (systemctl start, docker start) returns in seconds
GONE_WAIT_S = 5.0  # how long a kill waits to see its processes gone


def _pids(params: dict[str, Any]) -> list[tuple[int, int]]:
    """The named processes; ValueError when `pids` is not a list of [pid, ticks]."""
    raw = params.get("pids")
    if not isinstance(raw, list) or not raw:
        raise ValueError("needs params {pids: [[PID, START_TICKS], ...]}")
    named: list[tuple[int, int]] = []
    for item in raw:
        if (
            not isinstance(item, list | tuple)
            or len(item) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in item)
        ):
            raise ValueError(f"pids holds {item!r}, not [PID, START_TICKS]")
        named.append((item[0], item[1]))
    return named


class ProcessFault:
    """Signal exact processes; heal as the kind says."""

    kind = ""
    signal_sent: signal.Signals = signal.SIGKILL
    takes_restart = True

    def __init__(self) -> None:
        # Never these, whatever a lease says: init, the agent, its parent (who started it).
        self.protected = {1, os.getpid(), os.getppid()}

    @property
    def description(self) -> str:
        return (
            f"{self.signal_sent.name} exact processes: params {{pids: [[PID, START_TICKS], ...]"
            + (", restart: COMMAND}" if self.takes_restart else "}")
        )

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        allowed = {"pids", "restart"} if self.takes_restart else {"pids"}
        unknown = set(params) - allowed
        if unknown:
            return f"{self.kind} has no parameter {sorted(unknown)[0]!r}"
        try:
            named = _pids(params)
        except ValueError as exc:
            return f"{self.kind} {exc}"
        for pid, ticks in named:
            if pid in self.protected or is_chaos_machinery(pid):
                return (
                    f"{self.kind} may not touch pid {pid} (init, the agent, its parent or its "
                    "guardian: what heals faults is never one)"
                )
            if not alive(pid, ticks):
                return (
                    f"pid {pid} is no longer the process named (it exited, or its pid was "
                    "reused): resolve the target again"
                )
        restart = params.get("restart")
        if restart is not None and (not isinstance(restart, str) or not restart.strip()):
            return f"{self.kind} restart must be a shell command"
        return None

    def conflicts(self, params: dict[str, Any]) -> list[str]:
        return [f"process {pid}" for pid, _ in _pids(params)]

    async def apply(self, lease: Lease) -> dict[str, Any]:
        # Recorded in the lease as each signal goes: an apply that fails half-way is undone
        # by a heal that knows a signal was sent (see `heal`).
        signalled: list[list[int]] = []
        lease.data["signalled"] = signalled
        for pid, ticks in _pids(lease.params):
            if alive(pid, ticks):  # checked again just before: a pid reused is never hit
                os.kill(pid, self.signal_sent)
                signalled.append([pid, ticks])
        if self.signal_sent == signal.SIGKILL:
            deadline = time.monotonic() + GONE_WAIT_S
            while any(alive(p, t) for p, t in signalled) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        return {"signalled": signalled, "at": time.time()}

    async def heal(self, lease: Lease) -> None:
        restart = lease.params.get("restart")
        if not restart or lease.data.get("restarted"):
            return  # their supervisor brings them back (or it already ran)
        if never_signalled(lease):
            # A lease journalled but never applied (its agent died before the signal, or a
            # halt refused it and its file stayed): the service was never stopped, and a
            # restart now would start a second copy of it.
            note = (
                f"restart not run: {self.kind} never sent its {self.signal_sent.name} "
                f"(every named process still runs: {_pids(lease.params)})"
            )
            lease.data["restart_skipped"] = note
            print(f"lease {lease.id}: {note}", file=sys.stderr, flush=True)
            return
        await asyncio.to_thread(run_restart, restart)
        lease.data["restarted"] = True


class ProcessKill(ProcessFault):
    kind = "process.kill"
    signal_sent = signal.SIGKILL


class ProcessTerminate(ProcessFault):
    kind = "process.terminate"
    signal_sent = signal.SIGTERM


class ProcessPause(ProcessFault):
    kind = "process.pause"
    signal_sent = signal.SIGSTOP
    takes_restart = False

    async def heal(self, lease: Lease) -> None:
        for pid, ticks in _pids(lease.params):
            if alive(pid, ticks):  # one that exited meanwhile has nothing left to resume
                os.kill(pid, signal.SIGCONT)


def never_signalled(lease: Lease) -> bool:
    """The lease's apply sent no signal: it recorded none, and every process it names still
    runs. (An agent that died between a signal and the journal's update recorded none: a
    SIGKILL's processes are gone then; a SIGTERM's may still be shutting down, and are then
    taken to be untouched.)"""
    if lease.data.get("signalled"):
        return False
    return all(alive(pid, ticks) for pid, ticks in _pids(lease.params))


def run_restart(command: str) -> None:
    """Run the restart command in a session of its own. Raises when it fails; returns when it
    succeeded, or when it still runs after RESTART_RETURN_S (it is the service itself)."""
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL,
        # Its output goes where the agent's goes (agent.log): no pipe that a service left
        # running would one day block on.
        stdout=None,
        stderr=None,
        start_new_session=True,  # outlives the agent, as a service must
        cwd="/",
    )
    try:
        code = proc.wait(timeout=RESTART_RETURN_S)
    except subprocess.TimeoutExpired:
        # A foreground service: left running in its own session, and said where to find it.
        print(
            f"restart command {command!r} still runs after {RESTART_RETURN_S:g}s: "
            f"taken to be the service itself, left running as pid {proc.pid}",
            file=sys.stderr,
            flush=True,
        )
        return
    if code != 0:
        raise RuntimeError(f"restart command {command!r} exited {code} (its output: agent.log)")


def process_injectors() -> dict[str, ProcessFault]:
    return {cls.kind: cls() for cls in (ProcessKill, ProcessTerminate, ProcessPause)}
