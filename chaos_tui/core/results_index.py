"""The saved results as rows, and a SQLite index of them so that thousands list at once.

The JSON files under results/<scenario>/<epoch>-<run id>.json are the truth. The index
(results/index.sqlite3) is a cache of one row per file, keyed by the file's path and checked
against its size and mtime: a refresh parses only the files it has not seen (or that changed)
and drops the rows of files that are gone. Deleting the index loses nothing; the next listing
builds it again.

`summarize` is the one place a result file becomes a row, for the index, the console's history
and the fallback alike. It reads plain JSON, not the pydantic model, so that listing loads no
pydantic, and it takes each field only if it has the right shape: results written by older
versions (no comparison, no parameter defaults, not even parameters) list all the same, and a
file that is no result at all is a row with a `problem`, never an error.

Two processes may refresh at once (a run saving while `chaos-tui results` lists): writes go
in one short transaction under WAL with a busy timeout, and every row is keyed by its path,
so the same row written twice is the same row. An index that cannot be opened or written (a
read-only state dir, a damaged file) is never an error: the rows come from the files.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

INDEX_NAME = "index.sqlite3"
SCHEMA_VERSION = 1  # a different one is dropped and built again: it is only a cache
BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PastRun:
    """One saved result as a row; `problem` says why it could not be read."""

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
    run_id: str = ""
    scenario: str = ""
    target: str = ""
    error_rate: float | None = None  # the recovery probe's, during the fault
    backlog_drain_s: float | None = None
    # The parameters that differ from the scenario's defaults as the result kept them (empty
    # when the result predates kept defaults: nothing to compare with).
    changed: dict[str, Any] = field(default_factory=dict)
    regressions: tuple[str, ...] = ()  # names of the metrics its baseline comparison flagged
    size: int = 0
    mtime_ns: int = 0

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


def run_id_from_name(name: str) -> str:
    return name.removesuffix(".json").partition("-")[2]


def _is_result_name(name: str) -> bool:
    return name.endswith(".json") and not name.startswith(".")  # .tmp of an atomic write


def result_files(results_dir: Path, scenario: str) -> list[Path]:
    """Every saved result of the scenario, newest first (exports live in a folder below and
    are not results)."""
    folder = results_dir / scenario
    try:
        names = [
            e.name
            for e in os.scandir(folder)
            if _is_result_name(e.name) and e.is_file(follow_symlinks=False)
        ]
    except OSError:
        return []
    paths = [folder / name for name in names]
    return sorted(paths, key=lambda p: (started_from_name(p), p.name), reverse=True)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _text(value: object, fallback: str = "") -> str:
    return value if isinstance(value, str) else fallback


def _regressions(comparison: object) -> tuple[str, ...]:
    """The names of the metrics a result's baseline comparison flagged (model.py's
    BaselineComparison.regressions, read from the plain JSON)."""
    if not isinstance(comparison, dict) or not isinstance(comparison.get("metrics"), list):
        return ()
    return tuple(
        str(m.get("name", "?"))
        for m in comparison["metrics"]
        if isinstance(m, dict) and m.get("regressed") is True
    )


def summarize(path: Path, stat: os.stat_result | None = None) -> PastRun:
    """The row of one result file. Only the fields a row shows are taken, and each is checked:
    a result written by another version may lack some; one without a start, an outcome and a
    duration is no result."""
    try:
        stat = stat or path.stat()
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime_ns = 0, 0
    # Who it is from the file's place (`<scenario>/<epoch>-<run id>.json`), for any file.
    base = PastRun(
        path,
        run_id=run_id_from_name(path.name),
        scenario=path.parent.name,
        size=size,
        mtime_ns=mtime_ns,
    )

    def unreadable(why: str) -> PastRun:
        return replace(base, started_at=started_from_name(path), problem=f"unreadable: {why}")

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
    defaults = data.get("parameter_defaults")
    recovery = recovery if isinstance(recovery, dict) else {}
    params = params if isinstance(params, dict) else {}
    defaults = defaults if isinstance(defaults, dict) else {}
    notes = notes if isinstance(notes, list) else []
    return replace(
        base,
        run_id=_text(data.get("run_id"), base.run_id),
        scenario=_text(data.get("scenario"), base.scenario),
        target=_text(data.get("target")),
        started_at=started,
        outcome=outcome,
        duration_s=duration,
        time_to_detect_s=_number(recovery.get("time_to_detect_s")),
        time_to_recover_s=_number(recovery.get("time_to_recover_s")),
        outage_s=_number(recovery.get("outage_s")),
        error_rate=_number(recovery.get("error_rate_during_fault")),
        backlog_drain_s=_number(recovery.get("backlog_drain_s")),
        parameters=params,
        # As params.changed_parameters has it (that module needs pydantic, this one must not).
        changed={k: v for k, v in params.items() if k in defaults and v != defaults[k]},
        regressions=_regressions(data.get("comparison")),
        notes=len(notes),
    )


# -- the index ------------------------------------------------------------------------------

COLUMNS = (
    "path",  # relative to the results folder: a moved state dir keeps its index
    "run_id",
    "scenario",
    "target",
    "started_at",
    "outcome",
    "duration_s",
    "parameters",  # JSON text
    "changed",  # JSON text
    "time_to_detect_s",
    "time_to_recover_s",
    "outage_s",
    "error_rate",
    "backlog_drain_s",
    "regressions",  # JSON text: a list of metric names
    "notes",
    "problem",
    "size",
    "mtime_ns",
)
SCHEMA = (
    "DROP TABLE IF EXISTS runs",  # a cache of another version: built again
    f"CREATE TABLE runs ({', '.join(COLUMNS)}, PRIMARY KEY (path)) WITHOUT ROWID",
    "CREATE INDEX runs_by_start ON runs (started_at)",
    "CREATE INDEX runs_by_scenario ON runs (scenario, started_at)",
    "CREATE INDEX runs_by_id ON runs (run_id)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM runs"
INSERT = f"INSERT OR REPLACE INTO runs VALUES ({', '.join('?' * len(COLUMNS))})"


def _row_values(run: PastRun, results_dir: Path) -> tuple[object, ...]:
    return (
        str(run.path.relative_to(results_dir)),
        run.run_id,
        run.scenario,
        run.target,
        run.started_at,
        run.outcome,
        run.duration_s,
        json.dumps(run.parameters),
        json.dumps(run.changed),
        run.time_to_detect_s,
        run.time_to_recover_s,
        run.outage_s,
        run.error_rate,
        run.backlog_drain_s,
        json.dumps(list(run.regressions)),
        run.notes,
        run.problem,
        run.size,
        run.mtime_ns,
    )


def _json(text: str) -> Any:
    """JSON text of the index; most rows hold `{}` or `[]`, not worth a parse."""
    return {} if text == "{}" else [] if text == "[]" else json.loads(text)


def _from_row(row: tuple[Any, ...], results_dir: Path) -> PastRun:
    values = dict(zip(COLUMNS, row, strict=True))
    values["path"] = results_dir / values["path"]
    values["parameters"] = _json(values["parameters"])
    values["changed"] = _json(values["changed"])
    values["regressions"] = tuple(_json(values["regressions"]))
    return PastRun(**values)


@dataclass(frozen=True)
class Query:
    """Which runs a listing wants: filters are exact, newest first, `limit` None for all."""

    scenario: str | None = None
    target: str | None = None
    outcome: str | None = None
    limit: int | None = None

    def where(self) -> tuple[str, list[object]]:
        terms = [(c, v) for c, v in self.filters() if v is not None]
        clause = " AND ".join(f"{c} = ?" for c, _ in terms)
        return (f" WHERE {clause}" if clause else ""), [v for _, v in terms]

    def filters(self) -> list[tuple[str, str | None]]:
        return [("scenario", self.scenario), ("target", self.target), ("outcome", self.outcome)]

    def matches(self, run: PastRun) -> bool:
        return all(v is None or getattr(run, c) == v for c, v in self.filters())


def files_on_disk(results_dir: Path) -> dict[str, tuple[str, os.stat_result]]:
    """Every result file under the scenario folders, by its path relative to `results_dir`,
    with its full path and its stat. Plain strings: ten thousand Path objects would cost more
    than the listing itself."""
    found: dict[str, tuple[str, os.stat_result]] = {}
    try:
        folders = [e for e in os.scandir(results_dir) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return found
    for folder in folders:
        try:
            with os.scandir(folder.path) as entries:
                for entry in entries:
                    if not _is_result_name(entry.name):
                        continue
                    try:
                        if entry.is_file(follow_symlinks=False):
                            found[f"{folder.name}/{entry.name}"] = (entry.path, entry.stat())
                    except OSError:
                        continue  # gone while we looked
        except OSError:
            continue
    return found


class ResultsIndex:
    """The index of one results folder. Every method falls back to the files when the index
    cannot be used; none raises for it."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / INDEX_NAME
        self.problem: str | None = None  # why the index was not used, the last time
        self.total: int | None = None  # how many runs the last query matched, before its limit
        self.rebuilt: str | None = None  # said once when a damaged index was built again

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.execute("BEGIN IMMEDIATE")
                try:  # asked again under the lock: another process may have just built it
                    if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                        for statement in SCHEMA:
                            db.execute(statement)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except BaseException:
            db.close()
            raise
        return db

    def refresh(self) -> list[PastRun] | None:
        """Bring the index up to date with the files. Returns None when it did, else every
        row read from the files (the index could not be used: `problem` says why)."""
        if not self.results_dir.is_dir():
            return []
        disk = files_on_disk(self.results_dir)
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            if not self._set_aside(exc):
                return self._fallback(disk, exc)
            try:  # a damaged cache is thrown away and built again from the files
                db = self._connect()
            except sqlite3.Error as again:
                return self._fallback(disk, again)
        try:
            known = {
                path: (size, mtime)
                for path, size, mtime in db.execute("SELECT path, size, mtime_ns FROM runs")
            }
            stale = [
                rel
                for rel, (_, st) in disk.items()
                if known.get(rel) != (st.st_size, st.st_mtime_ns)
            ]
            gone = [rel for rel in known if rel not in disk]
            if stale or gone:
                fresh = [
                    summarize(Path(disk[rel][0]), disk[rel][1]) for rel in stale
                ]  # parsed before the lock
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("DELETE FROM runs WHERE path = ?", [(g,) for g in gone])
                    db.executemany(INSERT, [_row_values(r, self.results_dir) for r in fresh])
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            return self._fallback(disk, exc)
        finally:
            db.close()
        self.problem = None
        return None

    def _set_aside(self, exc: sqlite3.Error) -> bool:
        """Remove an index that is no database at all (damaged, or written over): it is only
        a cache of the files. A busy or locked one (OperationalError) is left alone, and so is
        anything but a plain file of ours (a link, a folder)."""
        if type(exc) is not sqlite3.DatabaseError:
            return False
        try:
            if not self.path.is_file() or self.path.is_symlink():
                return False
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        except OSError:
            return False
        self.rebuilt = f"the index {self.path} was damaged ({exc}): built it again from the files"
        return True

    def _fallback(
        self, disk: dict[str, tuple[str, os.stat_result]], exc: Exception
    ) -> list[PastRun]:
        self.problem = f"the index {self.path} could not be used ({exc}); read the files"
        return [summarize(Path(path), st) for path, st in disk.values()]

    def runs(self, query: Query | None = None) -> list[PastRun]:
        """The runs the query asks for, newest first, the index refreshed first."""
        query = query or Query()
        rows = self.refresh()
        if rows is None:
            try:
                return self._select(query)
            except sqlite3.Error as exc:  # lost between the refresh and now
                rows = self._fallback(files_on_disk(self.results_dir), exc)
        wanted = sorted(
            (r for r in rows if query.matches(r)),
            key=lambda r: (r.started_at or 0.0, r.path.name),
            reverse=True,
        )
        self.total = len(wanted)
        return wanted if query.limit is None else wanted[: query.limit]

    def _select(self, query: Query) -> list[PastRun]:
        where, args = query.where()
        sql = f"{SELECT}{where} ORDER BY started_at DESC, path DESC"
        if query.limit is not None:
            sql += " LIMIT ?"
            args.append(query.limit)
        db = self._connect()
        try:
            runs = [_from_row(row, self.results_dir) for row in db.execute(sql, args)]
            if query.limit is None or len(runs) < query.limit:
                self.total = len(runs)
            else:
                count = f"SELECT COUNT(*) FROM runs{where}"
                self.total = db.execute(count, args[:-1]).fetchone()[0]
            return runs
        finally:
            db.close()

    def add(self, path: Path) -> None:
        """Index one file just saved (the save path calls it): no scan of the others."""
        try:
            db = self._connect()
            try:
                row = _row_values(summarize(path), self.results_dir)
                db.execute(INSERT, row)  # one statement: its own transaction
            finally:
                db.close()
        except (sqlite3.Error, OSError, ValueError) as exc:
            self.problem = f"the index {self.path} could not be updated ({exc})"

    def scenarios(self) -> list[str]:
        """The scenarios that have a results folder (what a --scenario filter can name)."""
        try:
            return sorted(e.name for e in os.scandir(self.results_dir) if e.is_dir())
        except OSError:
            return []


def list_runs(results_dir: Path, query: Query | None = None) -> list[PastRun]:
    return ResultsIndex(results_dir).runs(query)


def index_saved(results_dir: Path, path: Path) -> None:
    """Add a result just saved to the index; never raises (a save must not fail for it)."""
    try:
        ResultsIndex(results_dir).add(path)
    except Exception:
        pass
