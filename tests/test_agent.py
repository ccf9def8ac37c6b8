"""The fault agent, for real: its own process, HTTP on loopback, leases on disk, the sandbox's
real services broken and mended, and SIGKILLs of the agent and of a headless run."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from chaos_tui.agent.client import AgentError
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.sandbox.processes import is_running
from tests.conftest import env_for, healthy, run_cli


def lease_request(**overrides) -> dict:
    body = {"kind": "sandbox.hard_restart", "params": {"service": "postgres"}, "ttl_s": 30}
    body.update(overrides)
    return body


async def wait_healthy(sandbox, service: str, deadline: float) -> float:
    """Seconds after the epoch when the service answered again; fails at `deadline`."""
    while time.time() < deadline:
        if await healthy(sandbox, service):
            return time.time()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{service} not healthy by the deadline")


async def test_every_route_but_health_needs_the_token(agent):
    info = agent.info()
    token = agent.token()
    async with httpx.AsyncClient(base_url=info["url"], timeout=10) as http:
        open_health = await http.get("/health")
        assert open_health.status_code == 200 and set(open_health.json()) == {"ok", "version"}
        schema = (
            await http.get("/openapi.json", headers={"Authorization": f"Bearer {token}"})
        ).json()
        routes = [
            (m.upper(), path.replace("{lease_id}", "nope"))
            for path, ops in schema["paths"].items()
            for m in ops
        ]
        routes.append(("GET", "/openapi.json"))
        assert len(routes) >= 9, routes
        for method, path in routes:
            if path == "/health":
                continue
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                response = await http.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers, response.text)
    token_file = agent.folder / "token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"


async def test_bad_leases_are_refused_and_nothing_is_broken(agent, sandbox):
    pid = sandbox.sandbox.record("postgres").pid
    for body, status in [
        ({k: v for k, v in lease_request().items() if k != "ttl_s"}, 422),  # no TTL
        (lease_request(ttl_s=0), 422),
        (lease_request(ttl_s=7200), 400),  # above the 1 h cap
        (lease_request(kind="meteor"), 400),
        (lease_request(params={"service": "the-database"}), 400),
        (lease_request(target="production"), 400),
    ]:
        response = await agent.call("POST", "/leases", body)
        assert response.status_code == status, (body, response.text)
    assert await agent.leases() == []
    assert sandbox.sandbox.record("postgres").pid == pid and await healthy(sandbox, "postgres")


@pytest.mark.slow
async def test_the_reaper_heals_a_lease_at_its_ttl(agent, sandbox):
    lease = await agent.create_lease(**lease_request(ttl_s=2))
    assert not await healthy(sandbox, "postgres"), "the fault did not land"
    assert (agent.folder / "leases" / f"{lease.id}.json").exists(), "not journalled"
    # A restart after SIGKILL includes crash recovery: seconds on a loaded 2-core machine.
    back = await wait_healthy(sandbox, "postgres", lease.expires_at + 3.0)
    assert back >= lease.expires_at - 0.5, "healed long before its TTL"
    while await agent.leases() and time.time() < back + 2:  # the heal returns just after
        await asyncio.sleep(0.05)
    assert await agent.leases() == []


@pytest.mark.slow
async def test_a_killed_agent_leaves_a_lease_its_replacement_heals_first(agent, sandbox):
    lease = await agent.create_lease(**lease_request(params={"service": "nats"}, ttl_s=600))
    info = agent.info()
    os.kill(info["pid"], signal.SIGKILL)  # our own agent, by its pid
    # Its guardian starts a replacement at once, which heals the journal before it serves.
    deadline = time.time() + 30
    while (agent.info() or info)["pid"] == info["pid"] and time.time() < deadline:
        await asyncio.sleep(0.1)
    assert await agent.ensure() is False, "the guardian's replacement must be serving"
    health = await agent.status()
    assert [r.id for r in health.recovered] == [lease.id]
    assert health.recovered[0].healed is True
    assert await healthy(sandbox, "nats") and await agent.leases() == []


@pytest.mark.slow
async def test_halt_heals_everything_and_latches(agent, sandbox):
    await agent.create_lease(**lease_request(ttl_s=600))
    results = await agent.halt()
    assert [r.healed for r in results] == [True] and await healthy(sandbox, "postgres")
    with pytest.raises(AgentError) as refused:
        await agent.create_lease(**lease_request())
    assert refused.value.status == 409
    # The command line sees the latch too, and lifts it.
    assert "halt" in run_cli(["halt", "--release"], sandbox.env).stdout
    lease = await agent.create_lease(**lease_request(ttl_s=600))
    heal = run_cli(["heal"], sandbox.env)
    assert heal.returncode == 0 and f"lease {lease.id}: healed" in heal.stdout
    assert await healthy(sandbox, "postgres")


@pytest.mark.slow
async def test_a_clean_stop_heals_every_lease(agent, sandbox):
    lease = await agent.create_lease(**lease_request(params={"service": "nats"}, ttl_s=600))
    assert not await healthy(sandbox, "nats")
    stop = await asyncio.to_thread(run_cli, ["agent", "stop"], sandbox.env)
    assert stop.returncode == 0, stop.stderr
    assert agent.info() is None
    assert not (agent.folder / "leases" / f"{lease.id}.json").exists(), "lease left on disk"
    assert await healthy(sandbox, "nats"), "a clean stop must heal what it holds"


async def test_a_lease_id_is_used_once(agent, sandbox):
    with pytest.raises(AgentError) as refused:  # not running here: refused before applying
        await agent.create_lease(
            **lease_request(id="once-1", params={"service": "relay"}, target="elsewhere")
        )
    assert refused.value.status == 400
    lease = await agent.create_lease(**lease_request(id="once-2", ttl_s=600))
    again = await agent.call("POST", "/leases", lease_request(id="once-2", ttl_s=600))
    assert again.status_code == 409, "a duplicate touches nothing"
    other = await agent.call(
        "POST", "/leases", lease_request(id="once-2", kind="proxy.down", params={"proxy": "x"})
    )
    assert other.status_code == 409
    assert await agent.heal_lease(lease.id) is True
    late = await agent.call("POST", "/leases", lease_request(id="once-2", ttl_s=600))
    assert late.status_code == 409, "an ended id must not break things again"
    assert await healthy(sandbox, "postgres")


def test_the_agent_will_not_listen_beyond_loopback_unless_told(fresh_state_dir):
    proc = run_cli(["agent", "--host", "0.0.0.0"], env_for(fresh_state_dir), timeout=30)
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "--allow-remote" in proc.stderr and "Traceback" not in proc.stderr


async def test_pause_freezes_a_service_until_healed_and_at_its_ttl(agent, sandbox):
    rec = sandbox.sandbox.record("nats")
    lease = await agent.create_lease(
        kind="sandbox.pause", target="sandbox", ttl_s=2, params={"service": "nats"}
    )
    assert Path(f"/proc/{rec.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    assert not await healthy(sandbox, "nats"), "a paused NATS answered"
    # Nobody heals it: the TTL does, and it is the same process, not a restart.
    await wait_healthy(sandbox, "nats", lease.expires_at + 3)
    assert sandbox.sandbox.record("nats").pid == rec.pid and is_running(rec)


async def test_stop_ends_the_service_and_the_heal_starts_it_again(agent, sandbox):
    old = sandbox.sandbox.record("relay")
    lease = await agent.create_lease(
        kind="sandbox.stop", target="sandbox", ttl_s=30, params={"service": "relay"}
    )
    assert lease.data["stopped"] == ["relay"] and not is_running(old)
    await agent.heal_lease(lease.id)
    assert await healthy(sandbox, "relay")
    assert sandbox.sandbox.record("relay").pid != old.pid
