-- Mail to send, written in the same transaction as the event that causes it (one row per event
-- and recipient). Times are RFC 3339 text in UTC with microseconds, so they compare as text.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL,
    position        INTEGER NOT NULL,
    recipient       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    context         TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    sent_at         TEXT,
    CONSTRAINT outbox_once_per_recipient UNIQUE (event_id, recipient)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
