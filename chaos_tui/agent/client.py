"""Talking to the agent, and starting it when it is not there.

The agent is spawned detached, in its own session, so it outlives whoever started it: that is
the point, since it heals their faults at the TTL if they die.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import os
import signal
import ssl
import stat
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from chaos_tui.agent.guardian import HEARTBEAT_FILE
from chaos_tui.agent.server import agent_dir, read_token_file, token_problem
from chaos_tui.core.journal import write_atomic
from chaos_tui.sandbox.processes import ProcessRecord, is_running, signal_only, spawn, wait_gone
from chaos_tui.settings import Settings

REQUEST_TIMEOUT_S = 70.0  # a heal may restart a crash-recovering database
STOP_TIMEOUT_S = 180.0  # a stopping agent heals every lease it holds first
STALLED_S = 10.0  # its loop beats every 0.5 s, heals included: silent this long, it is hung


def _stop_alone(record: ProcessRecord, timeout_s: float, folder: Path) -> str:
    """Stop the agent alone (its children are services it restarted, which must keep running):
    SIGCONT first (a stopped process cannot act on SIGTERM), SIGTERM (it heals, then exits),
    then SIGKILL at the timeout, or as soon as its heartbeat shows its loop no longer runs.
    Returns "exited", "killed" or "running" (it would not die)."""
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


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA store costs ~20 ms a client, and the agent speaks plain
    HTTP on loopback anyway."""
    return ssl.create_default_context()


class AgentUnavailable(Exception):
    pass


class AgentError(Exception):
    """The agent answered, and said no."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"agent said {status}: {detail}")
        self.status = status
        self.detail = detail


class AgentClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = agent_dir(settings)

    # -- finding and starting the agent ------------------------------------------------------

    def info(self) -> dict | None:
        """agent.json of a live agent (same pid, same kernel start time), else None."""
        try:
            data = json.loads((self.folder / "agent.json").read_text())
            record = ProcessRecord("agent", int(data["pid"]), data.get("start_ticks") or -1, [], "")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing, torn or not ours: no agent we can name
        return data if is_running(record) else None

    def token(self) -> str:
        """The agent's token; never an empty or short one (that would be no secret at all)."""
        path = self.folder / "token"
        try:
            text, info = read_token_file(path)
        except FileNotFoundError:
            raise AgentUnavailable(f"no agent token in {self.folder}") from None
        except OSError as exc:
            why = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            raise AgentUnavailable(f"cannot read the agent token {path}: {why}") from None
        problem = token_problem(text) if stat.S_ISREG(info.st_mode) else "is not a regular file"
        if problem:
            raise AgentUnavailable(f"the agent token {path} {problem}: stop the agent "
                                   "(chaos-tui agent stop); the next one makes a new token")
        return text

    async def ensure(self) -> bool:
        """Make sure an agent serves this state dir; True if this call started it."""
        if self.info() is not None and await self._healthy():
            return False
        command = [sys.executable, "-m", "chaos_tui", "agent"]
        # The agent serves this client's state dir, whatever the environment says.
        env = {**os.environ, "CHAOS_STATE_DIR": str(self.settings.state_dir)}
        record = spawn("agent", command, self.folder / "agent.log", env=env)
        # A new agent heals an old one's leftovers before it serves: that may take a while.
        deadline = time.monotonic() + self.settings.agent.start_timeout_s
        while time.monotonic() < deadline:
            info = self.info()
            if info is not None and info["pid"] == record.pid and await self._healthy():
                # Only the spawn that won is recorded, so stop_spawned finds the live one.
                write_atomic(self.folder / "spawned.json", json.dumps(record.to_json()))
                return True
            if not is_running(record):
                break  # e.g. another agent won the lock: use that one if it answers
            await asyncio.sleep(0.05)
        if self.info() is not None and await self._healthy():
            return False
        raise AgentUnavailable(f"the agent did not start; see {self.folder / 'agent.log'}")

    def stop_spawned(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop the agent this tool spawned, if it still runs. True if stopped."""
        try:
            record = ProcessRecord.from_json(json.loads((self.folder / "spawned.json").read_text()))
        except (OSError, ValueError):
            return False
        # Killed holding leases? Its guardian starts a replacement, which heals them.
        stopped = is_running(record) and _stop_alone(record, timeout_s, self.folder) != "running"
        (self.folder / "spawned.json").unlink(missing_ok=True)
        return stopped

    def stop_running(self, timeout_s: float = STOP_TIMEOUT_S,
                     announce=lambda line: None) -> tuple[int | None, bool]:
        """Stop whichever agent serves this state dir: (its pid or None, whether it stopped).
        If it had to be killed with leases still journalled, a replacement agent heals them
        and is stopped in turn; `announce` is told each line of that."""
        info = self.info()
        if info is None:
            return None, True
        record = ProcessRecord("agent", info["pid"], info["start_ticks"], [], "")
        ended = _stop_alone(record, timeout_s, self.folder)
        left = list((self.folder / "leases").glob("*.json"))
        if ended == "killed" and left:
            announce(f"agent pid {info['pid']} did not stop by itself and was killed holding "
                     f"{len(left)} lease(s): a replacement agent heals them")
            for line in self._heal_with_replacement():
                announce(line)
        return info["pid"], ended != "running"

    def _heal_with_replacement(self) -> list[str]:
        """Start an agent (or use the one the guardian started): it heals leftovers before it
        serves. Then stop it cleanly. Returns what it reported."""
        async def recovered() -> list[dict]:
            deadline = time.monotonic() + self.settings.agent.start_timeout_s
            while True:
                try:
                    await self.ensure()
                    return (await self.status())["recovered"]
                except AgentUnavailable:
                    # The dead agent's guardian may have started one first: ours lost the
                    # lock while that one heals. Try again until it serves.
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        try:
            items = asyncio.run(recovered())
        except (AgentUnavailable, AgentError, httpx.HTTPError) as exc:
            return [f"the replacement agent failed: {exc}"]
        lines = [f"leftover lease {item['id']} ({item['kind']} {json.dumps(item['params'])}): "
                 + ("healed" if item["healed"] else f"heal FAILED: {item['error']}")
                 for item in items]
        info = self.info()
        if info is not None:
            record = ProcessRecord("agent", info["pid"], info["start_ticks"], [], "")
            ended = _stop_alone(record, STOP_TIMEOUT_S, self.folder)
            lines.append(f"replacement agent pid {info['pid']} " + (
                "stopped" if ended == "exited" else f"{ended} (it would not stop)"))
            (self.folder / "spawned.json").unlink(missing_ok=True)
        return lines

    async def _healthy(self) -> bool:
        try:
            return (await self.health()).get("ok", False)
        except (AgentUnavailable, httpx.HTTPError):
            return False

    # -- the API -------------------------------------------------------------------------------

    async def call(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        info = self.info()
        if info is None:
            raise AgentUnavailable(f"no agent runs for {self.settings.state_dir}")
        headers = {} if path == "/health" else {"Authorization": f"Bearer {self.token()}"}
        async with httpx.AsyncClient(base_url=info["url"], timeout=REQUEST_TIMEOUT_S,
                                     verify=_tls_context()) as http:
            response = await http.request(method, path, json=body, headers=headers)
        return response

    async def _ok(self, method: str, path: str, body: dict | None = None, allow=()) -> Any:
        response = await self.call(method, path, body)
        if response.status_code >= 400 and response.status_code not in allow:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise AgentError(response.status_code, str(detail))
        return response.json() if response.content else None

    async def health(self) -> dict:
        """Liveness only (no token needed): {ok, version}."""
        return await self._ok("GET", "/health")

    async def status(self) -> dict:
        """pid, live leases, halt latch, start time, leftovers healed at start-up."""
        return await self._ok("GET", "/status")

    async def create_lease(self, **request: Any) -> dict:
        """Ask for a fault. Unless the caller says otherwise, this process owns it: the agent
        heals it as soon as this process dies (`orphan_ok=True` holds it until its TTL)."""
        if request.get("owner_pid") is None and not request.get("orphan_ok"):
            request["owner_pid"] = os.getpid()
        return await self._ok("POST", "/leases", request)

    async def heal_lease(self, lease_id: str) -> bool:
        """Heal one lease; False if it was no longer live (already healed: fine; `ended`
        tells by whom and when)."""
        response = await self.call("DELETE", f"/leases/{lease_id}")
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise AgentError(response.status_code, response.json().get("detail", response.text))
        return True

    async def ended(self, lease_id: str) -> dict | None:
        """How a lease ended, from the agent's history: {by, heal_started_at, ended_at, ...};
        None if the agent has no record of it."""
        found = await self._ok("GET", f"/history?lease_id={lease_id}")
        return found[-1] if found else None

    async def leases(self) -> list[dict]:
        return await self._ok("GET", "/leases")

    async def heal_all(self) -> list[dict]:
        return (await self._ok("POST", "/heal"))["results"]

    async def halt(self) -> list[dict]:
        return (await self._ok("POST", "/halt"))["results"]

    async def release_halt(self) -> None:
        await self._ok("DELETE", "/halt")



    async def proxies(self) -> list[dict]:
        return await self._ok("GET", "/proxies")

    async def ensure_proxy(self, name: str, listen: str, upstream: str) -> dict:
        """A proxy with exactly this listen address and upstream: kept if it exists as
        asked, made again if it differs, created if missing (an agent that restarted has
        none)."""
        current = await self._ok("GET", f"/proxies/{name}", allow=(404,))
        if current and "listen" in current:
            wanted = current["listen"] == listen and current["upstream"] == upstream
            if wanted and (current["listening"] or not current["enabled"]):
                return current  # as asked (down on purpose counts: a lease holds it)
            await self._ok("DELETE", f"/proxies/{name}", allow=(404,))
        try:
            return await self._ok("POST", "/proxies",
                                  {"name": name, "listen": listen, "upstream": upstream})
        except AgentError as exc:
            again = await self._ok("GET", f"/proxies/{name}", allow=(404,))
            if exc.status == 400 and again and again.get("listen") == listen:
                return again  # another caller made it a moment ago
            raise
