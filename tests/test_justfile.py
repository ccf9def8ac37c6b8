"""The justfile works wherever the tool is installed: this checkout's .venv if there is one,
else `chaos-tui` (and python3) on PATH, PYTHON above both. Dry runs (`just -n`) of a copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JUST = shutil.which("just") or shutil.which("just", path=str(Path(sys.executable).parent))
JUSTFILE = Path(__file__).resolve().parent.parent / "justfile"
pytestmark = pytest.mark.skipif(
    JUST is None, reason="just is not installed (pip install rust-just)"
)


def dry_run(folder: Path, recipe: str, **env: str) -> str:
    shutil.copy(JUSTFILE, folder / "justfile")
    clean = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    run = subprocess.run(
        [JUST, "-n", recipe],
        cwd=folder,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    return run.stderr.strip()  # `just -n` prints the commands on stderr


def test_without_a_venv_the_recipes_use_the_tool_on_path(tmp_path):
    assert dry_run(tmp_path, "sandbox-up") == "chaos-tui sandbox up"
    assert dry_run(tmp_path, "testbed").startswith("python3 ")


def test_a_checkout_venv_is_used_when_there_is_one(tmp_path):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    venv = f"'{tmp_path}/.venv/bin/python'"
    assert dry_run(tmp_path, "sandbox-up") == f"{venv} -m chaos_tui sandbox up"


def test_python_names_the_interpreter(tmp_path):
    assert dry_run(tmp_path, "run", PYTHON="/opt/py/bin/python") == (
        "/opt/py/bin/python -m chaos_tui --headless --scenario postgres_restart_outbox"
    )


def run_recipe(folder: Path, *args: str, **env: str) -> str:
    """Run a recipe of a copy of the justfile for real, with PYTHON a stand-in interpreter
    that prints the arguments it was given: the command line the recipe runs, exactly."""
    shutil.copy(JUSTFILE, folder / "justfile")
    fake = folder / "python"
    fake.write_text('#!/bin/sh\nprintf "%s|" "$@"\n')
    fake.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "CHAOS_SCENARIO")}
    run = subprocess.run(
        [JUST, *args],
        cwd=folder,
        env={**clean, "PYTHON": str(fake), "CHAOS_TESTBED": "", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


HEADLESS_DOCKER = "-m|chaos_tui|--headless|--target|docker|--enable-chaos|"


def test_chaos_opens_the_console_and_with_a_scenario_runs_it_headless(tmp_path):
    assert run_recipe(tmp_path, "chaos") == "-m|chaos_tui|--target|docker|--enable-chaos|"
    headless = HEADLESS_DOCKER + "--scenario|opa_restart|"
    # As the request's note wrote it, by position, and from the environment.
    assert run_recipe(tmp_path, "chaos", "scenario=opa_restart") == headless
    assert run_recipe(tmp_path, "chaos", "opa_restart") == headless
    assert run_recipe(tmp_path, "chaos", CHAOS_SCENARIO="opa_restart") == headless
    # Given on the command line, it beats the environment; a name is one argument, whatever
    # it holds.
    assert run_recipe(tmp_path, "chaos", "scenario=x", CHAOS_SCENARIO="y") == (
        HEADLESS_DOCKER + "--scenario|x|"
    )
    assert run_recipe(tmp_path, "chaos", "scenario=a b;c") == HEADLESS_DOCKER + "--scenario|a b;c|"


def test_chaos_suite_runs_a_suite_headless_against_docker(tmp_path):
    suite = HEADLESS_DOCKER + "--suite|platform|"
    assert run_recipe(tmp_path, "chaos-suite", "platform") == suite
    assert run_recipe(tmp_path, "chaos-suite", "suite=platform") == suite


def test_no_chaos_recipe_is_part_of_ci(tmp_path):
    shutil.copy(JUSTFILE, tmp_path / "justfile")
    seen, todo = set(), ["ci"]
    while todo:  # ci and every recipe it depends on, however deep
        recipe = todo.pop()
        seen.add(recipe)
        shown = subprocess.run(
            [JUST, "--show", recipe], cwd=tmp_path, capture_output=True, text=True, timeout=30
        )
        assert shown.returncode == 0, shown.stderr
        head = next(line for line in shown.stdout.splitlines() if line.startswith(f"{recipe}"))
        todo += [d for d in head.split(":", 1)[1].split() if d not in seen]
    assert seen == {"ci", "test", "install"}
