"""A scenario's past runs, from the results saved under results/<scenario>/: listed from their
file names at once (newest first), and each one summarised when it is shown.

A few hundred files must list in a blink: the list reads names only; a summary parses one
file, plain JSON, keeping only what a history row shows. A file that is not a result (broken,
cut short, written by an older version) is a row that says so, never an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_tui.core.errors import UsageError
from chaos_tui.core.journal import load_result
from chaos_tui.core.model import RunResult


@dataclass(frozen=True)
class PastRun:
    """One saved result as a history row shows it; `problem` says why it could not be read."""

    path: Path
    started_at: float | None = None
    outcome: str | None = None
    duration_s: float | None = None
    time_to_detect_s: float | None = None
    time_to_recover_s: float | None = None
    outage_s: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    notes: int = 0
    problem: str | None = None

    @property
    def readable(self) -> bool:
        return self.problem is None


def started_from_name(path: Path) -> float:
    """When the run started, from its file name (`<epoch>-<run id>.json`), else the file's
    own time: sorting needs no file opened."""
    head = path.name.partition("-")[0]
    if head.isdigit():
        return float(head)
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def result_files(results_dir: Path, scenario: str) -> list[Path]:
    """Every saved result of the scenario, newest first (exports live in a folder below and
    are not results)."""
    folder = results_dir / scenario
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file() and e.name.endswith(".json")]
    except OSError:
        return []
    paths = [folder / name for name in names if not name.startswith(".")]  # .tmp of a write
    return sorted(paths, key=lambda p: (started_from_name(p), p.name), reverse=True)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def summarize(path: Path) -> PastRun:
    """The row of one result file. Only the fields a row shows are taken, and each is checked:
    a result written by another version may lack some; one without a start, an outcome and a
    duration is no result."""

    def unreadable(why: str) -> PastRun:
        return PastRun(path, started_at=started_from_name(path), problem=f"unreadable: {why}")

    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return unreadable(str(exc.strerror) if isinstance(exc, OSError) else "not JSON")
    if not isinstance(data, dict):
        return unreadable("not a run result")
    started, duration = _number(data.get("started_at")), _number(data.get("duration_s"))
    outcome = data.get("outcome")
    if started is None or duration is None or not isinstance(outcome, str):
        return unreadable("old or unknown format")
    recovery, params, notes = data.get("recovery"), data.get("parameters"), data.get("notes")
    recovery = recovery if isinstance(recovery, dict) else {}
    params = params if isinstance(params, dict) else {}
    notes = notes if isinstance(notes, list) else []
    return PastRun(
        path,
        started_at=started,
        outcome=outcome,
        duration_s=duration,
        time_to_detect_s=_number(recovery.get("time_to_detect_s")),
        time_to_recover_s=_number(recovery.get("time_to_recover_s")),
        outage_s=_number(recovery.get("outage_s")),
        parameters=params,
        notes=len(notes),
    )


def open_result(path: Path) -> RunResult:
    """The whole result, for its report. Raises OSError or ValueError (pydantic's
    ValidationError is one) when the file is not a result this version can read."""
    return load_result(path)


def find_result(results_dir: Path, ref: str) -> Path:
    """The saved result a user names: a path to a result file, a run id, or the start of one
    (as `chaos-tui results` prints it). Raises UsageError naming what matched, or nothing."""
    given = Path(ref)
    if ref.endswith(".json") and given.is_file():
        return given
    wanted = ref.strip().lower()
    if not wanted or not all(c.isalnum() or c in "-_" for c in wanted):
        raise UsageError(f"{ref!r} is not a run id (see `chaos-tui results`)")
    found: list[Path] = []
    try:
        folders = [e.path for e in os.scandir(results_dir) if e.is_dir()]
    except OSError:
        folders = []
    for folder in folders:
        try:
            names = [e.name for e in os.scandir(folder) if e.name.endswith(".json")]
        except OSError:
            continue
        for name in names:
            run_id = name[:-5].partition("-")[2]
            if run_id.startswith(wanted) and not name.startswith("."):
                found.append(Path(folder) / name)
    if not found:
        raise UsageError(f"no saved result has the run id {ref!r} (see `chaos-tui results`)")
    if len(found) > 1:
        ids = ", ".join(sorted(p.name[:-5].partition("-")[2] for p in found)[:5])
        raise UsageError(f"{ref!r} names {len(found)} saved results ({ids}...): give more of it")
    return found[0]
