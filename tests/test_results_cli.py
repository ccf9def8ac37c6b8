"""`chaos-tui results` and `results show` as a user runs them: a real run's result listed and
shown as the run's own summary said it, a history of saved results listed and filtered, its
JSON for scripts, and each mistake one line with exit code 2."""

from __future__ import annotations

import json
import sqlite3
import time

from chaos_tui.core.results_index import INDEX_NAME
from tests.conftest import env_for, run_cli
from tests.results_data import a_history


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaos-tui: "), lines
    assert proc.stdout == ""
    return lines[0]


def test_a_real_run_is_indexed_as_saved_listed_and_shown_as_its_summary(fresh_state_dir):
    env = env_for(fresh_state_dir)
    run = run_cli(["--headless", "--scenario", "opa_restart", "--set", "hold_s=1"], env)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    results = fresh_state_dir / "results"
    with sqlite3.connect(results / INDEX_NAME) as db:  # written by the save, not a listing
        rows = db.execute("SELECT run_id, outcome, changed FROM runs").fetchall()
    assert rows == [(result["run_id"], "pass", json.dumps({"hold_s": 1.0}))]

    listed = run_cli(["results"], env)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:5] == ["when", f"({time.strftime('%Z')})", "run", "id", "scenario"]
    assert result["run_id"] in row and "opa_restart" in row and "PASS" in row
    assert "hold_s=1" in row and "outage " in row

    shown = run_cli(["results", "show", result["run_id"][:6]], env)
    assert shown.returncode == 0, shown.stderr
    # The summary the run printed at its end, line for line (its last line says where the
    # result went, which `show` says at its top).
    summary = run.stderr[run.stderr.index("verdict: ") :].splitlines()
    assert summary[-1].startswith("result saved to ")
    assert shown.stdout.splitlines()[2:] == summary[:-1]
    # The scenario's first run: nothing to compare with, and nothing said of it.
    assert json.loads(run.stdout)["comparison"]["source"] == "none"
    assert "compared with the baseline" not in shown.stdout


def test_listing_filters_flags_and_json(tmp_path):
    state = tmp_path / "state"
    a_history(state / "results")
    env = env_for(state)

    listed = run_cli(["results"], env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 1 + 8
    assert "6666ffff0006" in lines[1] and "queue_worker_crash" in lines[1]
    regressed = next(line for line in lines if "4444dddd0004" in line)
    assert regressed.endswith("regressed: outage")
    assert not next(line for line in lines if "5555eeee0005" in line).endswith("outage_s")
    assert "unreadable: not JSON" in next(line for line in lines if "damagedrun01" in line)
    old = next(line for line in lines if "0ld0f0rmat01" in line)
    assert "FAIL" in old and "outage 3.00 s" in old
    assert "hold_s=1" in next(line for line in lines if "2222bbbb0002" in line)

    limited = run_cli(["results", "--limit", "2"], env)
    assert limited.stdout.splitlines()[-1].startswith("2 of 8 runs shown")

    as_json = json.loads(run_cli(["results", "--scenario", "opa_restart", "--json"], env).stdout)
    assert [r["run_id"] for r in as_json][:2] == ["5555eeee0005", "4444dddd0004"]
    assert len(as_json) == 7
    first = as_json[1]
    assert first["regressions"] == ["outage_s"] and first["outcome"] == "pass"
    assert first["changed_parameters"] == {} and first["parameters"]["mode"] == "stop"
    assert {"started_at", "duration_s", "outage_s", "path", "problem", "target"} <= set(first)

    failed = json.loads(run_cli(["results", "--outcome", "fail", "--json"], env).stdout)
    assert [r["run_id"] for r in failed] == ["3333cccc0003", "0ld0f0rmat01"]
    docker = json.loads(run_cli(["results", "--target", "docker", "--all", "--json"], env).stdout)
    assert [r["run_id"] for r in docker] == ["6666ffff0006"]


def test_show_prints_the_comparison_and_json(tmp_path):
    state = tmp_path / "state"
    paths = a_history(state / "results")
    env = env_for(state)
    shown = run_cli(["results", "show", "4444"], env)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "verdict: PASS opa_restart on sandbox in 12.0 s" in out
    assert "compared with the baseline:" in out
    assert "outage (allow_path): 8.00 s vs baseline median 2.00 s" in out
    assert out.count("REGRESSED") == 1
    whole = json.loads(run_cli(["results", "show", str(paths["old"]), "--json"], env).stdout)
    assert whole["run_id"] == "0ld0f0rmat01" and whole["comparison"] is None


def test_an_empty_history_is_a_friendly_line(tmp_path):
    env = env_for(tmp_path / "state")
    empty = run_cli(["results"], env)
    assert empty.returncode == 0 and "no saved runs yet" in empty.stdout, empty
    assert json.loads(run_cli(["results", "--json"], env).stdout) == []
    never_ran = run_cli(["results", "--scenario", "opa_restart"], env)  # a built-in: no typo
    assert never_ran.returncode == 0 and "no saved run matches" in never_ran.stdout


def test_mistakes_are_one_line_and_exit_2(tmp_path):
    state = tmp_path / "state"
    paths = a_history(state / "results")
    env = env_for(state)
    assert "no saved result has the run id 'zzzz'" in one_line_error(
        run_cli(["results", "show", "zzzz"], env)
    )
    # Two runs whose ids start alike: the prefix is too short to choose.
    (paths["first"].parent / f"{paths['first'].name[:10]}-1111aaaa9999.json").write_bytes(
        paths["first"].read_bytes()
    )
    assert "names 2 saved results" in one_line_error(run_cli(["results", "show", "1111"], env))
    assert "no such file" in one_line_error(run_cli(["results", "show", "../etc"], env))
    assert "--all and --limit say two things" in one_line_error(
        run_cli(["results", "--all", "--limit", "3"], env)
    )
    assert "not a run id" in one_line_error(run_cli(["results", "show", "a;b"], env))
    assert "unknown scenario 'opa_restrat'" in one_line_error(
        run_cli(["results", "--scenario", "opa_restrat"], env)
    )
    assert "not a result this version can read" in one_line_error(
        run_cli(["results", "show", "damagedrun01"], env)
    )
    assert "--outcome" in one_line_error(run_cli(["results", "--outcome", "maybe"], env))
    assert "--limit" in one_line_error(run_cli(["results", "--limit", "0"], env))
    huge = run_cli(["results", "--limit", str(10**20)], env)  # every run, not a traceback
    assert huge.returncode == 0 and "Traceback" not in huge.stderr, huge.stderr
