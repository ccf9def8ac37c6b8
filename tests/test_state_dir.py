"""State dir hygiene (issue 12, points 10 and 15): the state dir is ours alone, no link in it
is followed, and a private (0700) state dir runs the sandbox even as root."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from chaos_tui.agent.leases import LeaseJournal
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.sandbox import postgres
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings
from tests.conftest import CHAOS_TUI, FAST, env_for, run_cli

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def dirs():
    """A private state dir and, beside it, a 'victim' dir that links in the state dir point
    into: what is there must come out of every test unchanged."""
    state = Path(tempfile.mkdtemp(prefix="chaos-tui-test-statedir-", dir="/tmp"))
    victim = Path(tempfile.mkdtemp(prefix="chaos-tui-test-victim-", dir="/tmp"))
    try:
        yield state, victim
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(victim, ignore_errors=True)


def cli(args: list[str], env: dict, timeout_s: float = 20.0) -> subprocess.CompletedProcess:
    """Run chaos-tui; a command that should have been refused but serves instead (`agent`) is
    stopped after `timeout_s` (SIGTERM to its own pid) and reported as still running."""
    proc = subprocess.Popen(
        CHAOS_TUI + args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
        err = f"STILL RUNNING after {timeout_s:g}s (stopped by the test)\n{err}"
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def assert_refused(proc: subprocess.CompletedProcess, needle: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


def snapshot(path: Path) -> tuple:
    """What a link's target looks like: mode, and contents (a file's bytes, a dir's names)."""
    info = os.lstat(path)
    body = path.read_bytes() if path.is_file() else tuple(sorted(os.listdir(path)))
    return stat.S_IMODE(info.st_mode), info.st_uid, body


# -- links in the state dir (point 10) ----------------------------------------------------------


def test_state_dir_that_is_a_link_is_refused(dirs):
    state, victim = dirs
    link = state.with_name(state.name + "-link")
    link.symlink_to(victim)
    try:
        proc = cli(["sandbox", "status"], env_for(link))
        assert_refused(proc, f"the state dir {link} is a symbolic link")
        assert os.listdir(victim) == [], "nothing may be made through the link"
    finally:
        link.unlink()


# (entry in the state dir, what the link points at, the command that would touch it)
LINKS = [
    ("agent/agent.lock", "file", ["agent"]),  # used to be truncated
    ("agent/token", "token", ["agent"]),  # its contents used to become the token
    ("agent/leases", "dir", ["leases"]),  # used to be chmod'ed 0700
    ("sandbox.lock", "file", ["sandbox", "down"]),  # used to be truncated
]


@pytest.mark.parametrize("entry, kind, args", LINKS, ids=[e for e, _, _ in LINKS])
def test_link_in_state_dir_is_refused_and_its_target_untouched(dirs, entry, kind, args):
    state, victim = dirs
    if kind == "dir":
        target = victim / "precious-dir"
        target.mkdir(mode=0o755)
        (target / "keep.txt").write_text("keep\n")
        target.chmod(0o755)
    else:
        target = victim / "precious.txt"
        # A token-shaped secret, 0600 and ours: everything the agent asks of a token file.
        target.write_text(
            "attacker-chosen-token-0123456789abcdefghijklmnop\n"
            if kind == "token"
            else "precious contents\n"
        )
        target.chmod(0o600)
    before = snapshot(target)
    link = state / entry
    link.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    link.symlink_to(target)

    proc = cli(args, env_for(state))
    assert snapshot(target) == before, "the link's target was changed"
    assert_refused(proc, f"{link} is a symbolic link")
    assert not (state / "agent" / "agent.json").exists(), "no agent may have served"


def test_a_link_that_appears_after_the_check_is_not_followed(dirs):
    """Past the CLI's check, the files are opened without following links: the lock files are
    not truncated, the leases dir's target is not chmod'ed."""
    state, victim = dirs
    precious = victim / "precious.txt"
    precious.write_text("precious contents\n")
    precious_dir = victim / "precious-dir"
    precious_dir.mkdir(mode=0o755)
    precious_dir.chmod(0o755)
    before = snapshot(precious), snapshot(precious_dir)
    (state / "agent").mkdir(mode=0o700)
    (state / "sandbox.lock").symlink_to(precious)
    (state / "agent" / "leases").symlink_to(precious_dir)

    # StateDirProblem, an OSError (so every one-line OSError report covers it)
    with pytest.raises(OSError, match=r"sandbox\.lock is a symbolic link"):
        Sandbox(Settings(state_dir=state)).down()
    with pytest.raises(OSError, match="leases is a symbolic link"):
        LeaseJournal(state / "agent" / "leases")
    assert (snapshot(precious), snapshot(precious_dir)) == before


# -- whose state dir (point 10) -----------------------------------------------------------------


@pytest.mark.skipif(not AS_ROOT, reason="chown to another user needs root")
def test_state_dir_of_another_user_is_refused(dirs):
    state, _ = dirs
    os.chown(state, 65534, 65534)  # nobody
    proc = cli(["sandbox", "status"], env_for(state))
    assert_refused(proc, "belongs to")
    assert os.listdir(state) == []


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_state_dir_writable_by_others_is_refused(dirs, mode):
    state, _ = dirs
    state.chmod(mode)
    proc = cli(["sandbox", "status"], env_for(state))
    assert_refused(proc, f"{state} is writable by others (mode {mode:04o})")
    assert os.listdir(state) == []


def test_missing_state_dir_is_made_private(dirs):
    state, _ = dirs
    deep = state / "a" / "b" / "state"
    proc = cli(["sandbox", "status"], env_for(deep))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(deep.stat().st_mode) == 0o700


# -- a private state dir runs the sandbox as root (point 15) ------------------------------------


@pytest.mark.slow
def test_private_state_dir_runs_postgres_restart_outbox(fresh_state_dir, tmp_path):
    state = fresh_state_dir
    state.chmod(0o700)
    out = tmp_path / "result.json"
    proc = run_cli(
        ["--headless", "--scenario", "postgres_restart_outbox", "--output", str(out), *FAST],
        env_for(state),
    )
    assert proc.returncode == ExitCode.PASS, proc.stderr[-2000:]
    assert json.loads(out.read_text())["outcome"] == "pass"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700, "the state dir must stay private"
    if not AS_ROOT:
        return
    # PostgreSQL's cluster lives outside the state dir, in a home only its user can enter.
    home = Path((state / "pg" / "home").read_text().strip())
    assert home.parent == postgres.ROOT_HOME / "data" and (home / "PG_VERSION").is_file()
    assert home.stat().st_uid == postgres.pwd.getpwnam("chaostui").pw_uid
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(postgres.ROOT_HOME.stat().st_mode) == 0o750
    # The run stopped what it started. A state dir deleted by hand leaves an orphaned home,
    # which the next tidy removes (the fixture does that for state dirs it removes itself).
    shutil.rmtree(state)
    postgres.tidy_homes()
    assert not home.exists()
