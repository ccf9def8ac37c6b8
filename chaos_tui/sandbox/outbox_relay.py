"""sea-mq-worker, the outbox relay: Postgres outbox rows -> JetStream, exactly once by id.

Each round takes a batch of unpublished rows with FOR UPDATE SKIP LOCKED (so several relays
can share one outbox), publishes each with Nats-Msg-Id = the row id, and marks the batch
published in the same transaction. If Postgres dies after a publish but before the commit, the
rows are published again later and JetStream drops the repeats inside its duplicate window.

Run it as `python -m chaos_tui.sandbox.outbox_relay --postgres-url ... --nats-url ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from psycopg_pool import AsyncConnectionPool, PoolTimeout

from chaos_tui import nats_client
from chaos_tui.nats_client import QuietClient

log = logging.getLogger("outbox_relay")

BATCH = 100
IDLE_POLL_S = 0.05
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 1.0  # keep retries tight: the relay must resume within seconds of a heal
POOL_TIMEOUT_S = 2.0

FETCH = """
    SELECT id, subject, payload::text FROM outbox_events
    WHERE published_at IS NULL
    ORDER BY created_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
MARK = "UPDATE outbox_events SET published_at = now() WHERE id = ANY(%s)"


class OutboxRelay:
    def __init__(self, postgres_url: str, nats_url: str, test_drop_every: int = 0) -> None:
        self.postgres_url = postgres_url
        self.nats_url = nats_url
        # Test-only fault: acknowledge every Nth row without publishing it (loses events).
        self.test_drop_every = test_drop_every
        self.published = 0
        self._seen = 0
        self._pool: AsyncConnectionPool | None = None
        self._nc: QuietClient | None = None

    def _new_pool(self) -> AsyncConnectionPool:
        return AsyncConnectionPool(
            self.postgres_url,
            min_size=1,
            max_size=2,
            timeout=POOL_TIMEOUT_S,
            # Without this the pool hands out connections that died with the server.
            check=AsyncConnectionPool.check_connection,
            kwargs={"connect_timeout": 2},
            open=False,
        )

    async def connect(self) -> None:
        # One log line when NATS goes away and one when it is back, not a traceback for each
        # reconnect attempt in between.
        async def lost() -> None:
            log.warning("nats connection lost; reconnecting")

        async def back() -> None:
            log.info("nats connection back")

        self._nc = await nats_client.connect(
            self.nats_url,
            max_reconnect_attempts=-1,  # never give up: outages end, the relay must not
            reconnect_time_wait=0.5,
            connect_timeout=2,
            disconnected_cb=lost,
            reconnected_cb=back,
        )
        self._pool = self._new_pool()
        await self._pool.open(wait=True, timeout=30)

    async def _reset_pool(self) -> None:
        """psycopg_pool backs off exponentially without a ceiling while the server is down;
        a fresh pool reconnects at once when it is back."""
        old, self._pool = self._pool, self._new_pool()
        await self._pool.open(wait=False)
        if old is not None:
            await old.close(timeout=1)

    async def relay_once(self) -> int:
        nc, pool = self._nc, self._pool
        if nc is None or pool is None:
            raise RuntimeError("relay_once before connect()")
        js = nc.jetstream(timeout=2)
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(FETCH, (BATCH,))
            rows = await cur.fetchall()
            for row_id, subject, payload in rows:
                self._seen += 1
                if self.test_drop_every and self._seen % self.test_drop_every == 0:
                    continue
                await js.publish(subject, payload.encode(), headers={"Nats-Msg-Id": str(row_id)})
            if rows:
                await conn.execute(MARK, ([r[0] for r in rows],))
        self.published += len(rows)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = BACKOFF_START_S
        while not stop.is_set():
            try:
                moved = await self.relay_once()
                backoff = BACKOFF_START_S
                if moved < BATCH:
                    await _sleep_or_stop(stop, IDLE_POLL_S)
            except PoolTimeout:
                log.warning("postgres unavailable; retrying")
                await self._reset_pool()
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Exception as exc:
                log.warning("relay round failed (%s: %s); retrying", type(exc).__name__, exc)
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close(timeout=2)
        if self._nc is not None:
            await self._nc.close()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def main_async(args: argparse.Namespace) -> None:
    relay = OutboxRelay(args.postgres_url, args.nats_url, args.test_drop_every)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await relay.connect()
    if args.ready_file:
        # One tiny write at start-up, before the relay serves anything: nothing waits on the loop.
        Path(args.ready_file).write_text("ready\n")  # noqa: ASYNC240
    log.info("relaying %s -> %s", args.postgres_url, args.nats_url)
    try:
        await relay.run(stop)
    finally:
        await relay.close()
        log.info("stopped after publishing %d rows", relay.published)


def main() -> None:
    parser = argparse.ArgumentParser(description="Outbox relay: Postgres outbox -> JetStream")
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--nats-url", required=True)
    parser.add_argument("--test-drop-every", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
