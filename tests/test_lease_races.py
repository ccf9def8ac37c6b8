"""A lease's create against a DELETE of the same id, in process: a lease book with a worker
injector (whose check runs on a thread and whose journal write is on a disk thread, so a
create awaits twice before its lease is live), its journal in a temporary folder.

The promise: once a DELETE has answered, no lease of that id is live, now or later; and a
DELETE that found the lease ended by someone else says so (404), so the owner asks who."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chaos_tui.agent.leases import LeaseRefused
from chaos_tui.agent.protocol import LeaseRequest
from chaos_tui.agent.worker_injectors import WorkerInject
from tests.conftest import reaping_book

PARAMS = {"injectors": [{"kind": "fail", "rate": 0.5}]}


@pytest.fixture
async def book(tmp_path: Path):
    async with reaping_book(tmp_path, {"worker.inject": WorkerInject()}) as made:
        yield made


def request(lease_id: str, ttl_s: float = 600) -> LeaseRequest:
    return LeaseRequest(
        id=lease_id, kind="worker.inject", params=PARAMS, ttl_s=ttl_s, orphan_ok=True
    )


@pytest.mark.parametrize("steps", [0, 1, 2, 5, 20])
async def test_a_delete_while_the_create_is_applying_leaves_nothing_live(book, steps):
    """The owner's DELETE comes while its POST is still checking or journalling (a runner
    whose inject hit its budget heals exactly so): the answer is "no live lease", and then
    the create must not land. `steps` loop turns into the create, to hit each await."""
    create = asyncio.create_task(book.create(request("r1")))
    while "r1" not in book._pending:
        await asyncio.sleep(0)
    for _ in range(steps):
        await asyncio.sleep(0)
    healed = await book.heal("r1", "owner")
    try:
        await create
    except LeaseRefused as exc:
        assert exc.status == 409 and "ended (DELETE) before it landed" in str(exc)
    if healed is None:  # "no live lease": none may land after that answer
        assert "r1" not in book.leases
        assert not (book.journal.root / "r1.json").exists()
    else:  # it had landed, and the DELETE healed it
        assert "r1" not in book.leases


async def test_a_create_that_comes_after_its_own_delete_is_refused(book):
    """The POST was sent, the caller gave up on it and sent DELETE, and the DELETE overtook
    the POST: the POST must not land afterwards."""
    assert await book.heal("late", "owner") is None
    with pytest.raises(LeaseRefused, match="already ended"):
        await book.create(request("late"))
    assert "late" not in book.leases


async def test_a_delete_that_waited_behind_another_heal_answers_not_found(book):
    """A DELETE that queued behind the TTL's heal of the same lease did not heal it: it says
    so, and the owner then reads from the history who did (and when)."""
    await book.create(request("t1"))
    by_ttl = asyncio.create_task(book.heal("t1", "ttl"))
    await asyncio.sleep(0)  # the TTL's heal holds the lease's lock, writing its history
    assert "t1" in book.leases
    assert await book.heal("t1", "owner") is None
    assert (await by_ttl) is not None
    entries = [e for e in book.history.entries() if e["id"] == "t1"]
    assert [e["by"] for e in entries] == ["ttl"]
