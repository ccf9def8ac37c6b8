"""The reaper's agenda, in process: a lease book with real proxy toxics on a real agent proxy
(never connected to), its journal and history in a temporary folder. Leases are healed in the
order they fall due, a lease due sooner wakes a reaper asleep until later, the agenda does not
grow with leases that ended early, one dead owner ends all its leases, and history records
written from many threads at once all land whole."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import threading
from pathlib import Path

import pytest

from chaos_tui.agent import leases as leases_module
from chaos_tui.agent.history import LeaseHistory
from chaos_tui.agent.injectors import ProxyToxic
from chaos_tui.agent.leases import LeaseBook
from chaos_tui.agent.protocol import LeaseRequest
from chaos_tui.agent.proxy import ProxyManager
from tests.conftest import reaping_book

TOXIC = {"proxy": "p", "type": "latency", "attributes": {"latency": 1}}


@pytest.fixture
async def book(tmp_path: Path):
    proxies = ProxyManager()
    await proxies.create("p", "127.0.0.1:0", "127.0.0.1:9")  # port 9: never dialled
    try:
        async with reaping_book(tmp_path, {"proxy.toxic": ProxyToxic(proxies)}) as made:
            yield made
    finally:
        await proxies.stop_all()


async def lease(book: LeaseBook, ttl_s: float, **extra) -> str:
    request = LeaseRequest(kind="proxy.toxic", target="proxy", params=TOXIC, ttl_s=ttl_s, **extra)
    if "owner_pid" not in extra:
        request.orphan_ok = True
    return (await book.create(request)).id


async def gone(book: LeaseBook, ids: set[str], timeout_s: float = 20.0) -> None:
    """Wait until none of `ids` is live (the bound is far above any heal: a hang fails)."""
    async with asyncio.timeout(timeout_s):
        while ids & set(book.leases):
            await asyncio.sleep(0.01)


async def test_leases_are_healed_in_the_order_they_fall_due(book):
    ttls = [0.05 + 0.02 * i for i in range(25)]
    random.Random(7).shuffle(ttls)
    ids = {await lease(book, ttl) for ttl in ttls}
    await gone(book, ids)
    ended = [e for e in book.history.entries() if e["id"] in ids]
    assert len(ended) == len(ids) and {e["by"] for e in ended} == {"ttl"}
    assert all(e["ended_at"] >= e["expires_at"] for e in ended)  # never before its TTL
    by_expiry = [e["id"] for e in sorted(ended, key=lambda e: e["expires_at"])]
    by_end = [e["id"] for e in sorted(ended, key=lambda e: e["ended_at"])]
    assert by_end == by_expiry
    proxy = book.injectors["proxy.toxic"].proxies.get("p")
    assert proxy.toxics == {} and list(book.journal.root.iterdir()) == []


async def test_a_lease_due_sooner_wakes_a_reaper_asleep_until_later(book, monkeypatch):
    # No sweep for a minute: only the agenda's wake-up can heal the short lease in time.
    monkeypatch.setattr(leases_module, "SWEEP_S", 60.0)
    await asyncio.sleep(0.3)  # the reaper's first sweep has run; it sleeps until the next
    long = await lease(book, 600)
    await asyncio.sleep(0.1)
    short = await lease(book, 0.05)
    await gone(book, {short}, timeout_s=10.0)
    assert [e["by"] for e in book.history.entries() if e["id"] == short] == ["ttl"]
    assert long in book.leases


async def test_the_agenda_forgets_leases_that_ended_early(book):
    ids = [await lease(book, 600) for _ in range(150)]
    for lease_id in ids:
        assert await book.heal(lease_id) is not None
    await gone(book, {await lease(book, 0.01)})  # wakes the reaper, which tidies up
    assert len(book._due) <= 64


async def test_one_dead_owner_ends_every_lease_it_held(book):
    owner = subprocess.Popen(["sleep", "60"])
    try:
        ids = {await lease(book, 600, owner_pid=owner.pid) for _ in range(40)}
    finally:
        owner.kill()
        owner.wait()
    await gone(book, ids)
    ended = [e for e in book.history.entries() if e["id"] in ids]
    assert len(ended) == 40 and {e["by"] for e in ended} == {"owner-died"}


def test_history_records_from_many_threads_all_land_whole(tmp_path):
    history = LeaseHistory(tmp_path / "history.jsonl")

    def write(thread: int) -> None:
        for n in range(50):
            history.append({"id": f"t{thread}-{n}", "by": "ttl", "pad": "x" * 200})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == 400
    assert {json.loads(line)["id"] for line in lines} == {
        f"t{i}-{n}" for i in range(8) for n in range(50)
    }


async def test_a_wall_clock_stepped_back_does_not_pause_the_dead_owner_switch(book, monkeypatch):
    """NTP or a VM resume can step the wall clock back; the sweep that notices dead owners ran
    on it, and stopped for as long as the step (an hour here)."""
    owner = subprocess.Popen(["sleep", "0.5"])
    owned = await lease(book, 3600, owner_pid=owner.pid)
    real_time = leases_module.time.time
    monkeypatch.setattr(leases_module.time, "time", lambda: real_time() - 3600)
    await asyncio.to_thread(owner.wait)
    await gone(book, {owned}, timeout_s=3)  # a sweep every 0.25 s: well within 3 s


async def test_a_wall_clock_stepped_back_does_not_hold_a_fault_past_its_ttl(book, monkeypatch):
    """The same step, for the TTL: expiries compared with the wall clock would keep every live
    fault an hour past it. The reaper counts down on the monotonic clock."""
    short = await lease(book, 0.5)
    real_time = leases_module.time.time
    monkeypatch.setattr(leases_module.time, "time", lambda: real_time() - 3600)
    await gone(book, {short}, timeout_s=2)  # four times the TTL


async def test_a_wall_clock_stepped_forward_does_not_end_a_fault_early(book, monkeypatch):
    """And the other way: a step forward (a VM resumed late) leaves a live fault its TTL."""
    long = await lease(book, 2)
    real_time = leases_module.time.time
    monkeypatch.setattr(leases_module.time, "time", lambda: real_time() + 3600)
    await asyncio.sleep(0.6)  # two sweeps
    assert long in book.leases
    await gone(book, {long}, timeout_s=5)
