-- Digest logins of standard SIP phones by the address-of-record user
-- ("alice" for alice@domain), as any SIP provider has them. Several phones
-- of one account share the login name; each has its own password, which
-- tells them apart. sip_credentials keeps the per-device names of phones
-- added before.
CREATE TABLE phone_logins (
    device_id BIGINT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    username  TEXT NOT NULL,
    ha1       BYTEA NOT NULL
);
CREATE INDEX phone_logins_username ON phone_logins(username);
