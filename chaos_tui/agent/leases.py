"""Leases on disk and the book that applies, heals and reaps them."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from chaos_tui.agent.injectors import Injector
from chaos_tui.core.journal import write_atomic

# The lease an injector is applying or healing, for what it leaves a mark on (e.g. the labels
# of a Docker sidecar); asyncio.to_thread carries it into the worker thread.
CURRENT_LEASE: ContextVar["Lease | None"] = ContextVar("chaos_tui_current_lease", default=None)

LeaseState = Literal["applying", "applied", "healing", "failed"]
REAP_INTERVAL_S = 0.1
HEAL_TIMEOUT_S = 90.0  # a crash-recovering database may need a while; then we try again
RETRY_S = 1.0


class LeaseRequest(BaseModel):
    """What a caller asks for. A TTL is required: nothing may stay broken open-endedly."""

    model_config = {"extra": "forbid"}

    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                           description="caller-chosen id; repeating it returns the same lease")
    kind: str = Field(..., min_length=1, max_length=64, description="fault kind, see GET /kinds")
    target: str = Field("sandbox", min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    ttl_s: float = Field(..., gt=0, description="seconds until the agent heals it by itself")
    scope: str = Field("full", min_length=1, max_length=32)
    owner: str = Field("", max_length=128, description="who asked, e.g. a console's pid")
    run_id: str = Field("", pattern=r"^[A-Za-z0-9_-]{0,64}$", description="the run that asked, if any")


class Lease(LeaseRequest):
    id: str
    created_at: float
    expires_at: float
    state: LeaseState = "applying"
    data: dict[str, Any] = Field(default_factory=dict)  # what the injector recorded
    error: str | None = None


class LeaseRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LeaseJournal:
    """One JSON file per live lease, written atomically and fsynced before the fault lands."""

    def __init__(self, root: Path) -> None:
        from chaos_tui.statedir import open_dir_nofollow

        self.root = root
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = open_dir_nofollow(self.root)  # a link here is refused: its target keeps its mode
        try:
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)

    def _path(self, lease_id: str) -> Path:
        return self.root / f"{lease_id}.json"

    def write(self, lease: Lease) -> None:
        write_atomic(self._path(lease.id), lease.model_dump_json(indent=2) + "\n")
        fd = os.open(self.root, os.O_RDONLY)  # the rename is durable only once the dir is
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, lease_id: str) -> None:
        self._path(lease_id).unlink(missing_ok=True)

    def load_all(self) -> tuple[list[Lease], list[Path]]:
        """The journalled leases, and the files that could not be read as one (kept, and
        reported: a lease nobody can parse may still be a live fault)."""
        leases, unreadable = [], []
        for path in sorted(self.root.glob("*.json")):
            try:
                lease = Lease.model_validate(json.loads(path.read_text()))
            except (OSError, ValueError):
                unreadable.append(path)
                continue
            if path.stem != lease.id:
                unreadable.append(path)  # not a file this journal wrote
                continue
            leases.append(lease)
        return leases, unreadable


class LeaseBook:
    """The live leases of one agent. All changes happen on the agent's event loop."""

    def __init__(self, journal: LeaseJournal, injectors: dict[str, Injector], max_ttl_s: float,
                 halt_file: Path) -> None:
        self.journal = journal
        self.injectors = injectors
        self.max_ttl_s = max_ttl_s
        self.halt_file = halt_file
        self.leases: dict[str, Lease] = {}
        self.recovered: list[dict] = []  # leftovers healed at start-up, for GET /health
        self._locks: dict[str, asyncio.Lock] = {}
        self._counter = 0
        self._healing: set[str] = set()  # leases the reaper is healing now
        # Ids that ended (healed or refused) and when: the same id may not land again, since
        # a caller whose DELETE came first took the 404 for "healed".
        self._ended: dict[str, float] = {}
        self.reaper_error: str | None = None  # set if the reaper died: /health is then not ok

    @property
    def halted(self) -> bool:
        return self.halt_file.exists()

    # -- start-up -----------------------------------------------------------------------------

    async def heal_leftovers(self) -> list[dict]:
        """Leases an earlier agent left behind (it died): heal each before serving anyone."""
        leases, unreadable = self.journal.load_all()
        for path in unreadable:
            self.recovered.append({"id": path.stem, "kind": "?", "params": {}, "healed": False,
                                   "error": f"unreadable lease file {path}: heal it by hand, "
                                            "then delete the file"})
        for lease in leases:
            error = await self._undo(lease)
            self.recovered.append({"id": lease.id, "kind": lease.kind, "params": lease.params,
                                   "healed": error is None, "error": error})
            if error is None:
                self._forget(lease.id)
            else:
                lease.state, lease.error = "failed", error
                lease.expires_at = time.time()  # overdue: the reaper keeps trying
                self.leases[lease.id] = lease
        return self.recovered

    # -- requests -----------------------------------------------------------------------------

    async def create(self, request: LeaseRequest) -> tuple[Lease, bool]:
        """Apply a lease; (lease, True) when new, (existing, False) when the id is known."""
        if request.id and request.id in self.leases:
            known = self.leases[request.id]
            same = (known.kind, known.target, known.params) == (
                request.kind, request.target, request.params)
            if not same or known.state != "applied":
                raise LeaseRefused(409, f"lease {request.id} exists ({known.kind}, "
                                        f"{known.state}); a new fault needs a new id")
            return known, False
        if request.id and request.id in self._ended:
            raise LeaseRefused(409, f"lease {request.id} has already ended; use a new id")
        if self.halted:
            raise LeaseRefused(409, "halted: no new lease until DELETE /halt")
        injector = self.injectors.get(request.kind)
        if injector is None:
            raise LeaseRefused(400, f"unknown fault kind {request.kind!r} "
                                    f"(known: {', '.join(sorted(self.injectors))})")
        if request.ttl_s > self.max_ttl_s:
            raise LeaseRefused(400, f"ttl_s {request.ttl_s:g} is above the agent's cap of "
                                    f"{self.max_ttl_s:g}s")
        # In a thread: a check may ask the Docker Engine, and the reaper's heals must not wait.
        problem = await asyncio.to_thread(injector.check, request.target, request.params)
        if problem:
            raise LeaseRefused(400, problem)
        now = time.time()
        self._counter += 1
        lease = Lease(**request.model_dump(exclude={"id"}),
                      id=request.id or f"l{int(now * 1000):x}{self._counter:x}",
                      created_at=now, expires_at=now + request.ttl_s)
        async with self._lock(lease.id):
            # On disk before the fault exists (and before we count it: a failed write
            # means nothing was applied and nothing is tracked). Written on the loop: the
            # fsyncs take about a millisecond, and a thread hop would add more than that to
            # the time before the fault lands.
            self.journal.write(lease)
            self.leases[lease.id] = lease
            try:
                CURRENT_LEASE.set(lease)  # this task's own context: seen by the injector
                lease.data = await injector.apply(lease.params)
            except Exception as exc:
                undo_error = await self._undo(lease)
                if undo_error is None:
                    self._forget(lease.id)
                else:  # half applied and not undone: the reaper keeps trying
                    lease.state, lease.error = "failed", f"apply failed: {exc}; {undo_error}"
                    lease.expires_at = time.time()
                    await asyncio.to_thread(self.journal.write, lease)
                raise LeaseRefused(502, f"{request.kind} could not be applied: {exc}") from exc
            lease.state = "applied"
            await asyncio.to_thread(self.journal.write, lease)
        return lease, True

    async def heal(self, lease_id: str) -> Lease | None:
        """Heal one lease; None if no such lease (already healed). Raises if the heal fails."""
        lease = self.leases.get(lease_id)
        if lease is None:
            return None
        async with self._lock(lease_id):
            if lease_id not in self.leases:
                return lease  # healed while we waited for the lock
            lease.state = "healing"
            error = await self._undo(lease)
            if error is not None:
                lease.state, lease.error = "failed", error
                await asyncio.to_thread(self.journal.write, lease)
                raise RuntimeError(error)
            self._forget(lease_id)
        return lease

    async def heal_all(self) -> list[dict]:
        results = []
        for lease_id in list(self.leases):
            try:
                await self.heal(lease_id)
                results.append({"id": lease_id, "healed": True, "error": None})
            except RuntimeError as exc:
                results.append({"id": lease_id, "healed": False, "error": str(exc)})
        return results

    async def halt(self) -> list[dict]:
        self.halt_file.touch()  # latched first: nothing new lands while we heal
        return await self.heal_all()

    def release_halt(self) -> None:
        self.halt_file.unlink(missing_ok=True)

    # -- the reaper ---------------------------------------------------------------------------

    async def reap_forever(self) -> None:
        """Heal each lease at its TTL, each in a task of its own, so one slow heal holds up
        no other; a failed or timed-out heal is tried again every second."""
        try:
            while True:
                now = time.time()
                for lease in list(self.leases.values()):
                    if lease.expires_at <= now and lease.id not in self._healing:
                        self._healing.add(lease.id)
                        asyncio.create_task(self._reap(lease.id))
                await asyncio.sleep(REAP_INTERVAL_S)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # never silently: /health turns not ok
            self.reaper_error = f"{type(exc).__name__}: {exc}"
            raise

    async def _reap(self, lease_id: str) -> None:
        try:
            await asyncio.wait_for(self.heal(lease_id), HEAL_TIMEOUT_S)
        except Exception:
            lease = self.leases.get(lease_id)
            if lease is not None:
                lease.expires_at = time.time() + RETRY_S
        finally:
            self._healing.discard(lease_id)

    # -- internals ----------------------------------------------------------------------------

    async def _undo(self, lease: Lease) -> str | None:
        injector = self.injectors.get(lease.kind)
        if injector is None:
            return f"no injector for kind {lease.kind!r}"
        try:
            CURRENT_LEASE.set(lease)
            await injector.heal(lease.params, lease.data)
            return None
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    def _lock(self, lease_id: str) -> asyncio.Lock:
        return self._locks.setdefault(lease_id, asyncio.Lock())

    def _forget(self, lease_id: str) -> None:
        self.leases.pop(lease_id, None)
        self.journal.remove(lease_id)
        now = time.time()
        self._ended[lease_id] = now
        for old in [i for i, t in self._ended.items() if t < now - self.max_ttl_s]:
            del self._ended[old]
