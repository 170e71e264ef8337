-- Secrets the server makes once and every process on the database shares, by name: the key the
-- mail's Approve and Reject links are signed with ('mail_links'). Never exported, never logged.
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    key  BYTEA NOT NULL
);
