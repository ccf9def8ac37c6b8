"""The agent's record of every lease that ended: who ended it, when and how. It outlives the
agent (one JSON line per lease, appended and fsynced), so a command run after a crash can
tell what happened to a fault whose owner is gone."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

MAX_BYTES = 1 << 20  # then the file moves to history.1.jsonl (one generation kept)

# How a lease ended, as written in `by`:
#   owner         the process that holds it asked (DELETE /leases/ID)
#   ttl           the reaper, at the lease's TTL
#   owner-died    the reaper, within 2 s of the owner process's death (dead man's switch)
#   halt          POST /halt;   heal-all   POST /heal;   shutdown   the agent stopping cleanly
#   leftover      a new agent healing what a dead one left (guardian: started by the guardian)
#   apply-failed  the fault could not be applied and was undone
ENDINGS = (
    "owner",
    "ttl",
    "owner-died",
    "halt",
    "heal-all",
    "shutdown",
    "leftover",
    "guardian",
    "apply-failed",
)


class LeaseHistory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        """Raises OSError when the record cannot be written (the caller reports it)."""
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        # Heals append from several threads. The rotation and the write are one at a time
        # (no two threads rotate, no line lands in a file being moved); the fsync is not:
        # concurrent ones share the disk's flush. Each returns once its own line is durable.
        with self._lock:
            try:
                if self.path.stat().st_size + len(line) > MAX_BYTES:
                    os.replace(self.path, self.path.with_name("history.1.jsonl"))
            except FileNotFoundError:
                pass
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, line)
            except BaseException:
                os.close(fd)
                raise
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        """Oldest first, over both generations; a torn or foreign line is skipped."""
        found = []
        for path in (self.path.with_name("history.1.jsonl"), self.path):
            try:
                with open(path, "rb") as fh:
                    for raw in fh:
                        try:
                            entry = json.loads(raw)
                        except ValueError:
                            continue
                        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                            found.append(entry)  # else not a line this history wrote
            except OSError:
                continue
        return found

    def find(self, lease_id: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.entries()
            if (lease_id is None or e.get("id") == lease_id)
            and (run_id is None or e.get("run_id") == run_id)
        ]
