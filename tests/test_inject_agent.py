"""Worker injectors as agent leases, through the real agent: bad scopes are 4xx (never 5xx),
the lease shows in `chaos-tui leases` and GET /injectors, and every way a lease ends (heal,
halt, owner death, TTL, the agent SIGKILLed) turns the worker's injectors off in time."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx

from tests.conftest import env_for, run_cli
from tests.inject_support import (
    grant,
    inject_params,
    kill_agent_and_watch,
    own_agent,
    until,
    worker_for,
)

__all__ = ["own_agent"]  # a fixture

FAIL_A = {"kind": "fail", "scope": {"actor": "a"}}


BAD_PARAMS = {
    "percent 0": inject_params({"kind": "fail", "scope": {"percent": 0}}),
    "percent 150": inject_params({"kind": "fail", "scope": {"percent": 150}}),
    "unknown field": inject_params({"kind": "fail", "colour": "red"}),
    "unknown scope field": inject_params({"kind": "fail", "scope": {"pod": "x"}}),
    "bad kind": inject_params({"kind": "explode"}),
    "bad actor name": inject_params({"kind": "fail", "scope": {"actor": "a b/../c"}}),
    "bad worker name": inject_params({"kind": "fail", "scope": {"worker": ""}}),
    "rate 0": inject_params({"kind": "fail", "rate": 0}),
    "at on a fail": inject_params({"kind": "fail", "at": "after"}),
    "crash at nowhere": inject_params({"kind": "crash", "at": "later"}),
    "delay without delay": inject_params({"kind": "delay"}),
    "empty list": {"injectors": []},
    "17 injectors": inject_params(*[FAIL_A] * 17),
    "no injectors": {},
    "extra param": {"injectors": [FAIL_A], "also": 1},
    "not a list": {"injectors": "fail"},
    "spec not an object": {"injectors": [3]},
}


async def test_bad_injectors_are_4xx_with_one_line_and_nothing_is_granted(own_agent):
    info = own_agent.info()
    headers = {"Authorization": f"Bearer {own_agent.token()}"}
    async with httpx.AsyncClient(base_url=info["url"], headers=headers, timeout=10) as http:
        for what, params in BAD_PARAMS.items():
            answer = await http.post(
                "/leases",
                json={"kind": "worker.inject", "params": params, "ttl_s": 10, "orphan_ok": True},
            )
            assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text)
            detail = answer.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail, (what, detail)
            assert detail.startswith("worker.inject params"), (what, detail)
        assert (await http.get("/injectors")).json()["injectors"] == []
        assert (await http.get("/leases")).json() == []
        # Behind the token like every route but /health.
        assert (await http.get("/injectors", headers={"Authorization": "Bearer x"})).status_code
        assert (await httpx.AsyncClient(base_url=info["url"]).get("/injectors")).status_code == 401


async def test_a_lease_is_listed_and_heal_turns_the_worker_off(own_agent):
    lease = await grant(own_agent, FAIL_A, {"kind": "delay", "delay_ms": 5}, ttl_s=60)
    live = await own_agent.injectors()
    assert [i.spec.kind for i in live.injectors] == ["fail", "delay"]
    assert {i.lease_id for i in live.injectors} == {lease.id}
    assert 55 < live.injectors[0].ttl_left_s <= 60 and live.poll_s == 0.25

    env = env_for(own_agent.settings.state_dir)
    listed = await asyncio.to_thread(run_cli, ["leases"], env, 60)
    assert listed.returncode == 0, listed.stderr
    assert lease.id in listed.stdout and "worker.inject" in listed.stdout

    with worker_for(own_agent) as worker:
        await until(lambda: worker.decide("q", "a", "m1") is not None, 3, "the worker sees it")
        assert worker.decide("q", "b", "m1") is not None  # the delay has no actor scope
        assert worker.decide("q", "b", "m1").then is None  # ...but the failure has
        healed = await asyncio.to_thread(run_cli, ["heal"], env, 60)
        assert healed.returncode == 0 and f"lease {lease.id}: healed" in healed.stdout
        healed_at = time.time()
        off_at = await until(lambda: worker.decide("q", "a", "m1") is None, 3, "off after heal")
        # A poll every 0.25 s, plus the request: off well within poll_s + stale_s.
        assert off_at - healed_at < 0.25 + 1.0, off_at - healed_at
    assert (await own_agent.ended(lease.id)).by == "heal-all"


async def test_halt_lists_nothing_and_owner_death_ends_the_injectors(own_agent):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lease = await grant(own_agent, FAIL_A, owner_pid=owner.pid)
        assert len((await own_agent.injectors()).injectors) == 1
        owner.kill()
        owner.wait(5)
        await until(lambda: own_agent.journal_ids() == [], 5, "healed at its owner's death")
        assert (await own_agent.ended(lease.id)).by == "owner-died"
    finally:
        if owner.poll() is None:
            owner.kill()
    await grant(own_agent, FAIL_A)
    await own_agent.halt()
    try:
        assert (await own_agent.injectors()).injectors == []
    finally:
        await own_agent.release_halt()


async def test_the_ttl_holds_with_the_agent_sigkilled(own_agent):
    """The agent (and its guardian, so no replacement answers either) is SIGKILLed right after
    granting a 3 s injector. A worker with the default stale_s is off within stale_s of the
    kill; one told to trust stale answers for 30 s still stops at the TTL it was told,
    within 1 s, on its own clock."""
    trusting = worker_for(own_agent, stale_s=30)
    default = worker_for(own_agent)
    try:
        lease = await grant(own_agent, FAIL_A, ttl_s=3, orphan_ok=True)
        for w in (trusting, default):
            await until(lambda w=w: w.decide("q", "a", "m") is not None, 3, "the worker sees it")
        killed_at, (last_trusting, last_default) = await kill_agent_and_watch(
            own_agent, (trusting, default), lease.expires_at + 2
        )
        last = {id(trusting): last_trusting, id(default): last_default}
        assert killed_at < last[id(default)] <= killed_at + default.stale_s + 0.1
        # On past the kill (it trusted its last answer), off by the TTL.
        assert lease.expires_at - 0.5 < last[id(trusting)] <= lease.expires_at + 1.0
        print(
            f"default off {last[id(default)] - killed_at:.2f} s after the kill; trusting off "
            f"{last[id(trusting)] - lease.expires_at:+.2f} s from the TTL"
        )
    finally:
        trusting.stop()
        default.stop()
    # A new agent heals the journalled lease before it serves.
    await until(lambda: own_agent.info() is None, 5, "the agent gone", every=0.1)
    await own_agent.ensure()
    assert [r.id for r in (await own_agent.status()).recovered] == [lease.id]


async def test_a_wrong_token_or_no_agent_means_off():
    from chaos_tui.inject.core import InjectorClient

    off = InjectorClient.from_env({})
    assert off.decide("q", "a", "m") is None and off._thread is None
    nobody = InjectorClient.from_env(
        {"CHAOS_AGENT_URL": "http://127.0.0.1:9", "CHAOS_AGENT_TOKEN": "x" * 43}
    )
    try:
        await asyncio.sleep(0.6)
        assert nobody.decide("q", "a", "m") is None and nobody.live_count() == 0
    finally:
        nobody.stop()


async def test_a_worker_scoped_injector_hits_only_that_worker(own_agent):
    await grant(own_agent, {"kind": "fail", "scope": {"worker": "w-1"}})
    one, two = worker_for(own_agent, worker_id="w-1"), worker_for(own_agent, worker_id="w-2")
    try:
        await until(lambda: one.decide("q", "a", "m") is not None, 3, "w-1 hit")
        assert two.live_count() == 1 and two.decide("q", "a", "m") is None
    finally:
        one.stop()
        two.stop()
    await own_agent.heal_all()


def test_the_worker_library_loads_nothing_heavy():
    """What a user's worker pays for importing it: none of the agent's server, the console,
    the sandbox or Docker (the import contract says so of the code; this checks run time)."""
    heavy = ("fastapi", "uvicorn", "textual", "httpx", "docker", "chaos_tui.sandbox")
    code = (
        "import sys, chaos_tui.inject.dramatiq, chaos_tui.inject.celery; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "[]", loaded
