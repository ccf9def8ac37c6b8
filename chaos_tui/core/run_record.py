"""A trace of each run while it lives: `<state>/runs/<run_id>.json` names the run's process
(pid + kernel start time), scenario and current phase, and goes away when the run ends. A
record whose process is gone belongs to a run that was killed: the next command reports it
(with what the agent did about its faults) and keeps it as `<run_id>.killed.json`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from chaos_tui.core.journal import write_atomic
from chaos_tui.core.procinfo import alive, start_ticks


class RunRecord:
    def __init__(self, folder: Path, run_id: str, scenario: str, target: str) -> None:
        self.path = folder / f"{run_id}.json"
        pid = os.getpid()
        self.data = {
            "run_id": run_id,
            "scenario": scenario,
            "target": target,
            "pid": pid,
            "start_ticks": start_ticks(pid),
            "started_at": time.time(),
            "phase": "prepare",
            "phase_at": time.time(),
        }

    def phase(self, name: str) -> None:
        """Written at each phase: a few small writes a run; never fails the run."""
        self.data.update(phase=name, phase_at=time.time())
        try:
            write_atomic(self.path, json.dumps(self.data) + "\n")
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass


def dead_runs(folder: Path) -> list[dict[str, Any]]:
    """Records of runs whose process is gone without closing them, oldest first."""
    found = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(".killed.json"):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not _ours(data, path):
            continue  # not a record a run wrote: left alone, never reported
        if not alive(data.get("pid"), data.get("start_ticks")):
            data["path"] = str(path)
            found.append(data)
    return sorted(found, key=lambda d: d["started_at"])


def _ours(data: object, path: Path) -> bool:
    """The shape RunRecord writes, named after its run (so a run_id can never point the
    report outside `runs/`)."""
    return (
        isinstance(data, dict)
        and data.get("run_id") == path.stem
        and isinstance(data.get("scenario"), str)
        and isinstance(data.get("pid"), int)
        and not isinstance(data.get("pid"), bool)
        and isinstance(data.get("started_at"), (int, float))
    )
