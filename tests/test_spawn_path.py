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
