-- Webhooks. Each subscription's signing secret, outside the log (never exported or listed), kept
-- under the subscription id that the log's WebhookCreated names.
CREATE TABLE webhook_secrets (
    webhook_id TEXT        PRIMARY KEY,
    secret     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
-- The deliveries events cause, written in the same transaction as the event (one row per event
-- and subscription). Per subscription they go in log order: only the pending row with the lowest
-- position (the head of its line) is claimed (FOR UPDATE SKIP LOCKED).
CREATE TABLE webhook_deliveries (
    id              BIGSERIAL   PRIMARY KEY,
    webhook_id      TEXT        NOT NULL,
    event_id        UUID        NOT NULL,
    position        BIGINT      NOT NULL,
    url             TEXT        NOT NULL,
    message_id      TEXT        NOT NULL,
    state           TEXT        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    last_status     INTEGER,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    CONSTRAINT webhook_delivery_once UNIQUE (webhook_id, event_id)
);
-- The lines: each subscription's pending deliveries in log order, found by a skip scan over the
-- subscriptions (one index lookup each, however long the lines are).
CREATE INDEX webhook_deliveries_line ON webhook_deliveries (state, webhook_id, position);
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (webhook_id, id);
