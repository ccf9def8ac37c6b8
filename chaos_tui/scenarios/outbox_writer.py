"""The workload of the outbox scenarios: outbox rows at a steady rate, through any outage.

Every row gets its id before the first attempt. A failed insert is retried with the same id
(`ON CONFLICT DO NOTHING`), so an insert whose commit was lost with the server is neither
lost nor doubled, and the writer knows exactly which ids were confirmed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING

from chaos_tui.core.lazy import lazy
from chaos_tui.probes.db_probe import close_quietly
from chaos_tui.scenarios.load import SteadyLoad

if TYPE_CHECKING:
    import psycopg
else:
    psycopg = lazy("psycopg")  # loaded at its first use: the picker lists this without it

INSERT = (
    "INSERT INTO outbox_events (id, subject, payload) VALUES (%s, %s, %s) "
    "ON CONFLICT (id) DO NOTHING"
)


class OutboxWriter(SteadyLoad):
    def __init__(self, dsn: str, subject: str, rate_per_s: float) -> None:
        super().__init__(rate_per_s, "outbox-writer")
        self.dsn = dsn
        self.subject = subject
        self.attempted: list[str] = []
        self.acknowledged: set[str] = set()
        self.failures = 0
        self._pending: deque[str] = deque()
        self._conn: psycopg.AsyncConnection | None = None

    async def stop(self, flush_timeout_s: float = 10.0) -> None:
        """Stop making new rows, then keep trying to write the ones not yet confirmed."""
        if not self.running:
            return
        try:
            await super().stop()
            deadline = time.monotonic() + flush_timeout_s
            while self._pending and time.monotonic() < deadline:
                if not await self._flush():
                    await asyncio.sleep(0.2)
        finally:
            await self._close()

    async def tick(self, n: int) -> None:
        row_id = str(uuid.uuid4())
        self.attempted.append(row_id)
        self._pending.append(row_id)
        await self._flush()

    async def _flush(self) -> bool:
        """Write pending rows in order; False when the database refused (they stay pending)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=1
                )
            while self._pending:
                row_id = self._pending[0]
                payload = json.dumps({"id": row_id, "written_at": time.time()})
                await asyncio.wait_for(
                    self._conn.execute(INSERT, (row_id, self.subject, payload)), 2.0
                )
                self.acknowledged.add(row_id)
                self._pending.popleft()
            return True
        except (TimeoutError, psycopg.Error, OSError):
            self.failures += 1
            await self._close()
            return False

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        await close_quietly(conn)
