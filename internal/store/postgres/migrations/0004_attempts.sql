-- New-device logins are counted apart from the devices' unlocks, so that
-- guesses by someone without a device never lock out the account's devices.
ALTER TABLE accounts ADD COLUMN login_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN login_last_try BIGINT NOT NULL DEFAULT 0;

-- Single-use values of the API (solved proof-of-work challenges), kept until
-- they expire and pruned after.
CREATE TABLE spent_nonces (
    hash    BYTEA PRIMARY KEY,
    expires BIGINT NOT NULL
);
CREATE INDEX spent_nonces_expires ON spent_nonces(expires);
