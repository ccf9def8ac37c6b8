"""What chaos-tui starts (the agent, its guardian, the sandbox's Python services) runs our
code, never a `chaos_tui` folder that happens to sit where the user stands: `python -m` puts
the working directory first on sys.path unless told not to (-P)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import env_for

INSTALLED_SCRIPT = Path(sys.executable).parent / "chaos-tui"  # what `pip install` puts on PATH


def test_a_chaos_tui_folder_in_the_working_directory_is_never_run(fresh_state_dir, tmp_path):
    trap = tmp_path / "chaos_tui"
    trap.mkdir()
    marker = tmp_path / "ran"
    (trap / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (trap / "__main__.py").write_text("")
    (trap / "agent").mkdir()
    (trap / "agent" / "__init__.py").write_text("")
    (trap / "agent" / "guardian.py").write_text("")

    # `heal` starts an agent (which starts its guardian) and stops it again.
    done = subprocess.run(
        [str(INSTALLED_SCRIPT), "heal"],
        cwd=tmp_path,
        env=env_for(fresh_state_dir),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "no live lease" in done.stdout
    assert not marker.exists(), "a process chaos-tui started ran the working directory's chaos_tui"


def test_spawned_python_runs_the_code_that_spawned_it():
    """-P keeps the working directory out; PYTHONPATH then names our own code first, so a
    checkout run as `python -m chaos_tui` starts its agent from that checkout, not from an
    installed copy (or from nothing)."""
    import chaos_tui
    from chaos_tui.sandbox.processes import with_our_code

    ours = str(Path(chaos_tui.__file__).resolve().parents[1])
    env = with_our_code({"PYTHONPATH": f"/elsewhere:{ours}", "HOME": "/root"})
    assert env["PYTHONPATH"].split(":") == [ours, "/elsewhere"]
    assert env["HOME"] == "/root"
    assert with_our_code({})["PYTHONPATH"] == ours
    code = "import chaos_tui, sys; print(chaos_tui.__file__)"
    env = with_our_code({"PATH": "/usr/bin:/bin"})
    shown = subprocess.run(
        [sys.executable, "-P", "-c", code],
        env=env,
        cwd="/",
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    assert Path(shown).resolve() == Path(chaos_tui.__file__).resolve()
