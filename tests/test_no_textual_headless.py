"""Headless (CI) never loads Textual: only app.py, screens/, widgets/ and messages.py import it,
and nothing on the command line's path to a headless run imports those."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import env_for

# The command line as far as a headless run goes without a target: its modules, the run's
# (scenarios, runner, targets, session), and two commands that parse and check input.
PROBE = """
import sys
import chaos_tui.cli, chaos_tui.cli.run, chaos_tui.headless, chaos_tui.session, chaos_tui.terminal
import chaos_tui.core.runner, chaos_tui.scenarios, chaos_tui.targets
from chaos_tui.cli import main
assert main(["list"]) == 0
assert main(["--headless", "--scenario", "postgres_restart_outbox", "--set", "nope=1"]) == 2
loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
assert not loaded, loaded
"""


def run_probe(code: str, state_dir) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter: what it imports is what a process would import."""
    run = subprocess.run(
        [sys.executable, "-c", code],
        env=env_for(state_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def test_headless_never_imports_textual(fresh_state_dir):
    run = run_probe(PROBE, fresh_state_dir)
    assert "unknown parameter nope for postgres_restart_outbox" in run.stderr


def test_the_console_still_gets_the_hangup_safe_driver(fresh_state_dir):
    """The driver moved to widgets/ (Textual's side of the line); the app still uses it."""
    from chaos_tui.app import ChaosApp
    from chaos_tui.settings import Settings
    from chaos_tui.widgets.hangup_driver import HangupSafeDriver

    app = ChaosApp(Settings(state_dir=fresh_state_dir))
    assert app.driver_class is HangupSafeDriver
