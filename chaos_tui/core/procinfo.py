"""Who is alive: a process counts as the one we mean only while its PID runs with the same
kernel start time, so a PID reused by someone else is never mistaken for ours. Standard
library only: the agent's guardian and the core both use it."""

from __future__ import annotations

from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (when the kernel started it); None if it is gone or a
    zombie (exited, only its parent's wait missing)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int | None, ticks: int | None) -> bool:
    """The process `pid` that started at `ticks` still runs."""
    return pid is not None and ticks is not None and start_ticks(pid) == ticks
