"""Leases on disk and the book that applies, heals and reaps them."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from chaos_tui.agent.history import LeaseHistory
from chaos_tui.agent.injectors import Injector, conflicts_of

# The lease models live in the protocol (the client reads them too); named here as before.
from chaos_tui.agent.protocol import (
    HISTORY_FILE,
    Lease,
    LeaseRequest,
    read_lease_files,
)
from chaos_tui.core.errors import AgentError
from chaos_tui.core.journal import write_atomic
from chaos_tui.core.procinfo import alive, start_ticks

REAP_INTERVAL_S = 0.1
HEAL_TIMEOUT_S = 90.0  # a crash-recovering database may need a while; then we try again
RETRY_S = 1.0
OWNER_CHECK_S = 0.25  # how often the owners of leases are looked up (the switch's resolution)


class LeaseRefused(AgentError):
    """A request the book turns down; the API answers it with `status`."""

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
        return read_lease_files(self.root)


class LeaseBook:
    """The live leases of one agent. All changes happen on the agent's event loop.

    A lease id, and each object a fault would fight over (a service, a container), is claimed
    before the first await of a request, so two concurrent requests can never both apply.
    Every way a lease ends is written to the history; every heal path tries every lease
    whatever another one raised."""

    def __init__(
        self,
        journal: LeaseJournal,
        injectors: dict[str, Injector],
        max_ttl_s: float,
        halt_file: Path,
        history: LeaseHistory | None = None,
        leftover_by: str = "leftover",
        log=None,
    ) -> None:
        self.journal = journal
        self.injectors = injectors
        self.max_ttl_s = max_ttl_s
        self.halt_file = halt_file
        self.history = history or LeaseHistory(journal.root.parent / HISTORY_FILE)
        self.leftover_by = leftover_by  # "guardian" when the guardian started this agent
        self._log = log or (lambda line: None)
        self.leases: dict[str, Lease] = {}
        self.recovered: list[dict] = []  # leftovers healed at start-up, for GET /status
        self._locks: dict[str, asyncio.Lock] = {}
        self._counter = 0
        self._healing: set[str] = set()  # leases the reaper is healing now
        self._reaps: set[asyncio.Task[None]] = set()  # those heals, held until they end
        self._pending: set[str] = set()  # ids claimed by a request still being applied
        self._claims: dict[str, str] = {}  # object a fault would fight over -> its lease id
        self._ending: dict[str, str] = {}  # lease id -> why the reaper is ending it early
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
            self.recovered.append(
                {
                    "id": path.stem,
                    "kind": "?",
                    "params": {},
                    "healed": False,
                    "error": f"unreadable lease file {path}: heal it by hand, then delete the file",
                }
            )
        for lease in leases:
            started = time.time()
            error = await self._undo(lease)
            item = {
                "id": lease.id,
                "kind": lease.kind,
                "params": lease.params,
                "run_id": lease.run_id,
                "healed": error is None,
                "error": error,
            }
            if error is None:
                item["warning"] = self._forget(lease, self.leftover_by, started)
            else:
                lease.state, lease.error = "failed", error
                lease.expires_at = time.time()  # overdue: the reaper keeps trying
                self.leases[lease.id] = lease
                self._claim(lease.id, self._conflicts(lease.kind, lease.params))
            self.recovered.append(item)
        return self.recovered

    # -- requests -----------------------------------------------------------------------------

    async def create(self, request: LeaseRequest) -> Lease:
        """Apply a lease. A known id is refused (409), whatever the body: a duplicate
        touches nothing. Everything up to the claim runs without an await: that is what
        makes it atomic."""
        if request.id and request.id in self.leases:
            known = self.leases[request.id]
            raise LeaseRefused(
                409,
                f"lease {request.id} exists ({known.kind}, {known.state}); "
                "a new fault needs a new id",
            )
        if request.id and request.id in self._pending:
            raise LeaseRefused(409, f"lease {request.id} is being applied by another request")
        if request.id and request.id in self._ended:
            raise LeaseRefused(409, f"lease {request.id} has already ended; use a new id")
        if self.halted:
            raise LeaseRefused(409, "halted: no new lease until DELETE /halt")
        injector = self.injectors.get(request.kind)
        if injector is None:
            raise LeaseRefused(
                400,
                f"unknown fault kind {request.kind!r} (known: {', '.join(sorted(self.injectors))})",
            )
        if request.ttl_s > self.max_ttl_s:
            raise LeaseRefused(
                400, f"ttl_s {request.ttl_s:g} is above the agent's cap of {self.max_ttl_s:g}s"
            )
        owner_ticks = self._owner_ticks(request)
        conflicts = self._conflicts(request.kind, request.params)
        for key in conflicts:
            if key in self._claims:
                raise LeaseRefused(
                    409,
                    f"{key} already has a live fault (lease {self._claims[key]}); heal it first",
                )
        now = time.time()
        self._counter += 1
        lease_id = request.id or f"l{int(now * 1000):x}{self._counter:x}"
        self._pending.add(lease_id)
        self._claim(lease_id, conflicts)
        applied = False
        try:
            lease = await self._apply(injector, request, lease_id, owner_ticks)
            applied = True
            return lease
        finally:
            self._pending.discard(lease_id)
            if not applied and lease_id not in self.leases:
                self._release(lease_id)

    async def _apply(
        self, injector: Injector, request: LeaseRequest, lease_id: str, owner_ticks: int | None
    ) -> Lease:
        # A fault that lives in the agent's own memory (a proxy toxic) dies with the agent:
        # there is nothing for a next agent to heal, so it is journalled after it lands, not
        # before, and its check (of that memory only) runs here. Both would otherwise add
        # a thread hop and a fsync (~1 ms, more on a busy disk) before the fault acts.
        in_process = getattr(injector, "in_process", False)
        if in_process:
            problem = injector.check(request.target, request.params)
        else:
            # In a thread: a check may ask the Docker Engine; the reaper's heals must not wait.
            problem = await asyncio.to_thread(injector.check, request.target, request.params)
        if problem:
            raise LeaseRefused(400, problem)
        now = time.time()
        lease = Lease(
            **request.model_dump(exclude={"id"}),
            id=lease_id,
            created_at=now,
            expires_at=now + request.ttl_s,
            owner_start_ticks=owner_ticks,
        )
        async with self._lock(lease.id):
            # Asked again after the check's await: a halt that came meanwhile healed only
            # the leases it could see, and promised that nothing new lands after it.
            if self.halted:
                raise LeaseRefused(409, "halted: no new lease until DELETE /halt")
            # On disk before the fault exists, unless in_process (and before we count it: a
            # failed write means nothing was applied and nothing is tracked). Written on the
            # loop: the fsyncs take about a millisecond, and a thread hop would add more than
            # that to the time before the fault lands.
            try:
                if not in_process:
                    self.journal.write(lease)
            except OSError as exc:
                raise LeaseRefused(
                    507,
                    f"cannot journal the lease in {self.journal.root} "
                    f"({exc.strerror or exc}): nothing was applied",
                ) from None
            self.leases[lease.id] = lease
            try:
                lease.data = await injector.apply(lease)
            except Exception as exc:
                undo_error = await self._undo(lease)
                if undo_error is None:
                    self._forget(lease, "apply-failed", now, error=f"apply failed: {exc}")
                else:  # half applied and not undone: the reaper keeps trying
                    lease.state, lease.error = "failed", f"apply failed: {exc}; {undo_error}"
                    lease.expires_at = time.time()
                    await self._rewrite(lease)
                raise LeaseRefused(502, f"{request.kind} could not be applied: {exc}") from exc
            lease.state = "applied"
            await self._rewrite(lease)
        return lease

    async def heal(self, lease_id: str, by: str = "owner") -> Lease | None:
        """Heal one lease; None if no such lease (already healed). Raises RuntimeError if the
        heal fails (the lease stays, and the reaper keeps trying)."""
        lease = self.leases.get(lease_id)
        if lease is None:
            return None
        async with self._lock(lease_id):
            if lease_id not in self.leases:
                return lease  # healed while we waited for the lock
            started = time.time()
            lease.state = "healing"
            error = await self._undo(lease)
            if error is not None:
                lease.state, lease.error = "failed", error
                await self._rewrite(lease)
                raise RuntimeError(error)
            warning = self._forget(lease, self._ending.pop(lease_id, by), started)
            if warning:
                lease.error = warning  # healed, but its journal file could not be removed
        return lease

    async def heal_all(self, by: str = "heal-all") -> list[dict]:
        """Try every lease, whatever one of them raises; one result each."""
        results = []
        for lease_id in list(self.leases):
            try:
                lease = await self.heal(lease_id, by)
                results.append(
                    {
                        "id": lease_id,
                        "healed": True,
                        "error": None,
                        "warning": lease.error if lease is not None else None,
                    }
                )
            except Exception as exc:  # a heal failure of one never stops the others
                results.append(
                    {"id": lease_id, "healed": False, "error": str(exc) or type(exc).__name__}
                )
        return results

    async def halt(self) -> list[dict]:
        try:
            self.halt_file.touch()  # latched first: nothing new lands while we heal
        except OSError as exc:
            self._log(f"halt: could not write the latch {self.halt_file}: {exc}")
        results = await self.heal_all("halt")
        if not self.halted:  # the latch is the promise: say it could not be kept
            results.append(
                {
                    "id": "-",
                    "healed": False,
                    "error": f"the halt latch {self.halt_file} could not be written",
                }
            )
        return results

    def release_halt(self) -> None:
        self.halt_file.unlink(missing_ok=True)

    # -- the reaper ---------------------------------------------------------------------------

    async def reap_forever(self) -> None:
        """Heal each lease at its TTL, or at once when its owner died, each in a task of its
        own, so one slow heal holds up no other; a failed or timed-out heal is tried again
        every second."""
        next_owner_check = 0.0
        try:
            while True:
                now = time.time()
                if now >= next_owner_check:
                    self._end_orphans(now)
                    next_owner_check = now + OWNER_CHECK_S
                for lease in list(self.leases.values()):
                    if lease.expires_at <= now and lease.id not in self._healing:
                        self._healing.add(lease.id)
                        reap = asyncio.create_task(self._reap(lease.id))
                        self._reaps.add(reap)  # held: the loop keeps only a weak reference
                        reap.add_done_callback(self._reaps.discard)
                await asyncio.sleep(REAP_INTERVAL_S)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # never silently: /health turns not ok
            self.reaper_error = f"{type(exc).__name__}: {exc}"
            raise

    def _end_orphans(self, now: float) -> None:
        """The dead man's switch: a lease whose owner process is gone is due now."""
        for lease in list(self.leases.values()):
            if (
                lease.owner_pid is not None
                and lease.state == "applied"
                and lease.id not in self._ending
                and not alive(lease.owner_pid, lease.owner_start_ticks)
            ):
                self._ending[lease.id] = "owner-died"
                lease.data["owner_died_seen_at"] = now
                lease.expires_at = min(lease.expires_at, now)
                self._log(f"lease {lease.id}: its owner pid {lease.owner_pid} is gone; healing")

    async def _reap(self, lease_id: str) -> None:
        try:
            await asyncio.wait_for(self.heal(lease_id, "ttl"), HEAL_TIMEOUT_S)
        except Exception:
            lease = self.leases.get(lease_id)
            if lease is not None:
                lease.expires_at = time.time() + RETRY_S
        finally:
            self._healing.discard(lease_id)

    # -- internals ----------------------------------------------------------------------------

    def _owner_ticks(self, request: LeaseRequest) -> int | None:
        if request.owner_pid is None:
            if not request.orphan_ok:
                raise LeaseRefused(
                    400,
                    "name the process that holds the fault (owner_pid: it is "
                    "healed as soon as that process dies) or say orphan_ok: "
                    "true to hold it until its TTL",
                )
            return None
        if request.owner_pid in (1, os.getpid()):  # they outlive the agent: no switch at all
            raise LeaseRefused(
                400,
                f"owner_pid {request.owner_pid} can never die while this "
                "agent lives; name the process that holds the fault, or "
                "say orphan_ok: true",
            )
        ticks = start_ticks(request.owner_pid)
        if ticks is None:
            raise LeaseRefused(400, f"owner_pid {request.owner_pid} is not running")
        return ticks

    def _conflicts(self, kind: str, params: dict[str, Any]) -> list[str]:
        injector = self.injectors.get(kind)
        return conflicts_of(injector, params) if injector is not None else []

    def _claim(self, lease_id: str, keys: list[str]) -> None:
        for key in keys:
            self._claims[key] = lease_id

    def _release(self, lease_id: str) -> None:
        for key in [k for k, owner in self._claims.items() if owner == lease_id]:
            del self._claims[key]

    async def _rewrite(self, lease: Lease) -> None:
        """Update a journalled lease; the fault is tracked in memory whatever the disk says."""
        try:
            await asyncio.to_thread(self.journal.write, lease)
        except OSError as exc:
            self._log(f"lease {lease.id}: could not update its journal file: {exc}")

    async def _undo(self, lease: Lease) -> str | None:
        injector = self.injectors.get(lease.kind)
        if injector is None:
            return f"no injector for kind {lease.kind!r}"
        try:
            await injector.heal(lease)
            return None
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    def _lock(self, lease_id: str) -> asyncio.Lock:
        return self._locks.setdefault(lease_id, asyncio.Lock())

    def _forget(
        self, lease: Lease, by: str, heal_started_at: float, error: str | None = None
    ) -> str | None:
        """The lease has ended: out of memory, off the journal, into the history. Never
        raises: the fault is already undone. Returns a warning when the disk said no."""
        self.leases.pop(lease.id, None)
        self._locks.pop(lease.id, None)
        self._ending.pop(lease.id, None)
        self._release(lease.id)
        now = time.time()
        self._ended[lease.id] = now
        for old in [i for i, t in self._ended.items() if t < now - self.max_ttl_s]:
            del self._ended[old]
        problems = []
        try:
            self.journal.remove(lease.id)
        except OSError as exc:
            problems.append(
                f"its journal file could not be removed ({exc}); the next agent "
                "will heal it again, harmlessly"
            )
        try:
            self.history.append(
                {
                    "id": lease.id,
                    "kind": lease.kind,
                    "target": lease.target,
                    "params": lease.params,
                    "run_id": lease.run_id,
                    "owner": lease.owner,
                    "owner_pid": lease.owner_pid,
                    "created_at": lease.created_at,
                    "expires_at": lease.expires_at,
                    "owner_died_seen_at": lease.data.get("owner_died_seen_at"),
                    "heal_started_at": heal_started_at,
                    "ended_at": now,
                    "by": by,
                    "error": error,
                }
            )
        except OSError as exc:
            problems.append(f"its history record could not be written ({exc})")
        warning = "; ".join(problems) or None
        if warning:
            self._log(f"lease {lease.id} healed, but {warning}")
        return warning
