"""Command probe: a shell command the user writes, where exit 0 means the thing is fine."""

from __future__ import annotations

import asyncio
import os
import signal

from chaos_tui.core.contracts import Probe
from chaos_tui.probes.values import number_or_none


class CommandProbe(Probe):
    """Runs `command` with /bin/sh once per sample, in its own process group. The value is the
    last line of stdout when it is a number, else None; a non-zero exit fails the sample with
    the exit code and the last line of stderr. However the sample ends (done, timed out,
    cancelled), the whole group is killed: nothing the command started outlives its sample."""

    def __init__(self, name: str, command: str, timeout_s: float = 5.0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s:g}")
        super().__init__(name, f"$ {' '.join(command.split())[:60]} (exit 0; value = last line)")
        self.command = command
        self.timeout_s = timeout_s
        self.last_pid: int | None = None  # the shell of the latest sample, for the tests

    async def measure(self) -> float | None:
        proc = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own group (pgid = its pid), so one kill reaches all
        )
        self.last_pid = proc.pid
        try:
            out, err = await proc.communicate()
        finally:
            # On a timeout the sample cancels us here; on success a child put in the background
            # may still run. Either way the group goes, and the shell is reaped.
            kill_group(proc.pid)
            if proc.returncode is None:
                await asyncio.shield(proc.wait())
        code = proc.returncode
        if code != 0:
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
            last = last_line(err)
            raise RuntimeError(f"{how}: {last}" if last else how)
        return number_or_none(last_line(out))


def last_line(output: bytes) -> str:
    lines = output.decode(errors="replace").strip().splitlines()
    return lines[-1].strip() if lines else ""


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone
