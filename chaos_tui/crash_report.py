"""What happened to runs that were killed: read at the start of the next command, said in one
line each, and kept on disk as `<state>/runs/<run_id>.killed.json` with the agent's account
of their faults (who healed each, when, how)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from chaos_tui.agent.history import LeaseHistory
from chaos_tui.agent.protocol import HISTORY_FILE, LEASES_DIR, agent_dir, read_lease_files
from chaos_tui.core.journal import write_atomic
from chaos_tui.core.run_record import dead_runs


def _clock(t: float | None) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(t)) if t else "?"
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"  # a record damaged on disk says what it can


def report_killed_runs(state_dir: Path) -> list[str]:
    """One line per run killed since the last command; each is reported once."""
    runs = state_dir / "runs"
    if not runs.is_dir():
        return []
    lines = []
    history = LeaseHistory(agent_dir(state_dir) / HISTORY_FILE)
    for run in dead_runs(runs):
        ended = history.find(run_id=run["run_id"])
        live = _live_leases(agent_dir(state_dir) / LEASES_DIR, run["run_id"])
        seen = min(
            (
                e["owner_died_seen_at"]
                for e in ended
                if isinstance(e.get("owner_died_seen_at"), (int, float))
            ),
            default=None,
        )
        phase_at = _clock(run.get("phase_at"))
        when = (
            f"was killed at {_clock(seen)}"
            if seen
            else f"died in its {run.get('phase', '?')} phase (last seen {phase_at})"
        )
        faults = [
            f"its fault {e.get('kind', '?')} {json.dumps(e.get('params', {}))} was healed "
            f"by the agent at {_clock(e.get('ended_at'))} ({e.get('by', '?')})"
            + (f", with an error: {e['error']}" if e.get("error") else "")
            for e in ended
        ]
        faults += [
            f"its fault lease {lease_id} is STILL LIVE: run `chaos-tui heal`" for lease_id in live
        ]
        lines.append(
            f"run {run['run_id']} of {run['scenario']} (pid {run['pid']}) {when}; "
            + ("; ".join(faults) if faults else "it held no fault")
        )
        kept = {k: v for k, v in run.items() if k != "path"}
        kept.update(faults=ended, live_leases=live, reported_at=time.time())
        try:
            write_atomic(runs / f"{run['run_id']}.killed.json", json.dumps(kept, indent=2) + "\n")
            os.unlink(run["path"])
        except OSError:
            pass  # reported again next time rather than lost
    return lines


def _live_leases(folder: Path, run_id: str) -> list[str]:
    """The run's leases still journalled, read by the journal's one reader (agent/protocol)."""
    leases, _unreadable = read_lease_files(folder)
    return [lease.id for lease in leases if lease.run_id == run_id]
