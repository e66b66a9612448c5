-- Store-and-forward of SIP MESSAGE bodies (ciphertext) for devices.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    sender       TEXT NOT NULL,
    sender_dev   TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         BLOB NOT NULL,
    created      INTEGER NOT NULL
);

CREATE TABLE deliveries (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL,
    size       INTEGER NOT NULL
);
CREATE INDEX deliveries_device ON deliveries(device_id, seq);
CREATE INDEX deliveries_account ON deliveries(account_id);

-- Digest credentials of standard SIP devices (made by 'phonexd device add-sip').
CREATE TABLE sip_credentials (
    device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    username  TEXT NOT NULL UNIQUE,
    ha1       BLOB NOT NULL
);

-- Ratchet prekeys published by devices, handed to contacts one at a time.
CREATE TABLE prekeys (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,      -- signed, onetime, pq-signed, pq-onetime
    key_id     INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (device_id, kind, key_id)
);
