"""Faults on the user's own processes, through the real agent: named exactly (pid + start
ticks), healed by a restart command the agent runs (at the heal, or at the TTL when nobody
heals), and refused on a stale name, init or the agent itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from chaos_tui.agent import protocol
from chaos_tui.agent.client import AgentClient, AgentRefused
from chaos_tui.agent.leases import LeaseJournal
from chaos_tui.agent.process_faults import ProcessTerminate
from chaos_tui.agent.protocol import Lease
from chaos_tui.core.procinfo import listeners, proc_stat, start_ticks
from chaos_tui.settings import Settings

SERVER = f"{sys.executable} -m http.server {{port}} --bind 127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout_s:g} s"
        await asyncio.sleep(0.05)


def start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        SERVER.format(port=port).split(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        start_new_session=True,
    )
    wait_listening(port)
    return proc


def wait_listening(port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not listeners(port):
        assert time.monotonic() < deadline, f"nothing listened on port {port}"
        time.sleep(0.05)


def stop_listeners(port: int) -> None:
    """What listens on the port now: the test's server, or the one the restart started."""
    for pid, ticks in listeners(port):
        if start_ticks(pid) == ticks:
            os.kill(pid, signal.SIGKILL)


async def fault_on(
    agent, kind: str, port: int, ttl_s: float = 30, restart: str | None = None, **request
):
    """A lease of `kind` on whatever listens on `port`, named exactly."""
    params: dict = {"pids": [list(p) for p in listeners(port)]}
    if restart is not None:
        params["restart"] = restart
    return await agent.create_lease(
        kind=kind, target="local", params=params, ttl_s=ttl_s, **request
    )


@pytest.fixture
def server():
    """A service of the user's, listening on a port; whatever listens there at the end (it,
    or the one a restart started) is stopped."""
    port = free_port()
    proc = start_server(port)
    yield port, proc
    proc.kill()
    proc.wait(5)
    stop_listeners(port)


def guardian_of(agent) -> list[int]:
    """[pid, start ticks] of the agent's guardian, once it has said it runs."""
    path = agent.folder / "guardian.json"
    deadline = time.monotonic() + 5
    while not path.exists():
        assert time.monotonic() < deadline, "the agent's guardian never wrote guardian.json"
        time.sleep(0.05)
    pid = json.loads(path.read_text())["pid"]
    return [pid, start_ticks(pid)]


def restart_command(port: int) -> str:
    # Starts the service and returns, as `systemctl start` would.
    return f"setsid {SERVER.format(port=port)} >/dev/null 2>&1 < /dev/null &"


async def test_a_killed_service_is_restarted_by_the_heal(agent, server):
    port, proc = server
    named = listeners(port)
    lease = await fault_on(agent, "process.kill", port, restart=restart_command(port))
    assert proc.wait(5) == -signal.SIGKILL
    assert listeners(port) == []
    assert await agent.heal_lease(lease.id)
    await until(lambda: listeners(port) != [], 10, "the restart command's server listens")
    assert listeners(port) != named, "a new process, not the one killed"


async def test_the_ttl_runs_the_restart_when_nobody_heals(agent, server):
    port, proc = server
    await fault_on(
        agent, "process.kill", port, ttl_s=1, restart=restart_command(port), orphan_ok=True
    )
    await until(lambda: proc.poll() is not None, 5, "the server killed")
    await until(lambda: listeners(port) != [], 10, "the agent restarted it at the TTL")


async def test_a_paused_process_is_resumed_by_the_heal(agent, server):
    port, proc = server
    lease = await fault_on(agent, "process.pause", port)
    await until(lambda: (proc_stat(proc.pid) or ("?",))[0] == "T", 5, "the server stopped")
    assert await agent.heal_lease(lease.id)
    await until(lambda: (proc_stat(proc.pid) or ("?",))[0] != "T", 5, "the server resumed")
    assert proc.poll() is None


async def test_a_failing_restart_is_a_failed_heal_that_says_why(agent, tmp_path, server):
    port, proc = server
    failed_once = tmp_path / "failed-once"
    # Fails the first time, works the next: the lease stays live until a heal works.
    restart = f"[ -e {failed_once} ] || {{ touch {failed_once}; exit 3; }}"
    lease = await fault_on(agent, "process.terminate", port, restart=restart)
    proc.wait(5)
    with pytest.raises(AgentRefused, match="exited 3"):
        await agent.heal_lease(lease.id)
    assert lease.id in {live.id for live in await agent.leases()}
    assert await agent.heal_lease(lease.id)  # tried again, it works


@pytest.mark.parametrize("who", ["stale", "init", "agent", "guardian"])
async def test_a_process_not_exactly_named_is_never_touched(agent, who):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid, ticks = proc.pid, start_ticks(proc.pid)
        named = {
            "stale": [pid, ticks + 1],  # the pid reused by another process since
            "init": [1, start_ticks(1)],
            "agent": [agent.info()["pid"], start_ticks(agent.info()["pid"])],
            "guardian": guardian_of(agent),
        }[who]
        with pytest.raises(AgentRefused) as refused:
            await agent.create_lease(
                kind="process.kill", target="local", params={"pids": [named]}, ttl_s=10
            )
        assert refused.value.status == 400
        assert proc.poll() is None and start_ticks(1) is not None
    finally:
        proc.kill()
        proc.wait(5)


def never_applied(kind: str, proc: subprocess.Popen, restart: str) -> Lease:
    """A lease as the book journals it before the fault: state "applying", nothing recorded."""
    now = time.time()
    return Lease(
        id="pending-1",
        kind=kind,
        target="local",
        params={"pids": [[proc.pid, start_ticks(proc.pid)]], "restart": restart},
        ttl_s=60,
        orphan_ok=True,
        created_at=now,
        expires_at=now + 60,
        state="applying",
    )


@pytest.mark.parametrize("kind", ["process.kill", "process.terminate"])
async def test_a_leftover_never_applied_starts_no_second_copy(fresh_state_dir, tmp_path, kind):
    """The journal holds a lease its agent never applied (it died before the signal, or a
    halt refused it and the file stayed): the next agent heals it without running the
    restart, since the service it names still runs, and says so in its log."""
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    restarted = tmp_path / "restarted"
    try:
        folder = protocol.agent_dir(fresh_state_dir)
        folder.mkdir(mode=0o700)
        lease = never_applied(kind, victim, f"echo second-copy >> {restarted}")
        LeaseJournal(folder / protocol.LEASES_DIR).write(lease)
        client = AgentClient(Settings(state_dir=fresh_state_dir))
        assert await client.ensure() is True
        recovered = (await client.status()).recovered
        client.stop_spawned()
        assert [(r.id, r.healed) for r in recovered] == [("pending-1", True)]
        assert victim.poll() is None, "the process named was never signalled"
        assert not restarted.exists(), "the restart ran: a second copy of the service"
        assert "restart not run" in (folder / protocol.LOG_FILE).read_text()
    finally:
        victim.kill()
        victim.wait(5)


async def test_an_apply_that_failed_half_way_is_undone_with_its_restart(tmp_path, monkeypatch):
    """One of two processes signalled, then the apply failed: the heal that undoes it knows
    a signal went out (the apply records each as it goes) and runs the restart, even though
    both still run (the first ignores SIGTERM)."""
    first = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; echo ready; exec sleep 60"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert first.stdout is not None and first.stdout.readline() == b"ready\n"
    second = subprocess.Popen(["sleep", "60"], start_new_session=True)
    restarted = tmp_path / "restarted"
    lease = never_applied("process.terminate", first, f"touch {restarted}")
    lease.params["pids"].append([second.pid, start_ticks(second.pid)])
    real_kill = os.kill

    def signal_the_first_only(pid: int, sig: int) -> None:
        if pid == second.pid:
            raise PermissionError(1, "Operation not permitted")
        real_kill(pid, sig)

    try:
        monkeypatch.setattr("chaos_tui.agent.process_faults.os.kill", signal_the_first_only)
        with pytest.raises(PermissionError):
            await ProcessTerminate().apply(lease)
        assert first.poll() is None and second.poll() is None
        await ProcessTerminate().heal(lease)
        assert restarted.exists()
    finally:
        monkeypatch.undo()
        for proc in (first, second):
            proc.kill()
            proc.wait(5)
        if first.stdout:
            first.stdout.close()
