"""Leases on disk and the book that applies, heals and reaps them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import math
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

HEAL_TIMEOUT_S = 90.0  # a crash-recovering database may need a while; then we try again
RETRY_S = 1.0
# How often the reaper sweeps every lease: it looks up their owners (the switch's
# resolution), and heals whatever is due that its agenda somehow missed (a backstop: the
# agenda wakes it at each expiry on its own).
SWEEP_S = 0.25
# Threads for the journal's and the history's disk work. Their own, not the loop's default
# pool: an injector's check there may wait seconds on the Docker Engine, and a heal's
# record must not queue behind it.
DISK_THREADS = 4


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
        # The reaper's agenda: (monotonic deadline, lease id), a heap, so it sleeps until the next
        # expiry instead of scanning every lease on a tick. An entry whose lease is gone or
        # whose expiry moved later is skipped when it comes up (the move pushed a new one).
        self._due: list[tuple[float, str]] = []
        # Each live lease's expiry on the monotonic clock, as of its last scheduling: a wall
        # clock stepped back an hour must not hold a fault an hour past its TTL. expires_at
        # stays a wall time (the journal outlives this process, and callers read it).
        self._deadlines: dict[str, float] = {}
        self._wake = asyncio.Event()  # set when a lease falls due before the reaper's wake-up
        self._next_wake = math.inf
        self._pending: set[str] = set()  # ids claimed by a request still being applied
        self._claims: dict[str, str] = {}  # object a fault would fight over -> its lease id
        self._ending: dict[str, str] = {}  # lease id -> why the reaper is ending it early
        # Ids that ended (healed or refused) and when: the same id may not land again, since
        # a caller whose DELETE came first took the 404 for "healed".
        self._ended: dict[str, float] = {}
        self.reaper_error: str | None = None  # set if the reaper died: /health is then not ok
        self._disk = concurrent.futures.ThreadPoolExecutor(
            DISK_THREADS, thread_name_prefix="lease-disk"
        )

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
                item["warning"] = await self._forget(lease, self.leftover_by, started)
            else:
                lease.state, lease.error = "failed", error
                lease.expires_at = time.time()  # overdue: the reaper keeps trying
                self.leases[lease.id] = lease
                self._schedule(lease)
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
            # the leases it could see, and promised that nothing new lands after it; a DELETE
            # of this id answered that no such lease is live.
            refused = self._refusal(lease.id)
            if refused is not None:
                raise refused
            # On disk before the fault exists, unless in_process (and before we count it: a
            # failed write means nothing was applied and nothing is tracked). In a thread:
            # its two fsyncs take 1 to 10 ms as the disk is busy, and on the loop they would
            # hold up every other request and heal (at 1,000 leases, the API's p99 and the
            # heals' lateness went past 100 ms). The lock keeps this lease's own steps in
            # order; the apply waits for the write, as before.
            try:
                if not in_process:
                    await self._on_disk(self.journal.write, lease)
            except OSError as exc:
                raise LeaseRefused(
                    507,
                    f"cannot journal the lease in {self.journal.root} "
                    f"({exc.strerror or exc}): nothing was applied",
                ) from None
            # And again after the write's await, for the same reasons. From here to the count
            # below nothing awaits, so a later halt or DELETE sees the lease and heals it.
            refused = self._refusal(lease.id)
            if refused is not None:
                with contextlib.suppress(OSError):  # left, it is a no-op leftover to heal
                    await self._on_disk(self.journal.remove, lease.id)
                raise refused
            self.leases[lease.id] = lease
            self._schedule(lease)
            try:
                lease.data = await injector.apply(lease)
            except Exception as exc:
                undo_error = await self._undo(lease)
                if undo_error is None:
                    await self._forget(lease, "apply-failed", now, error=f"apply failed: {exc}")
                else:  # half applied and not undone: the reaper keeps trying
                    lease.state, lease.error = "failed", f"apply failed: {exc}; {undo_error}"
                    lease.expires_at = time.time()
                    self._schedule(lease)
                    await self._rewrite(lease)
                raise LeaseRefused(502, f"{request.kind} could not be applied: {exc}") from exc
            lease.state = "applied"
            await self._rewrite(lease)
        return lease

    async def heal(self, lease_id: str, by: str = "owner") -> Lease | None:
        """Heal one lease; None if no such lease (already healed, by this call's caller or
        another). Raises RuntimeError if the heal fails (the lease stays, and the reaper keeps
        trying)."""
        lease = self.leases.get(lease_id)
        if lease is None:
            # Not live, perhaps not landed yet (its create still checking or journalling):
            # none of this id may land after this answer (see `_refusal`).
            self._ended.setdefault(lease_id, time.time())
            return None
        async with self._lock(lease_id):
            if lease_id not in self.leases:
                return None  # another heal ended it while we waited: `history` says whose
            started = time.time()
            lease.state = "healing"
            error = await self._undo(lease)
            if error is not None:
                lease.state, lease.error = "failed", error
                await self._rewrite(lease)
                raise RuntimeError(error)
            warning = await self._forget(lease, self._ending.pop(lease_id, by), started)
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

    def _refusal(self, lease_id: str) -> LeaseRefused | None:
        """Why a lease being created may no longer land, if it may not."""
        if self.halted:
            return LeaseRefused(409, "halted: no new lease until DELETE /halt")
        if lease_id in self._ended:
            return LeaseRefused(409, f"lease {lease_id} was ended (DELETE) before it landed")
        return None

    def release_halt(self) -> None:
        self.halt_file.unlink(missing_ok=True)

    # -- the reaper ---------------------------------------------------------------------------

    async def reap_forever(self) -> None:
        """Heal each lease at its TTL, or at once when its owner died, each in a task of its
        own, so one slow heal holds up no other; a failed or timed-out heal is tried again
        every second. Sleeps until the next expiry on the agenda or the next sweep,
        whichever comes first; a lease falling due earlier wakes it."""
        # Everything here runs on the monotonic clock (see `_deadlines`): the sweep (owner
        # checks, the backstop for anything overdue) and the agenda alike.
        next_sweep = 0.0
        try:
            while True:
                now = time.monotonic()
                if now >= next_sweep:
                    self._end_orphans(time.time())
                    for lease_id in list(self.leases):
                        if self._deadlines.get(lease_id, now) <= now:
                            self._start_reap(lease_id)
                    next_sweep = now + SWEEP_S
                while self._due and self._due[0][0] <= now:
                    _, lease_id = heapq.heappop(self._due)
                    if lease_id in self.leases and self._deadlines.get(lease_id, now) <= now:
                        self._start_reap(lease_id)
                if len(self._due) > 2 * len(self.leases) + 64:
                    self._compact_agenda()
                now = time.monotonic()
                sleep = max(0.0, next_sweep - now)
                if self._due:
                    sleep = min(sleep, max(0.0, self._due[0][0] - now))
                self._next_wake = now + sleep
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), sleep)
                except TimeoutError:
                    pass
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # never silently: /health turns not ok
            self.reaper_error = f"{type(exc).__name__}: {exc}"
            raise

    def _schedule(self, lease: Lease) -> None:
        """Put a lease on the reaper's agenda at its expires_at (again, when that moved),
        which is read once, now, as a time from now."""
        deadline = time.monotonic() + (lease.expires_at - time.time())
        self._deadlines[lease.id] = deadline
        heapq.heappush(self._due, (deadline, lease.id))
        if deadline < self._next_wake:
            self._wake.set()

    def _compact_agenda(self) -> None:
        """Drop the entries of leases that ended early (an owner's DELETE long before the
        TTL), so the agenda stays the size of the live leases."""
        self._due = [(self._deadlines[i], i) for i in self.leases if i in self._deadlines]
        heapq.heapify(self._due)

    def _start_reap(self, lease_id: str) -> None:
        if lease_id in self._healing:
            return
        self._healing.add(lease_id)
        reap = asyncio.create_task(self._reap(lease_id))
        self._reaps.add(reap)  # held: the loop keeps only a weak reference
        reap.add_done_callback(self._reaps.discard)

    def _end_orphans(self, now: float) -> None:
        """The dead man's switch: a lease whose owner process is gone is due now. Each
        owner is looked up once a sweep, however many leases it holds (a console holds
        them all)."""
        owners_alive: dict[tuple[int, int | None], bool] = {}
        for lease in list(self.leases.values()):
            if lease.owner_pid is None or lease.state != "applied" or lease.id in self._ending:
                continue
            owner = (lease.owner_pid, lease.owner_start_ticks)
            if owner not in owners_alive:
                owners_alive[owner] = alive(*owner)
            if not owners_alive[owner]:
                self._ending[lease.id] = "owner-died"
                lease.data["owner_died_seen_at"] = now
                lease.expires_at = min(lease.expires_at, now)
                self._schedule(lease)
                self._log(f"lease {lease.id}: its owner pid {lease.owner_pid} is gone; healing")

    async def _reap(self, lease_id: str) -> None:
        try:
            await asyncio.wait_for(self.heal(lease_id, "ttl"), HEAL_TIMEOUT_S)
        except Exception:
            lease = self.leases.get(lease_id)
            if lease is not None:
                lease.expires_at = time.time() + RETRY_S
                self._schedule(lease)
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
            await self._on_disk(self.journal.write, lease)
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

    async def _on_disk(self, write, *args: Any) -> Any:
        """Run a journal or history write on the disk threads; returns what it returns."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._disk, write, *args)

    async def _forget(
        self, lease: Lease, by: str, heal_started_at: float, error: str | None = None
    ) -> str | None:
        """The lease has ended: off the journal and into the history (on the disk threads),
        then out of memory. In that order, as when all of it ran on the loop: a lease that
        GET /leases no longer lists has its history record, and a heal is answered only
        once both are on disk. Never raises an OSError: the fault is already undone.
        Returns a warning when the disk said no."""
        now = time.time()  # the fault is undone: the moment it ended
        record = {
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
        try:
            problems = await self._on_disk(self._forget_on_disk, lease.id, record)
        finally:  # even if the heal's awaiter was cancelled: the disk work goes on anyway
            self.leases.pop(lease.id, None)
            self._locks.pop(lease.id, None)
            self._ending.pop(lease.id, None)
            self._deadlines.pop(lease.id, None)
            self._release(lease.id)
            self._ended[lease.id] = now
            # Oldest first (insertion order): stop at the first still kept, not scan them all.
            while self._ended:
                oldest, ended_at = next(iter(self._ended.items()))
                if ended_at >= now - self.max_ttl_s:
                    break
                del self._ended[oldest]
        warning = "; ".join(problems) or None
        if warning:
            self._log(f"lease {lease.id} healed, but {warning}")
        return warning

    def _forget_on_disk(self, lease_id: str, record: dict[str, Any]) -> list[str]:
        problems = []
        try:
            self.journal.remove(lease_id)
        except OSError as exc:
            problems.append(
                f"its journal file could not be removed ({exc}); the next agent "
                "will heal it again, harmlessly"
            )
        try:
            self.history.append(record)
        except OSError as exc:
            problems.append(f"its history record could not be written ({exc})")
        return problems
