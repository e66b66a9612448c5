-- The sender of each waiting copy, so a device's copies can be read with
-- the senders taking turns from an index alone.
ALTER TABLE deliveries ADD COLUMN sender TEXT NOT NULL DEFAULT '';
UPDATE deliveries d SET sender=m.sender FROM messages m WHERE m.id=d.message_id;
CREATE INDEX deliveries_device_sender ON deliveries(device_id, sender, seq);

-- Bytes of waiting copies per account, kept by triggers (also on the
-- cascades from a removed device or account), so the storage check in the
-- write transaction reads, and locks, one row instead of summing a backlog.
CREATE TABLE stored_bytes (
    account_id BIGINT PRIMARY KEY,
    bytes      BIGINT NOT NULL
);
INSERT INTO stored_bytes(account_id, bytes) SELECT account_id, SUM(size) FROM deliveries GROUP BY account_id;

CREATE FUNCTION deliveries_stored_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stored_bytes(account_id, bytes) VALUES (NEW.account_id, NEW.size)
        ON CONFLICT(account_id) DO UPDATE SET bytes=stored_bytes.bytes+excluded.bytes;
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_stored_insert AFTER INSERT ON deliveries
    FOR EACH ROW EXECUTE FUNCTION deliveries_stored_insert();

CREATE FUNCTION deliveries_stored_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stored_bytes SET bytes=bytes-OLD.size WHERE account_id=OLD.account_id;
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_stored_delete AFTER DELETE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION deliveries_stored_delete();
