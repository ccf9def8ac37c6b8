"""The results index: rows read once from the files, kept in step with them (new, changed and
deleted files), old and damaged files listed, and a damaged or unusable index never an error."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from chaos_tui.cli.results import OUTCOMES
from chaos_tui.core.errors import UsageError
from chaos_tui.core.history import find_result, open_result
from chaos_tui.core.journal import save_result
from chaos_tui.core.model import Outcome
from chaos_tui.core.report import comparison_table
from chaos_tui.core.results_index import INDEX_NAME, Query, ResultsIndex, list_runs
from chaos_tui.session import ResultSaver
from tests.results_data import a_history, a_result

REPO = Path(__file__).resolve().parent.parent


def ids(runs) -> list[str]:
    return [r.run_id for r in runs]


def test_every_file_lists_newest_first_old_and_damaged_ones_too(tmp_path):
    paths = a_history(tmp_path)
    runs = list_runs(tmp_path)
    assert ids(runs) == [
        "6666ffff0006",
        "5555eeee0005",
        "4444dddd0004",
        "damagedrun01",  # listed, in its place by its file name, without hiding the others
        "3333cccc0003",
        "2222bbbb0002",
        "0ld0f0rmat01",
        "1111aaaa0001",
    ]
    by_id = {r.run_id: r for r in runs}
    broken = by_id["damagedrun01"]
    assert broken.problem == "unreadable: not JSON" and broken.scenario == "opa_restart"
    old = by_id["0ld0f0rmat01"]
    assert old.readable and old.outcome == "fail" and old.outage_s == 3.0
    assert old.parameters == {} and old.changed == {} and old.regressions == ()
    assert open_result(paths["old"]).comparison is None  # and the model still loads it whole
    assert (tmp_path / INDEX_NAME).is_file()


def test_rows_carry_the_changed_parameters_figures_and_regressions(tmp_path):
    a_history(tmp_path)
    by_id = {r.run_id: r for r in list_runs(tmp_path)}
    assert by_id["2222bbbb0002"].changed == {"hold_s": 1.0}
    assert by_id["1111aaaa0001"].changed == {}
    assert by_id["4444dddd0004"].regressions == ("outage_s",)
    assert by_id["5555eeee0005"].regressions == ()  # compared, nothing flagged
    row = by_id["6666ffff0006"]
    assert (row.scenario, row.target, row.outcome) == ("queue_worker_crash", "docker", "pass")
    assert (row.time_to_detect_s, row.error_rate, row.duration_s) == (0.08, 0.875, 12.0)


def test_filters_and_limit_with_the_total_before_it(tmp_path):
    a_history(tmp_path)
    index = ResultsIndex(tmp_path)
    assert ids(index.runs(Query(scenario="queue_worker_crash"))) == ["6666ffff0006"]
    assert ids(index.runs(Query(target="docker"))) == ["6666ffff0006"]
    assert ids(index.runs(Query(outcome="fail"))) == ["3333cccc0003", "0ld0f0rmat01"]
    assert ids(index.runs(Query(scenario="opa_restart", outcome="pass", limit=2))) == [
        "5555eeee0005",
        "4444dddd0004",
    ]
    assert index.total == 4
    assert index.runs(Query(scenario="nothing_like_it")) == []


def test_new_changed_and_deleted_files_are_followed_and_only_those_read(tmp_path):
    paths = a_history(tmp_path)
    index = ResultsIndex(tmp_path)
    assert len(index.runs()) == 8
    # A file whose size and mtime are unchanged is not read again: garbage of the same size,
    # its mtime put back, still lists as the run it was.
    first = paths["first"]
    stat = first.stat()
    first.write_bytes(b" " * stat.st_size)
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert {r.run_id: r for r in index.runs()}["1111aaaa0001"].readable
    # A changed file is read again, a deleted one drops out, a new one comes in.
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    paths["queue"].unlink()
    save_result(tmp_path, a_result(60, "7777aaaa0007", outcome="error"))
    runs = {r.run_id: r for r in index.runs()}
    assert runs["1111aaaa0001"].problem == "unreadable: not JSON"
    assert "6666ffff0006" not in runs and runs["7777aaaa0007"].outcome == "error"
    assert len(runs) == 8


def test_a_deleted_index_is_built_again(tmp_path):
    a_history(tmp_path)
    before = ids(list_runs(tmp_path))
    for path in tmp_path.glob(f"{INDEX_NAME}*"):
        path.unlink()
    assert ids(list_runs(tmp_path)) == before
    with sqlite3.connect(tmp_path / INDEX_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(before)


def test_a_damaged_or_unusable_index_falls_back_to_the_files(tmp_path):
    a_history(tmp_path)
    before = ids(list_runs(tmp_path))
    (tmp_path / INDEX_NAME).write_bytes(b"not a database at all, " * 100)
    for leftover in tmp_path.glob(f"{INDEX_NAME}-*"):
        leftover.unlink()
    index = ResultsIndex(tmp_path)
    # Written over: no database at all. Only a cache: built again from the files, and said.
    assert ids(index.runs()) == before
    assert index.problem is None and index.rebuilt and "was damaged" in index.rebuilt
    with sqlite3.connect(tmp_path / INDEX_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(before)
    again = ResultsIndex(tmp_path)
    assert ids(again.runs(Query(outcome="fail", limit=1))) == ["3333cccc0003"]
    assert again.total == 2 and again.rebuilt is None
    (tmp_path / INDEX_NAME).unlink()
    (tmp_path / INDEX_NAME).mkdir()  # cannot even be opened, and not ours to remove
    index = ResultsIndex(tmp_path)
    assert ids(index.runs()) == before
    assert index.problem and "could not be used" in index.problem
    assert (tmp_path / INDEX_NAME).is_dir()


def test_an_index_of_another_schema_is_rebuilt(tmp_path):
    a_history(tmp_path)
    with sqlite3.connect(tmp_path / INDEX_NAME) as db:
        db.execute("CREATE TABLE runs (path TEXT)")
        db.execute("PRAGMA user_version = 999")
    index = ResultsIndex(tmp_path)
    assert len(index.runs()) == 8 and index.problem is None


def test_two_processes_refreshing_at_once_both_succeed(tmp_path):
    for i in range(150):
        save_result(tmp_path, a_result(i, f"run{i:09d}"))
    code = (
        "import sys, json; from pathlib import Path;"
        "from chaos_tui.core.results_index import ResultsIndex;"
        "i = ResultsIndex(Path(sys.argv[1])); runs = i.runs();"
        "print(json.dumps([len(runs), i.problem]))"
    )
    env = os.environ | {"PYTHONPATH": str(REPO)}
    for _ in range(3):  # a fresh index each round: both build it at the same moment
        for path in tmp_path.glob(f"{INDEX_NAME}*"):
            path.unlink()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(tmp_path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outputs
        assert [json.loads(out) for out, _ in outputs] == [[150, None]] * 3, outputs
    with sqlite3.connect(tmp_path / INDEX_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 150


def test_a_save_adds_its_row_at_once_and_a_broken_index_does_not_fail_it(tmp_path):
    a_history(tmp_path)
    list_runs(tmp_path)
    saver = ResultSaver(tmp_path)
    path = saver.save(a_result(90, "8888aaaa0008"))
    with sqlite3.connect(tmp_path / INDEX_NAME) as db:  # read directly: no refresh in between
        rows = db.execute("SELECT path, outcome FROM runs WHERE run_id = '8888aaaa0008'")
        assert rows.fetchall() == [(str(path.relative_to(tmp_path)), "pass")]
    for leftover in tmp_path.glob(f"{INDEX_NAME}*"):
        leftover.unlink()
    (tmp_path / INDEX_NAME).mkdir()
    saved = ResultSaver(tmp_path).save(a_result(91, "9999aaaa0009"))
    assert saved.is_file()


def test_find_result_by_id_prefix_or_path(tmp_path):
    paths = a_history(tmp_path)
    assert find_result(tmp_path, "4444") == paths["regressed"]
    assert find_result(tmp_path, "0ld0f0rmat01") == paths["old"]
    assert find_result(tmp_path, str(paths["first"])) == paths["first"]


def test_find_result_follows_no_link_and_says_what_a_path_is(tmp_path):
    a_history(tmp_path)
    secret = tmp_path / "elsewhere.json"
    secret.write_text("{}")
    link = tmp_path / "opa_restart" / "1796000000-linklinklink.json"
    link.symlink_to(secret)
    with pytest.raises(UsageError, match="no saved result has the run id 'link'"):
        find_result(tmp_path, "link")
    assert "linklinklink" not in ids(list_runs(tmp_path))
    with pytest.raises(UsageError, match="a folder, not a result file"):
        find_result(tmp_path, str(tmp_path))
    with pytest.raises(UsageError, match="no such file"):
        find_result(tmp_path, str(tmp_path / "gone.json"))


def test_comparison_table_say_each_metric_against_its_baseline():
    facts = dict(comparison_table(a_result(0, "x", regressed=True)))
    assert facts["baseline"] == "3 runs, 1 regressed"
    outage = facts["outage (allow_path)"]
    assert outage.startswith("8.00 s vs baseline median 2.00 s, p95 2.40 s (3 runs)")
    assert "limit 2.90 s (+20 %, at least 500 ms worse)" in outage
    assert outage.endswith("REGRESSED")
    assert not facts["time to recover (allow_path)"].endswith("REGRESSED")
    assert comparison_table(a_result(0, "y")) == []


def test_the_cli_outcomes_are_the_models():
    assert typing.get_args(Outcome) == OUTCOMES
