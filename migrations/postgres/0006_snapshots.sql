-- Snapshots of the read model (the fold of the log up to `position`), opaque to the store: the
-- application's bytes, the chain hash of the event at `position`, the workflow's digest and the
-- body's format version, and the MAC over all of these (its key is kept outside the database).
CREATE TABLE snapshots (
    position        BIGINT PRIMARY KEY,
    chain_hash      TEXT NOT NULL,
    workflow_digest TEXT NOT NULL,
    format_version  INTEGER NOT NULL,
    body            BYTEA NOT NULL,
    mac             BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
