"""Results on disk: written atomically, found again for 'last result' and baselines."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from chaos_tui.core.model import RunResult


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temporary file and rename, so a reader never sees half a result. Private
    (0600) unless asked otherwise: an export to share is 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def result_json(result: RunResult) -> str:
    return result.model_dump_json(indent=2) + "\n"


def save_result(results_dir: Path, result: RunResult) -> Path:
    stamp = int(result.started_at)
    path = results_dir / result.scenario / f"{stamp}-{result.run_id}.json"
    write_atomic(path, result_json(result))
    return path


def load_result(path: Path) -> RunResult:
    return RunResult.model_validate(json.loads(path.read_text()))


def latest_result(results_dir: Path, scenario: str) -> RunResult | None:
    folder = results_dir / scenario
    if not folder.is_dir():
        return None
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(files):
        try:
            return load_result(path)
        except (OSError, ValueError):
            continue  # a damaged file must not hide older good ones
    return None


def recent_results(results_dir: Path, scenario: str, limit: int = 10) -> list[RunResult]:
    """The scenario's last `limit` readable results, newest first."""
    folder = results_dir / scenario
    if not folder.is_dir():
        return []
    found: list[RunResult] = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            found.append(load_result(path))
        except (OSError, ValueError):
            continue  # a damaged file must not hide older good ones
        if len(found) >= limit:
            break
    return found
