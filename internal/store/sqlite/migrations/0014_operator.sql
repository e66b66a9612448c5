-- The operator service: policy overrides per account or group, groups of
-- accounts, contacts provisioned to accounts, and the audit log.

-- A counter of changes to what effective policies are made of (overrides,
-- groups, memberships), bumped by triggers, so a node caches effective
-- policies and sees a change made by another process within its poll.
CREATE TABLE policy_generation (
    id INTEGER PRIMARY KEY, -- the one row is 1
    n  INTEGER NOT NULL
);
INSERT INTO policy_generation(id, n) VALUES (1, 1);

CREATE TABLE policies (
    kind    TEXT NOT NULL,   -- 'account' or 'group'
    name    TEXT NOT NULL,   -- user@domain or group name
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (kind, name, key)
);

CREATE TABLE groups (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id   INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX group_members_account ON group_members(account_id);

-- A contact once provisioned to an account is recorded here for good: the
-- account may remove it, and provisioning again must not undo that.
CREATE TABLE provisioned_contacts (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    contact    TEXT NOT NULL,
    added      INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact)
);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    time   INTEGER NOT NULL, -- unix nanoseconds
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log(time);

CREATE TRIGGER policies_gen_insert AFTER INSERT ON policies BEGIN
    UPDATE policy_generation SET n=n+1 WHERE id=1;
END;
CREATE TRIGGER policies_gen_update AFTER UPDATE ON policies BEGIN
    UPDATE policy_generation SET n=n+1 WHERE id=1;
END;
CREATE TRIGGER policies_gen_delete AFTER DELETE ON policies BEGIN
    UPDATE policy_generation SET n=n+1 WHERE id=1;
END;
CREATE TRIGGER groups_gen_delete AFTER DELETE ON groups BEGIN
    DELETE FROM policies WHERE kind='group' AND name=OLD.name;
    UPDATE policy_generation SET n=n+1 WHERE id=1;
END;
CREATE TRIGGER group_members_gen_insert AFTER INSERT ON group_members BEGIN
    UPDATE policy_generation SET n=n+1 WHERE id=1;
END;
CREATE TRIGGER group_members_gen_delete AFTER DELETE ON group_members BEGIN
    UPDATE policy_generation SET n=n+1 WHERE id=1;
END;
-- An account's overrides go with it, so a new account of the same name
-- starts from the defaults.
CREATE TRIGGER accounts_policies_delete AFTER DELETE ON accounts BEGIN
    DELETE FROM policies WHERE kind='account' AND name=OLD.name;
END;
