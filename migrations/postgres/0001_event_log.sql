-- The append-only event log. Positions are handed out under the row lock on log_head, so they are
-- contiguous and in commit order (see src/store/writer.rs).
CREATE TABLE events (
    position       BIGINT      PRIMARY KEY,
    stream_id      TEXT        NOT NULL,
    stream_version BIGINT      NOT NULL,
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    data           JSONB       NOT NULL,
    metadata       JSONB       NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    event_id       UUID        NOT NULL UNIQUE,
    hash           TEXT        NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

-- Nothing in the log is ever updated or deleted.
CREATE FUNCTION refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END;
$$;
CREATE TRIGGER events_are_immutable BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION refuse_event_change();

-- The last event's position and hash: the row whose lock serializes appends.
CREATE TABLE log_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT  NOT NULL,
    hash     TEXT    NOT NULL
);
INSERT INTO log_head (id, position, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE idempotency_keys (
    key         TEXT  PRIMARY KEY,
    fingerprint TEXT  NOT NULL,
    outcome     JSONB NOT NULL
);
