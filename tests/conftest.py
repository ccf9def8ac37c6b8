"""Shared fixtures. Integration tests run the real sandbox: PostgreSQL and NATS from their
wheels and our outbox relay, each in a state directory of its own that is torn down after."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from chaos_tui.agent.client import AgentClient
from chaos_tui.core.guard import ENVIRONMENT_VARIABLES
from chaos_tui.sandbox import postgres
from chaos_tui.sandbox.processes import ProcessRecord, is_running, stop
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings

CHAOS_TUI = [sys.executable, "-m", "chaos_tui"]
# Short fault windows: the suite proves behaviour, the benchmarks measure it at length.
FAST = ["--set", "warmup_s=1", "--set", "down_s=2", "--set", "recover_s=2"]


def make_state_dir(tag: str) -> Path:
    # Left 0700 as mkdtemp makes it: the private state dir every user should have. As root,
    # PostgreSQL (another user) then lives outside it; remove_state_dir removes that too.
    return Path(tempfile.mkdtemp(prefix=f"chaos-tui-test-{tag}-", dir="/tmp"))


def remove_state_dir(state_dir: Path) -> None:
    """The state dir and, as root, PostgreSQL's home outside it (stop the sandbox first)."""
    postgres.remove_home(state_dir / "pg")
    shutil.rmtree(state_dir, ignore_errors=True)


def env_for(state_dir: Path, **extra: str) -> dict[str, str]:
    # Neither our settings nor a deploy variable that the production lockout reads (NODE_ENV...)
    # of the machine running the suite may leak into a test.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHAOS_") and k not in ENVIRONMENT_VARIABLES
    }
    env["CHAOS_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        CHAOS_TUI + args,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
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
    handle.sandbox.up(profiles=["chaos-outbox"])
    try:
        yield handle
    finally:
        leftovers(state_dir)
        handle.sandbox.down()
        remove_state_dir(state_dir)


@contextmanager
def clean_state_dir(tag: str):
    """A state directory with nothing running in it; whatever was started there is stopped,
    and anything of ours found still running fails the test."""
    state_dir = make_state_dir(tag)
    try:
        yield state_dir
    finally:
        left = leftovers(state_dir)
        Sandbox(Settings(state_dir=state_dir)).down()
        remove_state_dir(state_dir)
        assert not left, f"left behind: {left}"


@pytest.fixture
def fresh_state_dir():
    with clean_state_dir("fresh") as state_dir:
        yield state_dir


def leftovers(state_dir: Path) -> list[str]:
    """An agent or a guardian still running, or a lease still on disk in this state dir; all
    are stopped or healed here (by stopping the agent) so one test's mess cannot spoil the
    next."""
    client = AgentClient(Settings(state_dir=state_dir))
    found = [f"lease {p.stem}" for p in (client.folder / "leases").glob("*.json")]
    _wait_while_an_agent_starts(client)
    pid, _ = client.stop_running()
    if pid is not None:
        found.append(f"agent pid {pid}")
    guardian = _stop_guardian(client.folder)
    if guardian is not None:
        found.append(f"guardian pid {guardian} (its agent stopped, it did not)")
    return found


def _guardian(folder: Path) -> dict | None:
    """guardian.json, if it names a live process."""
    try:
        record = json.loads((folder / "guardian.json").read_text())
    except (OSError, ValueError):
        return None
    return (
        record
        if is_running(ProcessRecord("guardian", record["pid"], record["start_ticks"], [], ""))
        else None
    )


def _wait_while_an_agent_starts(client: AgentClient, timeout_s: float = 60.0) -> None:
    """A guardian replacing a dead agent, or an agent healing leftovers before it serves:
    let it finish, so stopping the agent below finds the one that serves."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = _guardian(client.folder)
        if record is None or client.info() is not None:
            return
        time.sleep(0.1)


def _stop_guardian(folder: Path) -> int | None:
    """A clean stop of the agent ends its guardian within a poll; one still alive after 3 s is
    a leftover: SIGTERM it (by pid and start ticks) and name it."""
    deadline = time.monotonic() + 3.0
    while (record := _guardian(folder)) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if record is None:
        return None
    guardian = ProcessRecord("guardian", record["pid"], record["start_ticks"], [], "")
    stop(guardian, 3.0, kill_tree=False)
    return record["pid"]


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """After every test on the shared sandbox: no agent, no lease of ours."""
    yield
    if "sandbox" in request.fixturenames:
        left = leftovers(request.getfixturevalue("sandbox").state_dir)
        assert not left, f"left behind: {left}"


@pytest.fixture(scope="session", autouse=True)
def no_postgres_home_left():
    """As root, PostgreSQL's homes live outside the state dirs: a test that removed its state
    dir with a plain rmtree leaves an orphan, removed here (with the shared binaries once no
    home is left)."""
    yield
    postgres.tidy_homes()


@pytest.fixture
async def agent(sandbox):
    """An agent for the shared sandbox; afterwards no lease, no agent and every service up."""
    client = AgentClient(Settings(state_dir=sandbox.state_dir))
    await client.ensure()
    try:
        yield client
    finally:
        if client.info() is not None:
            await client.release_halt()
        client.stop_spawned()
        assert client.info() is None, "the agent outlived its test"
        assert list((client.folder / "leases").glob("*.json")) == [], "a lease was left behind"
        for service in ("postgres", "nats", "relay"):
            assert await healthy(sandbox, service), f"{service} left broken"


async def healthy(sandbox, service: str) -> bool:
    # The health check runs its own event loop (for NATS): keep it off the test's loop.
    return await asyncio.to_thread(sandbox.sandbox.healthy, service)


TESTBED = Path(__file__).resolve().parents[1] / "infra" / "docker" / "testbed"


def why_no_testbed() -> str | None:
    """Why the offline test bed's image cannot be had here, if it cannot."""
    has_base = subprocess.run(
        ["docker", "image", "ls", "-q", "chaos-tui-testbed-base"], capture_output=True, text=True
    ).stdout.strip()
    if not has_base and (shutil.which("debootstrap") is None or os.geteuid() != 0):
        return (
            "the offline test bed needs debootstrap, run as root, for its first build "
            "(apt-get install debootstrap; .ci/run installs it)"
        )
    return None


def build_testbed_image() -> str:
    """The test bed's image tag, built offline (a blink once cached)."""
    built = subprocess.run(
        [sys.executable, str(TESTBED / "build_testbed.py")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout.strip().split("=", 1)[1]


def iptables_rules(image: str, container: str) -> str:
    """`iptables -S` in a running container's network namespace, from a throwaway container of
    the test bed's image (it has iptables), as root with NET_ADMIN."""
    listed = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            f"container:{container}",
            "--cap-add",
            "NET_ADMIN",
            "--user",
            "root",
            image,
            "iptables",
            "-S",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and "-P INPUT" in listed.stdout, listed.stderr
    return listed.stdout


@asynccontextmanager
async def reaping_book(folder: Path, injectors: dict):
    """A lease book in `folder` with its reaper running, in this process; every lease it
    still holds is healed on the way out."""
    from chaos_tui.agent.leases import LeaseBook, LeaseJournal

    book = LeaseBook(
        LeaseJournal(folder / "leases"), injectors, max_ttl_s=3600, halt_file=folder / "halt"
    )
    reaper = asyncio.create_task(book.reap_forever())
    try:
        yield book
    finally:
        reaper.cancel()
        await book.heal_all("shutdown")
