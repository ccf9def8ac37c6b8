"""A run's copy of the agent's live worker injectors, kept in a Valkey key for workers that
cannot reach the agent (the compose stack's job worker: the agent listens on this host's
loopback only, the worker runs in a container).

While at least one worker-injector fault of the run lives, the key is rewritten every
`INJECTOR_POLL_S` with the agent's answer and a short expiry. The worker (chaos_tui.inject)
dates each copy by the key's own age plus the time the copy took, so its deadlines and its
fail safe are the agent's: a heal, a halt or the TTL shows at the next copy; an agent that
stops answering, or a run that dies, stops the copies, and the worker turns every injector
off within `stale_s` (1 s) of the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import redis.asyncio as aioredis

from chaos_tui.agent.client import AgentClient
from chaos_tui.agent.protocol import INJECTOR_MIRROR_KEY, INJECTOR_POLL_S, MirroredInjectors

EXPIRES_MS = 2_000  # a backstop: the worker's own staleness rule (1 s) comes first
TIMEOUT_S = 0.5


class InjectorMirror:
    def __init__(self, agent: AgentClient, url: str) -> None:
        self.agent = agent
        self.url = url
        self.holders = 0
        self._task: asyncio.Task | None = None
        self._store: aioredis.Redis | None = None
        self._write_rtt_s = 0.0  # the last write's round trip: a bound on its one-way delay
        self.copies = 0

    async def hold(self) -> None:
        """One more fault wants the copies: the first write is made before this returns."""
        self.holders += 1
        if self._task is None:
            await self.copy_once()
            self._task = asyncio.create_task(self._keep_copying(), name="injector-mirror")

    async def release(self) -> None:
        """One fault less; the last one stops the copies after a final one (the agent no
        longer lists the healed lease, so the worker stops at once, not a second later)."""
        self.holders = max(0, self.holders - 1)
        if self.holders or self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(Exception):  # the copies go stale anyway
            await self.copy_once()
        await self.close()

    async def close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._store.aclose()
        self._store = None

    async def copy_once(self) -> None:
        polled = time.monotonic()
        live = await self.agent.injectors()
        value = MirroredInjectors(
            expires_ms=EXPIRES_MS,
            polled_ago_s=time.monotonic() - polled + self._write_rtt_s,
            live=live,
        )
        if self._store is None:
            self._store = aioredis.Redis.from_url(
                self.url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            )
        sent = time.monotonic()
        await self._store.set(INJECTOR_MIRROR_KEY, value.model_dump_json(), px=EXPIRES_MS)
        self._write_rtt_s = time.monotonic() - sent
        self.copies += 1

    async def _keep_copying(self) -> None:
        while True:
            await asyncio.sleep(INJECTOR_POLL_S)
            try:
                await self.copy_once()
            except Exception:  # no copy: the worker's copy ages, and its fail safe acts
                await self.close()
