-- Administrators of the web panel and their sessions. Passwords are stored
-- as slow hashes, sessions by the hash of the cookie value. Their actions
-- go to the operator audit log (0014).
CREATE TABLE admins (
    name         TEXT PRIMARY KEY,
    pass_hash    TEXT NOT NULL,
    totp_secret  BYTEA NOT NULL,
    last_step    BIGINT NOT NULL DEFAULT 0,
    failures     BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    created      BIGINT NOT NULL
);

CREATE TABLE admin_sessions (
    id_hash BYTEA PRIMARY KEY,
    admin   TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE,
    csrf    BYTEA NOT NULL,
    created BIGINT NOT NULL,
    seen    BIGINT NOT NULL,
    auth_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_admin ON admin_sessions(admin);

-- The panel pages through accounts in byte order of their names.
CREATE INDEX accounts_name_c ON accounts(name COLLATE "C");
