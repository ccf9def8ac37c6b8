"""Start, find and signal only the processes we started.

A process is ours when the PID we recorded still runs with the same kernel start time; a PID
that was reused by someone else since then is left alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from chaos_tui.core.procinfo import start_ticks


@dataclass
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int  # field 22 of /proc/PID/stat: when the kernel started it
    command: list[str]
    log: str

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ProcessRecord:
        return cls(**data)


def is_running(record: ProcessRecord) -> bool:
    return start_ticks(record.pid) == record.start_ticks


def spawn(
    name: str,
    command: list[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start a detached process in its own session (so its whole group can be signalled)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = with_our_code(env if env is not None else dict(os.environ))
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            user=user,
            group=_group_of(user),
            extra_groups=[] if user else None,
            start_new_session=True,
        )
    ticks = start_ticks(proc.pid)
    if ticks is None:
        raise RuntimeError(f"{name} exited at once; see {log}")
    return ProcessRecord(name, proc.pid, ticks, command, str(log))


def with_our_code(env: dict[str, str]) -> dict[str, str]:
    """`env` with this process's own chaos_tui first on PYTHONPATH. Our Python services run
    with -P (never the working directory's code); this makes them run the very code that
    started them, whether installed or run from a checkout (`python -m chaos_tui` there)."""
    ours = str(Path(__file__).resolve().parents[2])  # the folder holding the chaos_tui package
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != ours]
    return {**env, "PYTHONPATH": os.pathsep.join([ours, *rest])}


def _group_of(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, start_ticks) of every process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        ticks = start_ticks(child)
        if ticks is not None:
            found.append((child, ticks))
        todo.extend(children.get(child, []))
    return found


def signal_tree(record: ProcessRecord, sig: int) -> list[tuple[int, int]] | None:
    """Signal the process, its process group and every descendant.

    Postgres backends each call setsid(), so a process-group kill alone would leave them
    running; they are found through their parent instead. The list is taken before the
    signal, because orphans are re-parented and could no longer be traced to us. Returns the
    descendants signalled (pid, start ticks), or None when the process was not running.
    """
    if not is_running(record):
        return None
    below = descendants(record.pid)
    try:
        os.killpg(record.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(record.pid, sig)
        except ProcessLookupError:
            return None
    for pid, ticks in below:
        if start_ticks(pid) == ticks:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    return below


def signal_only(record: ProcessRecord, sig: int) -> bool:
    """Signal just the recorded process (a graceful stop lets it shut its children down)."""
    if not is_running(record):
        return False
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        return False
    return True


def stop(
    record: ProcessRecord,
    timeout_s: float = 10.0,
    sig: int = signal.SIGTERM,
    kill_tree: bool = True,
) -> bool:
    """Ask nicely, then kill (the whole tree, or with kill_tree=False the process alone: the
    fault agent's children are services it restarted, which must keep running)."""
    if not signal_only(record, sig):
        return True
    if wait_gone(record, timeout_s):
        return True
    if kill_tree:
        signal_tree(record, signal.SIGKILL)
    else:
        signal_only(record, signal.SIGKILL)
    return wait_gone(record, 5.0)


def wait_gone(record: ProcessRecord, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    pause = 0.005  # most processes are gone within tens of ms: look often at first
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not is_running(record):
            return True
        time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
        pause = min(pause * 2, 0.05)
    _reap(record.pid)
    return not is_running(record)


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child, so it leaves no zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
