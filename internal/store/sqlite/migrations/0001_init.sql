CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL,
    created     INTEGER NOT NULL,
    kdf         BLOB,
    salts       BLOB,
    sealed_oprf BLOB,
    auth_pub    BLOB,
    failures    INTEGER NOT NULL DEFAULT 0,
    last_try    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE codes (
    hash          BLOB PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    expires       INTEGER NOT NULL,
    claim_session TEXT,
    claim_until   INTEGER NOT NULL DEFAULT 0,
    used          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE devices (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    handle      TEXT NOT NULL UNIQUE,
    suite       TEXT NOT NULL,
    serial      TEXT NOT NULL,
    cert        BLOB NOT NULL,
    kex_cert    BLOB,
    not_after   INTEGER NOT NULL,
    status      TEXT NOT NULL,
    sealed_oprf BLOB NOT NULL,
    created     INTEGER NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    last_try    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX devices_account_name ON devices(account_id, name);

CREATE TABLE contacts (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    contact    TEXT NOT NULL,
    added      INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact)
);
