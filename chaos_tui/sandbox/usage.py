"""Who uses a state dir right now, across processes: one run per profile at a time, and the
sandbox's services stopped only by their last user.

Both are flock()s on small files in the state dir, so the kernel lets go of them when a
process ends, however it ends: a killed run never leaves the state dir locked.

- `runs/<profile>.lock` is held exclusively by one run of that profile. A second run is
  refused at once, with the holder's pid and scenario in the message (refusing rather than
  waiting: a run that waits for another can hang a CI job for as long as the other lasts).
- `users/<name>.lock` (a profile, or `agent`) is held shared by every process that may use
  that profile's services (or the fault agent) for as long as it may use them. Whoever started
  them stops them only if it can then take the lock exclusively: nobody else uses them. If
  others still do, it hands them over (`users/<name>.handover`, name -> pid) and the last
  user out stops them, so they are neither stopped under a run nor left running for ever.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from chaos_tui.core.errors import UsageError
from chaos_tui.statedir import open_lock_file


class RunBusy(UsageError):
    """Another run of the same profile holds this state dir: refused at once (exit 2),
    nothing started."""


def _open(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return open_lock_file(path)  # never through a symlink (statedir.py)


class RunLock:
    """One run of a profile per state dir; held until `release` or the process ends."""

    def __init__(self, state_dir: Path, profile: str) -> None:
        self.state_dir = Path(state_dir)
        self.profile = profile
        self.path = self.state_dir / "runs" / f"{profile}.lock"
        self._fd: int | None = None

    def acquire(self, scenario: str) -> None:
        """Take it or raise RunBusy naming the run that holds it."""
        fd = _open(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunBusy(
                f"another run uses profile {self.profile} in {self.state_dir} ({holder}); "
                "wait for it to end, or give this run its own CHAOS_STATE_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps({"pid": os.getpid(), "scenario": scenario, "since": time.time()}).encode(),
            0,
        )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the lock


def _holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        since = time.strftime("%H:%M:%S", time.localtime(data["since"]))
        return f"pid {data['pid']}, {data['scenario']}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "it is just starting"


class Users:
    """A shared hold on `users/<name>.lock` for as long as this process uses `name`."""

    def __init__(self, state_dir: Path, name: str) -> None:
        self.path = Path(state_dir) / "users" / f"{name}.lock"
        self.handover_path = self.path.with_suffix(".handover")
        # `sandbox up` was asked for it: kept up until `sandbox down`, whoever started it.
        self.kept_path = self.path.with_suffix(".kept")
        self._fd: int | None = None

    @property
    def joined(self) -> bool:
        return self._fd is not None

    def join(self) -> None:
        """Blocks only while a last user is stopping what it started (seconds): then this
        process starts again what it needs."""
        if self._fd is None:
            fd = _open(self.path)
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._fd = fd

    @contextmanager
    def leaving(self, leave_behind: dict[str, int]):
        """Leave. `leave_behind` (name -> pid) is what this process would stop if nobody else
        used it. Yields None while others still use it (it is theirs now), else everything
        to stop: ours and what earlier users handed over. The last user holds the lock
        exclusively until the block ends, so a newcomer waits until the stopping is done."""
        fd, self._fd = self._fd, None
        if fd is None:
            yield None
            return
        # Written down before letting go: if two users leave at once, one of them is last
        # and finds both lists.
        if leave_behind:
            self._handover(lambda items: {**items, **leave_behind})
        # flock cannot turn a shared lock into an exclusive one without letting go first
        # (a failed attempt would lose it anyway): let go, then try.
        fcntl.flock(fd, fcntl.LOCK_UN)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            last = True
        except BlockingIOError:
            last = False
        try:
            yield self._handover(lambda items: {}) if last else None
        finally:
            os.close(fd)

    @property
    def kept(self) -> bool:
        return self.kept_path.exists()

    def keep(self) -> None:
        self.kept_path.touch()

    def take_back(self) -> dict[str, int]:
        """Whatever users that left handed over for the last one to stop stays up instead (a
        `sandbox up` keeps it); returns those items."""
        return self._handover(lambda items: {})

    def _handover(self, change) -> dict[str, int]:
        """Apply `change` to the handed-over items under their own lock; the items before."""
        fd = _open(self.handover_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                items = json.loads(os.pread(fd, 1 << 16, 0) or b"{}")
            except ValueError:
                items = {}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(change(items)).encode(), 0)
            return items
        finally:
            os.close(fd)


def release_kept(state_dir: Path) -> None:
    """`sandbox down`: nothing is kept up any longer (the next run stops what it starts)."""
    for path in (Path(state_dir) / "users").glob("*.kept"):
        path.unlink(missing_ok=True)
