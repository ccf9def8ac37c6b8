"""A scenario's past runs, from the results saved under results/<scenario>/, and one of them
found again by its run id.

The rows come from core/results_index.py (the one place a result file becomes a row, and the
index that lists thousands at once); they are named here too for the console's history.
"""

from __future__ import annotations

import os
from pathlib import Path

from chaos_tui.core.errors import UsageError
from chaos_tui.core.journal import load_result
from chaos_tui.core.model import RunResult
from chaos_tui.core.results_index import (
    PastRun,
    Query,
    list_runs,
    result_files,
    started_from_name,
    summarize,
)

__all__ = [
    "PastRun",
    "Query",
    "find_result",
    "list_runs",
    "open_result",
    "result_files",
    "started_from_name",
    "summarize",
]


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
