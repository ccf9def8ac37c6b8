"""Who is alive: a process counts as the one we mean only while its PID runs with the same
kernel start time, so a PID reused by someone else is never mistaken for ours. Standard
library only: the agent's guardian and the core both use it."""

from __future__ import annotations

import os
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


LISTEN = "0A"  # the TCP state /proc/net/tcp writes for a listening socket


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP `port` (IPv4 and IPv6, any address)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == LISTEN
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                found.add(fields[9])
    return found


def listeners(port: int) -> list[tuple[int, int]]:
    """(pid, start ticks) of every process holding a socket that listens on TCP `port`: the
    exact processes a fault on "whatever listens on PORT" may touch. Processes this user may
    not look into are not found (run as root to see them all)."""
    inodes = listening_inodes(port)
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found: list[tuple[int, int]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            holds = any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir())
        except OSError:  # gone meanwhile, or not ours to look into
            continue
        ticks = start_ticks(int(entry.name)) if holds else None
        if ticks is not None:
            found.append((int(entry.name), ticks))
    return sorted(found)


def from_pid_file(path: str | Path) -> tuple[int, int]:
    """(pid, start ticks) of the live process a pid file names; ValueError saying why not."""
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read pid file {path}: {exc.strerror or exc}") from None
    if not text.isdigit() or int(text) <= 1:
        raise ValueError(f"pid file {path} holds {text[:40]!r}, not a process id")
    ticks = start_ticks(int(text))
    if ticks is None:
        raise ValueError(f"pid file {path} names pid {text}, which is not running")
    return int(text), ticks


def is_chaos_machinery(pid: int) -> bool:
    """A fault agent or guardian of chaos-tui (of any state dir), by its command line: what no
    process fault may touch, since it is what heals the others."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    started_as = b"chaos_tui" in argv and b"-m" in argv  # python -m chaos_tui agent
    console_script = any(os.path.basename(a) == b"chaos-tui" for a in argv[:2])  # chaos-tui agent
    return b"chaos_tui.agent.guardian" in argv or (
        (started_as or console_script) and b"agent" in argv
    )
