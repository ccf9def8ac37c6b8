"""Who is alive: a process counts as the one we mean only while its PID runs with the same
kernel start time, so a PID reused by someone else is never mistaken for ours. Standard
library only: the agent's guardian and the core both use it."""

from __future__ import annotations

from pathlib import Path


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start ticks: field 22 of /proc/PID/stat) of a live process; None if it
    is gone, dead or a zombie (exited, only its parent's wait missing)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return None if fields[0] in "ZX" else (fields[0], int(fields[19]))


def start_ticks(pid: int) -> int | None:
    """When the kernel started the process; None if it is gone or a zombie."""
    found = proc_stat(pid)
    return found[1] if found else None


def alive(pid: int | None, ticks: int | None) -> bool:
    """The process `pid` that started at `ticks` still runs."""
    return pid is not None and ticks is not None and start_ticks(pid) == ticks
