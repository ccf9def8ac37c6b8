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
