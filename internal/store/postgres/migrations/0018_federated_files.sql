-- Files across clusters (docs/federation.md, "Files"). A file record may
-- name a sender of a peer cluster (on the recipient's node: the file a
-- peer's node pushed, keyed by that node's domain and its file id) or a
-- recipient of a peer cluster (on the sender's node: the file it forwards).
ALTER TABLE files ALTER COLUMN sender_account DROP NOT NULL;
ALTER TABLE files ALTER COLUMN sender_device DROP NOT NULL;
ALTER TABLE files ALTER COLUMN recipient_account DROP NOT NULL;
ALTER TABLE files ADD COLUMN remote_sender TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN remote_account TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN remote_recipient TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN origin_id TEXT NOT NULL DEFAULT '';
CREATE INDEX files_remote_account ON files(remote_account, state) WHERE remote_account != '';
CREATE UNIQUE INDEX files_origin ON files(origin, origin_id) WHERE origin != '';

CREATE TABLE file_forwards (
    file_id   TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    domain    TEXT NOT NULL,
    state     TEXT NOT NULL,
    remote_id TEXT NOT NULL DEFAULT '',
    error     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX file_forwards_state ON file_forwards(state);

CREATE TABLE file_remote_targets (
    file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    device  TEXT NOT NULL,
    slot_id TEXT NOT NULL,
    nonce2  BYTEA NOT NULL,
    acked   BIGINT,
    PRIMARY KEY (file_id, device)
);
