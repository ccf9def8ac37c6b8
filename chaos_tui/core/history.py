"""A scenario's past runs, from the results saved under results/<scenario>/, and one of them
found again by its run id.

The rows come from core/results_index.py (the one place a result file becomes a row, and the
index that lists thousands at once); they are named here too for the console's history.
"""

from __future__ import annotations

from pathlib import Path

from chaos_tui.core.errors import UsageError
from chaos_tui.core.journal import load_result
from chaos_tui.core.model import RunResult
from chaos_tui.core.results_index import (
    PastRun,
    Query,
    files_on_disk,
    list_runs,
    result_files,
    run_id_from_name,
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
    (as `chaos-tui results` prints it). Raises UsageError naming what matched, or nothing.
    A link in the state dir is never followed (it is not listed either)."""
    if "/" in ref or ref.endswith(".json"):
        given = Path(ref)
        if given.is_file():
            return given
        what = "a folder, not a result file" if given.is_dir() else "no such file"
        raise UsageError(f"{ref}: {what} (give a run id or a result file)")
    wanted = ref.strip().lower()
    if not wanted or not all(c.isalnum() or c in "-_" for c in wanted):
        raise UsageError(f"{ref!r} is not a run id (see `chaos-tui results`)")
    found = [
        Path(path)
        for path, _stat in files_on_disk(results_dir).values()
        if run_id_from_name(Path(path).name).startswith(wanted)
    ]
    if not found:
        raise UsageError(f"no saved result has the run id {ref!r} (see `chaos-tui results`)")
    if len(found) > 1:
        ids = ", ".join(sorted(run_id_from_name(p.name) for p in found)[:5])
        raise UsageError(f"{ref!r} names {len(found)} saved results ({ids}...): give more of it")
    return found[0]
