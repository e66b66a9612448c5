-- The file service (docs/files-node.md). The node holds only opaque
-- blobs: sealed half-key slots with the hash of the proof they expect, and
-- files' headers; the ciphertext itself lives in the data directory's
-- files/ folder under the file's id.
CREATE TABLE files (
    id                TEXT PRIMARY KEY,
    sender_account    BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    sender_device     BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    recipient_account BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    size              BIGINT NOT NULL,
    header            BYTEA NOT NULL,
    received          BIGINT NOT NULL DEFAULT 0,
    state             TEXT NOT NULL,
    created           BIGINT NOT NULL,
    expires           BIGINT NOT NULL
);
CREATE INDEX files_sender ON files(sender_account, state);
CREATE INDEX files_pair ON files(sender_account, recipient_account, state);
CREATE INDEX files_sender_device ON files(sender_device);
CREATE INDEX files_recipient ON files(recipient_account);
CREATE INDEX files_expires ON files(expires);

CREATE TABLE file_targets (
    file_id   TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    device_id BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    slot_id   TEXT NOT NULL DEFAULT '',
    nonce2    BYTEA,
    acked     BIGINT,
    PRIMARY KEY (file_id, device_id)
);
CREATE INDEX file_targets_device ON file_targets(device_id, acked);

CREATE TABLE file_slots (
    device_id    BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    contact      TEXT NOT NULL,
    slot_id      TEXT NOT NULL,
    sealed       BYTEA NOT NULL,
    proof_hash   BYTEA NOT NULL,
    state        TEXT NOT NULL,
    taker_device BIGINT,
    nonce2       BYTEA NOT NULL,
    file_id      TEXT REFERENCES files(id) ON DELETE CASCADE, -- a used slot goes with its file
    created      BIGINT NOT NULL,
    expires      BIGINT NOT NULL,
    PRIMARY KEY (device_id, slot_id)
);
CREATE INDEX file_slots_contact ON file_slots(device_id, contact, state, created);
CREATE INDEX file_slots_file ON file_slots(file_id);
