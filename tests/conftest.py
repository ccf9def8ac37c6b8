"""Shared fixtures. Integration tests run the real sandbox: PostgreSQL and NATS from their
wheels and our outbox relay, each in a state directory of its own that is torn down after."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings

CHAOS_TUI = [sys.executable, "-m", "chaos_tui"]
# Short fault windows: the suite proves behaviour, the benchmarks measure it at length.
FAST = ["--set", "warmup_s=1", "--set", "down_s=2", "--set", "recover_s=2"]


def make_state_dir(tag: str) -> Path:
    # Not under pytest's tmp_path: that is private to root, and PostgreSQL runs as another user.
    path = Path(tempfile.mkdtemp(prefix=f"chaos-tui-test-{tag}-", dir="/tmp"))
    path.chmod(0o755)
    return path


def env_for(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_") and k != "ENVIRONMENT"}
    env["CHAOS_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        CHAOS_TUI + args, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class SandboxHandle:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.env = env_for(state_dir)
        self.sandbox = Sandbox(Settings(state_dir=state_dir))


@pytest.fixture(scope="session")
def sandbox():
    """One running sandbox for the tests that only need a healthy stack to fault."""
    state_dir = make_state_dir("shared")
    handle = SandboxHandle(state_dir)
    handle.sandbox.up()
    try:
        yield handle
    finally:
        handle.sandbox.down()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def fresh_state_dir():
    """A state directory with nothing running in it; whatever a test starts there is stopped."""
    state_dir = make_state_dir("fresh")
    try:
        yield state_dir
    finally:
        Sandbox(Settings(state_dir=state_dir)).down()
        shutil.rmtree(state_dir, ignore_errors=True)
