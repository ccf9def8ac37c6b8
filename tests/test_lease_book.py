"""The lease book under pressure, with a real agent process: one id sent at once from many
sockets lands once; two faults on one service never fight; a lease's owner dying heals it at
once; a disk that refuses to forget a lease stops no other heal; and what ended is on record.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from chaos_tui.agent.client import AgentClient
from chaos_tui.settings import Settings
from tests.conftest import CHAOS_TUI, env_for, leftovers, make_state_dir, run_cli


@pytest.fixture
async def lone_agent():
    """An agent in a state dir of its own (no sandbox), stopped and removed afterwards."""
    state_dir = make_state_dir("book")
    client = AgentClient(Settings(state_dir=state_dir))
    await client.ensure()
    try:
        yield client
    finally:
        left = leftovers(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
        assert all(item.startswith("agent") for item in left), left


needs_chattr = pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs)")


def run_until_injected(sandbox, *sets: str, output: Path | None = None) -> subprocess.Popen:
    """A headless postgres_restart_outbox run of our own, returned once its fault landed."""
    args = ["--headless", "--scenario", "postgres_restart_outbox"]
    args += [a for s in sets for a in ("--set", s)]
    args += ["--output", str(output)] if output else []
    proc = subprocess.Popen(
        CHAOS_TUI + args,
        env=sandbox.env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stderr:
        if "INJECTED" in line:
            return proc
    proc.wait(30)
    raise AssertionError(f"the run ended before its fault landed (exit {proc.returncode})")


def raw_post(url: str, token: str, body: dict, sockets: int) -> list[int]:
    """The same request on `sockets` connections opened beforehand, sent back to back, so the
    agent reads them all before it has finished with the first. Returns the status codes."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    payload = json.dumps(body).encode()
    request = (
        f"POST /leases HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + payload
    conns = [socket.create_connection((host, int(port)), timeout=10) for _ in range(sockets)]
    try:
        for conn in conns:
            conn.sendall(request)
        statuses = []
        for conn in conns:
            head = conn.recv(64).decode()
            statuses.append(int(head.split()[1]))
        return statuses
    finally:
        for conn in conns:
            conn.close()


async def test_one_id_sent_ten_times_at_once_lands_once_and_heals(lone_agent):
    agent = lone_agent
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(8)
    try:
        await agent._ok(
            "POST", "/proxies", {"name": "p", "upstream": f"127.0.0.1:{upstream.getsockname()[1]}"}
        )
        body = {
            "id": "same-1",
            "kind": "proxy.toxic",
            "ttl_s": 1.5,
            "orphan_ok": True,
            "params": {"proxy": "p", "type": "latency", "attributes": {"latency": 50}},
        }
        statuses = await asyncio.to_thread(raw_post, agent.info()["url"], agent.token(), body, 10)
        assert sorted(statuses) == [201] + [409] * 9, statuses
        proxy = await agent._ok("GET", "/proxies/p")
        assert len(proxy["toxics"]) == 1, "applied more than once"
        await asyncio.sleep(2.5)  # past the TTL: the reaper healed the one lease it tracks
        assert await agent.leases() == []
        proxy = await agent._ok("GET", "/proxies/p")
        assert proxy["toxics"] == [] and proxy["enabled"] and proxy["listening"]
        ended = await agent.ended("same-1")
        assert ended is not None and ended.by == "ttl"
    finally:
        upstream.close()


async def test_two_faults_on_one_service_never_fight(agent, sandbox):
    """Two leases (different ids) pausing one service at the same moment: one lands, the
    other is refused with 409 and touches nothing; the heal leaves the service running."""
    body = {
        "kind": "sandbox.pause",
        "target": "sandbox",
        "ttl_s": 30,
        "params": {"service": "relay"},
        "owner_pid": os.getpid(),
    }
    first, second = await asyncio.gather(
        agent.call("POST", "/leases", {**body, "id": "pa-1"}),
        agent.call("POST", "/leases", {**body, "id": "pa-2"}),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    refused = first if first.status_code == 409 else second
    assert "already has a live fault" in refused.json()["detail"]
    assert len(await agent.leases()) == 1
    await agent.heal_all()
    assert sandbox.sandbox.healthy("relay")


async def test_a_lease_names_its_owner_or_says_it_has_none(lone_agent):
    agent = lone_agent
    await agent._ok("POST", "/proxies", {"name": "q", "upstream": "127.0.0.1:9"})
    base = {"kind": "proxy.down", "ttl_s": 30, "params": {"proxy": "q"}}
    silent = await agent.call("POST", "/leases", base)
    assert silent.status_code == 400 and "owner_pid" in silent.json()["detail"]
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = await agent.call("POST", "/leases", {**base, "owner_pid": dead.pid})
    assert gone.status_code == 400 and "not running" in gone.json()["detail"]
    for immortal in (1, agent.info()["pid"]):  # they outlive the agent: the switch never fires
        never = await agent.call("POST", "/leases", {**base, "owner_pid": immortal})
        assert never.status_code == 400 and "can never die" in never.json()["detail"]
    assert await agent.leases() == [] and (await agent._ok("GET", "/proxies/q"))["enabled"]


async def test_the_owner_dying_heals_its_lease_at_once(lone_agent):
    agent = lone_agent
    await agent._ok("POST", "/proxies", {"name": "r", "upstream": "127.0.0.1:9"})
    owner = subprocess.Popen(["sleep", "60"])
    try:
        lease = await agent.create_lease(
            kind="proxy.down", ttl_s=600, params={"proxy": "r"}, owner_pid=owner.pid
        )
        assert not (await agent._ok("GET", "/proxies/r"))["enabled"]
        owner.kill()  # our own child, by its pid; unreaped it is a zombie: dead all the same
        killed = time.time()
        while (await agent.leases()) and time.time() < killed + 5:
            await asyncio.sleep(0.05)
        healed = time.time() - killed
        assert await agent.leases() == [], "the owner's death was not noticed"
        assert healed <= 2.0, f"healed {healed:.2f}s after the owner died"
        assert (await agent._ok("GET", "/proxies/r"))["enabled"]
        ended = await agent.ended(lease.id)
        assert ended is not None and ended.by == "owner-died"
        assert ended.owner_died_seen_at is not None and ended.owner_died_seen_at >= killed
    finally:
        owner.kill()
        owner.wait()


@needs_chattr
async def test_a_journal_that_cannot_forget_stops_no_other_heal(sandbox):
    """Point 5: two pauses, the leases dir made immutable, `agent stop`: both services run
    again and the command says what it could not do, with a non-zero exit."""
    client = AgentClient(Settings(state_dir=sandbox.state_dir))
    await client.ensure()
    leases_dir = client.folder / "leases"
    pids = {s: sandbox.sandbox.record(s).pid for s in ("nats", "relay")}
    try:
        for service in pids:
            await client.create_lease(
                kind="sandbox.pause", target="sandbox", ttl_s=600, params={"service": service}
            )
        subprocess.run(["chattr", "+i", str(leases_dir)], check=True)
        stop = await asyncio.to_thread(run_cli, ["agent", "stop"], sandbox.env)
    finally:
        subprocess.run(["chattr", "-i", str(leases_dir)], check=False)
    states = {
        s: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        for s, pid in pids.items()
    }
    assert "T" not in states.values(), f"a service stayed frozen: {states}"
    assert stop.returncode != 0, stop.stdout + stop.stderr
    assert stop.stdout.count("journal file could not be removed") == 2, stop.stdout
    assert "Traceback" not in stop.stderr
    # The journal files that stayed are healed again, harmlessly, by the next agent.
    assert await client.ensure() is True
    assert [r.healed for r in (await client.status()).recovered] == [True, True]
    client.stop_spawned()
    assert list(leases_dir.glob("*.json")) == []


@needs_chattr
async def test_delete_answers_204_when_the_heal_worked_but_the_disk_said_no(sandbox):
    client = AgentClient(Settings(state_dir=sandbox.state_dir))
    await client.ensure()
    leases_dir = client.folder / "leases"
    try:
        lease = await client.create_lease(
            kind="sandbox.pause", target="sandbox", ttl_s=600, params={"service": "relay"}
        )
        subprocess.run(["chattr", "+i", str(leases_dir)], check=True)
        response = await client.call("DELETE", f"/leases/{lease.id}")
        assert response.status_code == 204, response.text
        assert "journal file" in response.headers.get("x-chaos-warning", "")
        assert sandbox.sandbox.healthy("relay")
    finally:
        subprocess.run(["chattr", "-i", str(leases_dir)], check=False)
        client.stop_spawned()  # the next agent finds the stale file and heals it, harmlessly
        await client.ensure()
        client.stop_spawned()
    assert list(leases_dir.glob("*.json")) == []


def test_a_warning_header_is_ascii_whatever_the_text():
    """Header values go out as latin-1, without control characters: a path with CJK letters
    (or a newline) in the warning once made the agent answer 500 for a heal that worked."""
    from chaos_tui.agent.api import header_text

    text = "its journal file /tmp/st-日本-é/agent/leases/a.json could not be removed\nat all"
    value = header_text(text)
    assert value.isascii() and value.isprintable(), value
    assert value == (
        "its journal file /tmp/st-\\u65e5\\u672c-\\xe9/agent/leases/a.json could not be "
        "removed\\nat all"
    )
    assert header_text(" plain ascii stays as it is ") == "plain ascii stays as it is"


@needs_chattr
async def test_delete_answers_204_with_a_warning_in_a_state_dir_named_in_cjk():
    state_dir = Path(tempfile.mkdtemp(prefix="chaos-tui-test-日本-", dir="/tmp"))
    client = AgentClient(Settings(state_dir=state_dir))
    leases_dir = client.folder / "leases"
    try:
        await client.ensure()
        lease = await client.create_lease(
            kind="worker.inject",
            target="sandbox",
            ttl_s=600,
            params={"injectors": [{"kind": "fail", "rate": 0.5}]},
        )
        subprocess.run(["chattr", "+i", str(leases_dir)], check=True)
        response = await client.call("DELETE", f"/leases/{lease.id}")
        assert response.status_code == 204, response.text
        warning = response.headers.get("x-chaos-warning", "")
        assert "journal file" in warning and "\\u65e5\\u672c" in warning, warning
        assert await client.leases() == []
    finally:
        subprocess.run(["chattr", "-i", str(leases_dir)], check=False)
        client.stop_spawned()  # the next agent finds the stale file and heals it, harmlessly
        await client.ensure()
        left = leftovers(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
    assert all(item.startswith("agent") for item in left), left


@needs_chattr
async def test_a_full_journal_refuses_with_one_line_and_applies_nothing(lone_agent):
    """A journal that cannot be written (here: made immutable, as a full disk would refuse)
    gives 507 with the reason, and the proxy is not taken down."""
    agent = lone_agent
    await agent._ok("POST", "/proxies", {"name": "s", "upstream": "127.0.0.1:9"})
    leases_dir = agent.folder / "leases"
    subprocess.run(["chattr", "+i", str(leases_dir)], check=True)
    try:
        response = await agent.call(
            "POST",
            "/leases",
            {"kind": "proxy.down", "ttl_s": 30, "params": {"proxy": "s"}, "orphan_ok": True},
        )
    finally:
        subprocess.run(["chattr", "-i", str(leases_dir)], check=False)
    assert response.status_code == 507 and "nothing was applied" in response.json()["detail"]
    assert (await agent._ok("GET", "/proxies/s"))["enabled"] and await agent.leases() == []


@pytest.mark.slow
def test_a_sigkilled_run_is_healed_within_2s_and_reported_by_the_next_command(sandbox):
    """Points 4 and 12: SIGKILL of a run holding a 20 s Postgres kill; the agent sees its
    owner die and heals at once; the next command says what happened."""
    proc = run_until_injected(sandbox, "warmup_s=1", "down_s=20", "recover_s=2")
    client = AgentClient(Settings(state_dir=sandbox.state_dir))
    try:
        time.sleep(0.3)
        assert not sandbox.sandbox.healthy("postgres")
        proc.send_signal(signal.SIGKILL)  # the run we started, by its pid
        killed = time.time()
        proc.wait(10)
        while time.time() < killed + 10 and not sandbox.sandbox.healthy("postgres"):
            time.sleep(0.05)
        back = time.time() - killed
        assert sandbox.sandbox.healthy("postgres"), "the owner's death did not heal the fault"
        assert back <= 2.0, f"Postgres answered {back:.2f}s after the run died"
        report = run_cli(["leases"], sandbox.env)
        lines = [ln for ln in report.stderr.splitlines() if "was killed at" in ln]
        assert len(lines) == 1, report.stderr
        assert "postgres_restart_outbox" in lines[0] and "healed by the agent" in lines[0]
        assert "(owner-died)" in lines[0]
        again = run_cli(["leases"], sandbox.env)
        assert "was killed" not in again.stderr, "reported twice"
        kept = [
            json.loads(p.read_text()) for p in (sandbox.state_dir / "runs").glob("*.killed.json")
        ]
        ours = [k for k in kept if k["pid"] == proc.pid]  # the shared sandbox may hold others
        assert len(ours) == 1 and ours[0]["faults"][0]["by"] == "owner-died", kept
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        client.stop_spawned()


@pytest.mark.slow
def test_a_run_frozen_past_its_ttl_reports_the_agents_heal_time(sandbox, tmp_path):
    """Point 12: SIGSTOP a run after its inject until well past the TTL (the agent heals at
    the TTL); woken, the run reports the agent's heal time, not the moment it woke up."""
    out = tmp_path / "result.json"
    proc = run_until_injected(sandbox, "warmup_s=1", "down_s=1", "recover_s=1", output=out)
    client = AgentClient(Settings(state_dir=sandbox.state_dir))
    try:
        proc.send_signal(signal.SIGSTOP)
        time.sleep(15)  # TTL = 1 s hold + 10 s margin: the agent heals at about 11 s
        proc.send_signal(signal.SIGCONT)
        proc.stderr.read()
        proc.wait(120)
        window = json.loads(out.read_text())["injection_windows"][0]
        held = window["healed_at"] - window["injected_at"]
        assert held < 13, f"window held {held:.1f}s: the run's wake-up, not the agent's heal"
        assert "ttl" in window["healed_by"], window
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()
        client.stop_spawned()


async def test_a_halt_racing_new_leases_leaves_none_live(lone_agent):
    """POST /halt sent among twenty lease requests: a request that passed the halt check
    before the latch, then awaited its injector's check, used to land after the halt had
    answered ("nothing new lands while we heal" broken; seen in 4 of 5 tries)."""
    agent = lone_agent
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(8)
    try:
        for i in range(20):
            await agent._ok(
                "POST",
                "/proxies",
                {"name": f"h{i}", "upstream": f"127.0.0.1:{upstream.getsockname()[1]}"},
            )
        for trial in range(5):
            creates = [
                agent.call(
                    "POST",
                    "/leases",
                    {
                        "id": f"h{trial}-{i}",
                        "kind": "proxy.down",
                        "ttl_s": 30,
                        "orphan_ok": True,
                        "params": {"proxy": f"h{i}"},
                    },
                )
                for i in range(20)
            ]
            *answers, halted = await asyncio.gather(*creates, agent.call("POST", "/halt"))
            assert halted.status_code == 200
            assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
            assert await agent.leases() == [], f"try {trial}: a lease landed after the halt"
            await agent._ok("DELETE", "/halt")
    finally:
        upstream.close()


def test_agent_stop_with_no_agent_but_leases_on_disk_says_so(fresh_state_dir):
    """A dead agent's journal (its guardian may still be replacing it) is no clean stop."""
    leases = fresh_state_dir / "agent" / "leases"
    leases.mkdir(parents=True)
    (leases / "left-1.json").write_text('{"id": "left-1"')  # torn, as a crash leaves it
    stop = run_cli(["agent", "stop"], env_for(fresh_state_dir))
    assert stop.returncode == 4, stop.stdout + stop.stderr
    assert "left-1" in stop.stderr and "chaos-tui heal" in stop.stderr
    assert "Traceback" not in stop.stderr
    (leases / "left-1.json").unlink()
