-- Mail to send, written in the same transaction as the event that causes it (one row per event
-- and recipient). Delivery workers claim due rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE outbox (
    id              BIGSERIAL   PRIMARY KEY,
    event_id        UUID        NOT NULL,
    position        BIGINT      NOT NULL,
    recipient       TEXT        NOT NULL,
    kind            TEXT        NOT NULL,
    context         JSONB       NOT NULL,
    message_id      TEXT        NOT NULL,
    state           TEXT        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ,
    CONSTRAINT outbox_once_per_recipient UNIQUE (event_id, recipient)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
