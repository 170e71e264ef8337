-- Idempotency keys are remembered for 24 hours: when each was written (its transaction's start;
-- rows from before this migration count from the migration). Written by the writer in the
-- events' transaction.
ALTER TABLE idempotency_keys ADD COLUMN created_at TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- The answers given to calls that carried an idempotency key, to be given again to a repeat of
-- the call within 24 hours: the key (opaque to the store), a fingerprint of the call, the answer
-- as the caller chose to keep it (JSON), and when it was kept.
CREATE TABLE idempotent_answers (
    key         TEXT        PRIMARY KEY,
    fingerprint TEXT        NOT NULL,
    answer      JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX idempotent_answers_created_at ON idempotent_answers (created_at);
