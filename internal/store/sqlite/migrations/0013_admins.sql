-- Administrators of the web panel and their sessions. Passwords are stored
-- as slow hashes, sessions by the hash of the cookie value. Their actions
-- go to the operator audit log (0014).
CREATE TABLE admins (
    name         TEXT PRIMARY KEY,
    pass_hash    TEXT NOT NULL,
    totp_secret  BLOB NOT NULL,
    last_step    INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL
);

CREATE TABLE admin_sessions (
    id_hash BLOB PRIMARY KEY,
    admin   TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE,
    csrf    BLOB NOT NULL,
    created INTEGER NOT NULL,
    seen    INTEGER NOT NULL,
    auth_at INTEGER NOT NULL
);
CREATE INDEX admin_sessions_admin ON admin_sessions(admin);
