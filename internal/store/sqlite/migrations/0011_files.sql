-- The file service (docs/files-node.md). The node holds only opaque
-- blobs: sealed half-key slots with the hash of the proof they expect, and
-- files' headers; the ciphertext itself lives in the data directory's
-- files/ folder under the file's id.
CREATE TABLE files (
    id                TEXT PRIMARY KEY,
    sender_account    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    sender_device     INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    recipient_account INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    size              INTEGER NOT NULL,
    header            BLOB NOT NULL,
    received          INTEGER NOT NULL DEFAULT 0,
    state             TEXT NOT NULL,
    created           INTEGER NOT NULL,
    expires           INTEGER NOT NULL
);
CREATE INDEX files_sender ON files(sender_account, state);
CREATE INDEX files_pair ON files(sender_account, recipient_account, state);
CREATE INDEX files_sender_device ON files(sender_device);
CREATE INDEX files_expires ON files(expires);

CREATE TABLE file_targets (
    file_id   TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    slot_id   TEXT NOT NULL DEFAULT '',
    nonce2    BLOB,
    acked     INTEGER,
    PRIMARY KEY (file_id, device_id)
);
CREATE INDEX file_targets_device ON file_targets(device_id, acked);

CREATE TABLE file_slots (
    device_id    INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    contact      TEXT NOT NULL,
    slot_id      TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    proof_hash   BLOB NOT NULL,
    state        TEXT NOT NULL,
    taker_device INTEGER,
    nonce2       BLOB NOT NULL,
    file_id      TEXT REFERENCES files(id) ON DELETE CASCADE, -- a used slot goes with its file
    created      INTEGER NOT NULL,
    expires      INTEGER NOT NULL,
    PRIMARY KEY (device_id, slot_id)
);
CREATE INDEX file_slots_contact ON file_slots(device_id, contact, state, created);
