"""Talking to the agent, and starting it when it is not there.

The agent is spawned detached, in its own session, so it outlives whoever started it: that is
the point, since it heals their faults at the TTL if they die.

This module speaks only `protocol` (routes, bodies, the files of the agent's folder): it never
imports the server or FastAPI, so the console pays for neither. Answers come back as the
protocol's models; a refusal is an `AgentRefused` (an `AgentError`) with the HTTP status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import json
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chaos_tui.agent import protocol as p
from chaos_tui.agent.guardian import HEARTBEAT_FILE, lock_held, stand_down
from chaos_tui.agent.history import LeaseHistory
from chaos_tui.agent.protocol import (
    EndedLease,
    HealResult,
    HealResults,
    Health,
    Lease,
    LiveInjectors,
    ProxyView,
    RecoveredLease,
    Status,
    read_token_file,
    token_problem,
)
from chaos_tui.agent.wire import AgentConnectionLost, Answer, exchange
from chaos_tui.core.errors import AgentError, AgentUnavailable
from chaos_tui.core.journal import write_atomic
from chaos_tui.sandbox.processes import (
    ProcessRecord,
    is_running,
    signal_only,
    spawn,
    wait_gone,
)
from chaos_tui.sandbox.processes import stop as stop_process
from chaos_tui.settings import Settings

M = TypeVar("M", bound=BaseModel)  # a protocol model an answer is read as
R = TypeVar("R")

REQUEST_TIMEOUT_S = 70.0  # a heal may restart a crash-recovering database
STOP_TIMEOUT_S = 180.0  # a stopping agent heals every lease it holds first
STALLED_S = 10.0  # its loop beats every 0.5 s, heals included: silent this long, it is hung
# How often a starting agent is looked for: its start is on the critical path of `sandbox up`
# (services are ready before it), and a look costs a file read and a /proc stat.
START_POLL_S = 0.01
OTHER_START_POLL_S = 0.05  # an agent we did not start, still healing leftovers


def _stop_alone(record: ProcessRecord, timeout_s: float, folder: Path) -> str:
    """Stop the agent alone (its children are services it restarted, which must keep running):
    SIGCONT first (a stopped process cannot act on SIGTERM), SIGTERM (it heals, then exits),
    then SIGKILL at the timeout, or as soon as its heartbeat shows its loop no longer runs.
    Before that SIGKILL its guardian is stood down: the caller heals what the agent leaves
    (`_heal_with_replacement`), and a replacement of the guardian's, started beside or after
    that, would serve for ever with nobody to stop it. Returns "exited", "killed" or
    "running" (it would not die)."""
    signal_only(record, signal.SIGCONT)
    if not signal_only(record, signal.SIGTERM):
        return "exited"
    asked = time.time()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if wait_gone(record, 0.1):
            return "exited"
        if _loop_stalled(folder, asked):
            break
    stand_down(folder, record.pid)
    signal_only(record, signal.SIGKILL)
    return "killed" if wait_gone(record, 5.0) else "running"


def _loop_stalled(folder: Path, since: float) -> bool:
    """The agent's event loop has not touched its heartbeat for STALLED_S (counted from
    `since`, when we woke it): it cannot heal anything, waiting longer is pointless."""
    try:
        beat = (folder / HEARTBEAT_FILE).stat().st_mtime
    except OSError:
        return False  # no heartbeat (an older agent): wait out the timeout
    return time.time() - max(beat, since) > STALLED_S


def _run_apart(make: Callable[[], Coroutine[Any, Any, R]]) -> R:
    """Run a coroutine to its end from sync code, on a thread of its own when this thread
    already runs a loop (a stop called from inside async code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()


__all__ = ["AgentClient", "AgentConnectionLost", "AgentError", "AgentRefused", "AgentUnavailable"]


class AgentRefused(AgentError):
    """The agent answered, and said no: `status` is its HTTP status (below 500, it applied
    nothing), `detail` its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"agent said {status}: {detail}")
        self.status = status
        self.detail = detail


class AgentClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = p.agent_dir(settings.state_dir)

    # -- finding and starting the agent ------------------------------------------------------

    def info(self) -> dict | None:
        """agent.json of a live agent (same pid, same kernel start time), else None."""
        try:
            data = json.loads((self.folder / p.INFO_FILE).read_text())
            record = ProcessRecord("agent", int(data["pid"]), data.get("start_ticks") or -1, [], "")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing, torn or not ours: no agent we can name
        return data if is_running(record) else None

    def token(self) -> str:
        """The agent's token; never an empty or short one (that would be no secret at all)."""
        path = self.folder / p.TOKEN_FILE
        try:
            text, info = read_token_file(path)
        except FileNotFoundError:
            raise AgentUnavailable(f"no agent token in {self.folder}") from None
        except OSError as exc:
            why = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            raise AgentUnavailable(f"cannot read the agent token {path}: {why}") from None
        problem = token_problem(text) if stat.S_ISREG(info.st_mode) else "is not a regular file"
        if problem:
            raise AgentUnavailable(
                f"the agent token {path} {problem}: stop the agent "
                "(chaos-tui agent stop); the next one makes a new token"
            )
        return text

    async def ensure(self) -> bool:
        """Make sure an agent serves this state dir; True if this call started it."""
        if self.info() is not None and await self._healthy():
            return False
        command = [sys.executable, "-P", "-m", "chaos_tui", "agent"]  # -P: not the cwd's code
        # The agent serves this client's state dir, whatever the environment says.
        env = {**os.environ, "CHAOS_STATE_DIR": str(self.settings.state_dir)}
        record = spawn("agent", command, self.folder / p.LOG_FILE, env=env)
        # A new agent heals an old one's leftovers before it serves: that may take a while.
        deadline = time.monotonic() + self.settings.agent.start_timeout_s
        waited_for_another = spawned_again = False
        try:
            while time.monotonic() < deadline:
                info = self.info()
                if info is not None and info["pid"] == record.pid and await self._healthy():
                    # Only the spawn that won is recorded, so stop_spawned finds the live one.
                    write_atomic(self.folder / p.SPAWNED_FILE, json.dumps(record.to_json()))
                    return True
                if is_running(record):
                    await asyncio.sleep(START_POLL_S)
                    continue
                # Ours exited. If it lost the lock to another agent (a guardian's replacement,
                # another command's), that one heals leftovers before it writes agent.json:
                # wait for it to serve. Only with the lock free is there no agent coming.
                if info is not None and await self._healthy():
                    return False
                if lock_held(self.folder):
                    waited_for_another = True
                    await asyncio.sleep(OTHER_START_POLL_S)
                    continue
                if not waited_for_another or spawned_again:
                    break
                # The one we waited for let go without serving (a guardian's replacement
                # that found nothing left to heal, an agent that stopped): start ours again.
                record = spawn("agent", command, self.folder / p.LOG_FILE, env=env)
                spawned_again = True
        except asyncio.CancelledError:
            # The caller gave up (a signal) while the agent came up: it holds no lease yet,
            # and nobody would stop it later.
            stop_process(record, kill_tree=False)
            raise
        if self.info() is not None and await self._healthy():
            return False
        raise AgentUnavailable(f"the agent did not start; see {self.folder / p.LOG_FILE}")

    def stop_spawned(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop the agent this tool spawned, if it still runs. True if stopped."""
        try:
            record = ProcessRecord.from_json(json.loads((self.folder / p.SPAWNED_FILE).read_text()))
        except (OSError, ValueError):
            return False
        stopped = is_running(record) and self._stop(record, timeout_s) != "running"
        (self.folder / p.SPAWNED_FILE).unlink(missing_ok=True)
        return stopped

    def stop_running(
        self, timeout_s: float = STOP_TIMEOUT_S, announce=lambda line: None
    ) -> tuple[int | None, bool]:
        """Stop whichever agent serves this state dir: (its pid or None, whether it stopped).
        If it had to be killed with leases still journalled, a replacement agent heals them
        and is stopped in turn; `announce` is told each line of that."""
        info = self.info()
        if info is None:
            return None, True
        record = ProcessRecord("agent", info["pid"], info["start_ticks"], [], "")
        return info["pid"], self._stop(record, timeout_s, announce) != "running"

    def _stop(self, record: ProcessRecord, timeout_s: float, announce=lambda line: None) -> str:
        """`_stop_alone`, and if the agent had to be killed holding leases, a replacement that
        heals them (its guardian was stood down: the stopper does that duty itself)."""
        ended = _stop_alone(record, timeout_s, self.folder)
        left = self.journal_ids()
        if ended == "killed" and left:
            announce(
                f"agent pid {record.pid} did not stop by itself and was killed holding "
                f"{len(left)} lease(s): a replacement agent heals them"
            )
            for line in self._heal_with_replacement():
                announce(line)
        return ended

    def _heal_with_replacement(self) -> list[str]:
        """Start an agent (or use the one the guardian started): it heals leftovers before it
        serves. Then stop it cleanly. Returns what it reported."""

        async def recovered() -> list[RecoveredLease]:
            deadline = time.monotonic() + self.settings.agent.start_timeout_s
            while True:
                try:
                    await self.ensure()
                    return (await self.status()).recovered
                except AgentUnavailable:
                    # The dead agent's guardian may have started one first: ours lost the
                    # lock while that one heals. Try again until it serves.
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)

        try:
            items = _run_apart(recovered)
        except AgentError as exc:
            return [f"the replacement agent failed: {exc}"]
        lines = [
            f"leftover lease {item.id} ({item.kind} {json.dumps(item.params)}): "
            + ("healed" if item.healed else f"heal FAILED: {item.error}")
            for item in items
        ]
        info = self.info()
        if info is not None:
            record = ProcessRecord("agent", info["pid"], info["start_ticks"], [], "")
            ended = _stop_alone(record, STOP_TIMEOUT_S, self.folder)
            lines.append(
                f"replacement agent pid {info['pid']} "
                + ("stopped" if ended == "exited" else f"{ended} (it would not stop)")
            )
            (self.folder / p.SPAWNED_FILE).unlink(missing_ok=True)
        return lines

    async def _healthy(self) -> bool:
        try:
            return (await self.health()).ok
        except (AgentUnavailable, AgentConnectionLost):
            return False

    # -- the API -------------------------------------------------------------------------------

    async def call(self, method: str, path: str, body: dict | None = None) -> Answer:
        """One request to the agent serving this state dir, and its answer (any status)."""
        info = self.info()
        if info is None:
            raise AgentUnavailable(f"no agent runs for {self.settings.state_dir}")
        headers = {} if path == p.HEALTH else {"Authorization": f"Bearer {self.token()}"}
        return await exchange(info["url"], method, path, body, headers, REQUEST_TIMEOUT_S)

    async def _ok(self, method: str, path: str, body: dict | None = None, allow=()) -> Any:
        """The answer's JSON (None if it has no body); a status of 400 or more that is not
        in `allow` raises AgentRefused."""
        response = await self.call(method, path, body)
        if response.status_code >= 400 and response.status_code not in allow:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            raise AgentRefused(response.status_code, str(detail))
        return response.json() if response.content else None

    def _read(self, model: type[M], answer: Any) -> M:
        """An answer as the protocol says it looks; another shape (an agent of another
        version, or not ours) is one line, not a traceback."""
        try:
            return model.model_validate(answer)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the answer"
            url = (self.info() or {}).get("url", "?")
            raise AgentError(
                f"the agent at {url} answered in a shape this chaos-tui does not read "
                f"({model.__name__}: {where}: {first['msg']}); is it another version?"
            ) from None

    async def health(self) -> Health:
        """Liveness only (no token needed)."""
        return self._read(Health, await self._ok("GET", p.HEALTH))

    async def status(self) -> Status:
        """pid, live leases, halt latch, start time, leftovers healed at start-up."""
        return self._read(Status, await self._ok("GET", p.STATUS))

    async def kinds(self) -> dict[str, str]:
        """The fault kinds this agent knows, each with what it does."""
        return dict(await self._ok("GET", p.KINDS))

    async def create_lease(self, **request: Any) -> Lease:
        """Ask for a fault (the fields of `protocol.LeaseRequest`). Unless the caller says
        otherwise, this process owns it: the agent heals it as soon as this process dies
        (`orphan_ok=True` holds it until its TTL)."""
        if request.get("owner_pid") is None and not request.get("orphan_ok"):
            request["owner_pid"] = os.getpid()
        # Sent as given: the agent validates it (a bad field is its 422, an AgentRefused).
        return self._read(Lease, await self._ok("POST", p.LEASES, request))

    async def heal_lease(self, lease_id: str) -> bool:
        """Heal one lease; False if it was no longer live (already healed: fine; `ended`
        tells by whom and when)."""
        response = await self.call("DELETE", p.lease_path(lease_id))
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            raise AgentRefused(response.status_code, str(detail))
        return True

    async def ended(self, lease_id: str) -> EndedLease | None:
        """How a lease ended, from the agent's history; None if the agent has no record
        of it."""
        found = await self._ok("GET", f"{p.HISTORY}?lease_id={lease_id}")
        return self._read(EndedLease, found[-1]) if found else None

    async def leases(self) -> list[Lease]:
        return [self._read(Lease, item) for item in await self._ok("GET", p.LEASES)]

    async def heal_all(self) -> list[HealResult]:
        return self._read(HealResults, await self._ok("POST", p.HEAL_ALL)).results

    async def halt(self) -> list[HealResult]:
        return self._read(HealResults, await self._ok("POST", p.HALT)).results

    async def release_halt(self) -> None:
        await self._ok("DELETE", p.HALT)

    async def injectors(self) -> LiveInjectors:
        """The worker injectors live now, as job workers see them."""
        return self._read(LiveInjectors, await self._ok("GET", p.INJECTORS))

    async def proxies(self) -> list[ProxyView]:
        return [self._read(ProxyView, item) for item in await self._ok("GET", p.PROXIES)]

    async def proxy(self, name: str) -> ProxyView | None:
        found = await self._ok("GET", p.proxy_path(name), allow=(404,))
        return self._read(ProxyView, found) if found and "listen" in found else None

    async def ensure_proxy(self, name: str, listen: str, upstream: str) -> ProxyView:
        """A proxy with exactly this listen address and upstream: kept if it exists as
        asked, made again if it differs, created if missing (an agent that restarted has
        none)."""
        current = await self.proxy(name)
        if current is not None:
            wanted = current.listen == listen and current.upstream == upstream
            if wanted and (current.listening or not current.enabled):
                return current  # as asked (down on purpose counts: a lease holds it)
            await self._ok("DELETE", p.proxy_path(name), allow=(404,))
        try:
            made = await self._ok(
                "POST", p.PROXIES, {"name": name, "listen": listen, "upstream": upstream}
            )
        except AgentRefused as exc:
            again = await self.proxy(name)
            if exc.status == 400 and again is not None and again.listen == listen:
                return again  # another caller made it a moment ago
            raise
        return self._read(ProxyView, made)

    async def delete_proxy(self, name: str) -> None:
        """Close a proxy and its connections; one that is gone already is fine."""
        await self._ok("DELETE", p.proxy_path(name), allow=(404,))

    # -- the agent's folder, read without asking the agent (none may be running) --------------

    def journal_leases(self) -> tuple[list[Lease], list[Path]]:
        """The leases journalled on disk (what a dead agent left, or what a live one holds),
        and the lease files that could not be read (may still be live faults)."""
        return p.read_lease_files(self.folder / p.LEASES_DIR)

    def journal_ids(self) -> list[str]:
        """The id of every lease file on disk, readable or not, sorted."""
        return p.journalled_ids(self.folder / p.LEASES_DIR)

    @property
    def journal_folder(self) -> Path:
        return self.folder / p.LEASES_DIR

    def ended_since(self, since: float) -> dict[str, EndedLease]:
        """The leases the history says ended at or after `since`, by id (the last record
        of each)."""
        found: dict[str, EndedLease] = {}
        for entry in LeaseHistory(self.folder / p.HISTORY_FILE).entries():
            try:
                ended = EndedLease.model_validate(entry)
            except ValueError:
                continue  # not a record the agent wrote
            if (ended.ended_at or 0) >= since:
                found[ended.id] = ended
        return found
