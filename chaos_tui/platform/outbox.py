"""The outbox: its table, the SQL the scenarios run on it, and its migrations (applied by
the sandbox when Postgres first starts, and by the Docker target on its database)."""

from __future__ import annotations

from pathlib import Path

OUTBOX_TABLE = "outbox_events"
# The migrations ship with the sandbox (package data), which applies them too.
MIGRATIONS = Path(__file__).resolve().parent.parent / "sandbox" / "sql"
UNPUBLISHED_OF_SUBJECT = (
    f"SELECT count(*) FROM {OUTBOX_TABLE} WHERE subject = %s AND published_at IS NULL"
)


def apply_migrations(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        for path in sorted(MIGRATIONS.glob("*.sql")):
            conn.execute(path.read_text())
