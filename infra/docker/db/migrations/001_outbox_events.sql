-- The transactional outbox read by the outbox relay (sea-mq-worker).
-- A producer inserts a row in the same transaction as its business change; the relay
-- publishes each unpublished row to JetStream with Nats-Msg-Id = id and then marks it.
CREATE TABLE IF NOT EXISTS outbox_events (
    id           UUID        PRIMARY KEY,
    subject      TEXT        NOT NULL,
    payload      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);

-- The relay polls for unpublished rows in creation order; keep that scan cheap.
CREATE INDEX IF NOT EXISTS outbox_events_unpublished
    ON outbox_events (created_at)
    WHERE published_at IS NULL;
