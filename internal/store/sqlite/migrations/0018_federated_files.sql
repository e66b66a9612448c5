-- Files across clusters (docs/federation.md, "Files"). A file record may
-- name a sender of a peer cluster (on the recipient's node: the file a
-- peer's node pushed, keyed by that node's domain and its file id) or a
-- recipient of a peer cluster (on the sender's node: the file it forwards).
-- SQLite cannot drop NOT NULL in place, so the table is rebuilt; dropping
-- the old one cascades to file_targets and used file_slots, which are kept
-- aside and put back.
CREATE TABLE files_0018 (
    id                TEXT PRIMARY KEY,
    sender_account    INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    sender_device     INTEGER REFERENCES devices(id) ON DELETE CASCADE,
    recipient_account INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    size              INTEGER NOT NULL,
    header            BLOB NOT NULL,
    received          INTEGER NOT NULL DEFAULT 0,
    state             TEXT NOT NULL,
    created           INTEGER NOT NULL,
    expires           INTEGER NOT NULL,
    remote_sender     TEXT NOT NULL DEFAULT '',
    remote_account    TEXT NOT NULL DEFAULT '',
    remote_recipient  TEXT NOT NULL DEFAULT '',
    origin            TEXT NOT NULL DEFAULT '',
    origin_id         TEXT NOT NULL DEFAULT ''
);
INSERT INTO files_0018(id, sender_account, sender_device, recipient_account, size, header, received, state, created, expires)
    SELECT id, sender_account, sender_device, recipient_account, size, header, received, state, created, expires FROM files;
CREATE TEMP TABLE keep_file_targets AS SELECT * FROM file_targets;
CREATE TEMP TABLE keep_file_slots AS SELECT * FROM file_slots WHERE file_id IS NOT NULL;
DROP TABLE files;
ALTER TABLE files_0018 RENAME TO files;
INSERT INTO file_targets SELECT * FROM keep_file_targets;
INSERT INTO file_slots SELECT * FROM keep_file_slots;
DROP TABLE keep_file_targets;
DROP TABLE keep_file_slots;
CREATE INDEX files_sender ON files(sender_account, state);
CREATE INDEX files_pair ON files(sender_account, recipient_account, state);
CREATE INDEX files_sender_device ON files(sender_device);
CREATE INDEX files_expires ON files(expires);
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
    nonce2  BLOB NOT NULL,
    acked   INTEGER,
    PRIMARY KEY (file_id, device)
);
