-- The directory (docs/directory.md): numbers claimed by accounts, what each
-- publishes, pending ownership challenges and key replacements, notices for
-- devices, and the per-device query budget. No table records a lookup or
-- a discovery: dir_budget holds a count per device, nothing queried.

-- One number, one account: e164 is the key.
CREATE TABLE dir_entries (
    e164       TEXT PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE, -- discovery hash of the number
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    aor        TEXT NOT NULL,
    keys       BLOB NOT NULL,        -- JSON [{device, cert}]
    published  INTEGER NOT NULL
);
CREATE INDEX dir_entries_aor ON dir_entries(aor);
CREATE INDEX dir_entries_account ON dir_entries(account_id);

CREATE TABLE dir_claims (
    id         TEXT PRIMARY KEY,
    e164       TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL
);
CREATE INDEX dir_claims_account ON dir_claims(account_id);

CREATE TABLE dir_replacements (
    id         TEXT PRIMARY KEY,
    e164       TEXT NOT NULL UNIQUE, -- one pending replacement per number
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    aor        TEXT NOT NULL,
    keys       BLOB NOT NULL,
    requested  INTEGER NOT NULL,
    effective  INTEGER NOT NULL
);

CREATE TABLE dir_notices (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,       -- claim_code, replacement
    e164        TEXT NOT NULL,
    ref         TEXT NOT NULL,       -- the claim or replacement id
    code        TEXT NOT NULL DEFAULT '',
    from_device TEXT NOT NULL,
    effective   INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    expires     INTEGER NOT NULL
);
CREATE INDEX dir_notices_device ON dir_notices(device_id);

CREATE TABLE dir_budget (
    device_id    INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    window_start INTEGER NOT NULL,
    used         INTEGER NOT NULL
);
