"""PostgreSQL probes: can we connect and run a query, and how big is the outbox backlog."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from chaos_tui.core.contracts import Probe
from chaos_tui.core.lazy import lazy

if TYPE_CHECKING:
    import psycopg
else:
    psycopg = lazy("psycopg")  # loaded at its first use: the picker lists this without it

CONNECT_TIMEOUT_S = 1


class PostgresProbe(Probe):
    """A fresh connection and `SELECT 1` per sample: measures what a new client would see."""

    def __init__(self, name: str, dsn: str) -> None:
        super().__init__(name, "connect + SELECT 1 (latency ms)")
        self.dsn = dsn

    query = "SELECT 1"

    async def measure(self) -> float | None:
        conn = await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
        try:
            cur = await conn.execute(self.query)
            row = await cur.fetchone() if cur.description else None
        finally:
            await conn.close()
        return self.value_of(row)

    def value_of(self, row: tuple[object, ...] | None) -> float | None:
        return None


class PostgresQueryProbe(PostgresProbe):
    """A user's query over a fresh connection per sample. The value is the first column of the
    first row when it is a number (a boolean counts as 1 or 0), else None; an error in the
    query fails the sample with the server's message."""

    def __init__(self, name: str, dsn: str, query: str, timeout_s: float | None = None) -> None:
        super().__init__(name, dsn)
        self.query = query
        self.description = f"connect + {' '.join(query.split())[:60]} (latency ms; value = col 1)"
        if timeout_s is not None:
            self.timeout_s = timeout_s

    def value_of(self, row: tuple[object, ...] | None) -> float | None:
        if not row:
            return None
        first = row[0]
        if isinstance(first, bool | int | float | Decimal):
            return float(first)
        return None


class OutboxBacklogProbe(Probe):
    """Unpublished outbox rows, over one kept connection that is replaced when it breaks."""

    QUERY = "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"

    def __init__(self, name: str, dsn: str) -> None:
        super().__init__(name, "unpublished outbox rows")
        self.dsn = dsn
        self._conn: psycopg.AsyncConnection | None = None

    async def measure(self) -> float | None:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        try:
            cur = await self._conn.execute(self.QUERY)
            row = await cur.fetchone()
            if row is None:  # count(*) always answers one row: a server that does not is broken
                raise psycopg.DataError(f"no row from {self.QUERY!r}")
            (count,) = row
        except Exception:
            await self.close()
            raise
        return float(count)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        await close_quietly(conn)


async def close_quietly(conn: psycopg.AsyncConnection | None) -> None:
    """Close a connection that may already be broken; a dead server is no error here."""
    if conn is None:
        return
    try:
        await conn.close()
    except Exception:
        pass
