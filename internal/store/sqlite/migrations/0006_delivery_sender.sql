-- The sender of each waiting copy, so a device's copies can be read with
-- the senders taking turns from an index alone.
ALTER TABLE deliveries ADD COLUMN sender TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET sender=(SELECT sender FROM messages WHERE messages.id=deliveries.message_id);
CREATE INDEX deliveries_device_sender ON deliveries(device_id, sender, seq);

-- Bytes of waiting copies per account, kept by triggers (also on the
-- cascades from a removed device or account), so the storage check in the
-- write transaction reads one row instead of summing a backlog.
CREATE TABLE stored_bytes (
    account_id INTEGER PRIMARY KEY,
    bytes      INTEGER NOT NULL
);
INSERT INTO stored_bytes(account_id, bytes) SELECT account_id, SUM(size) FROM deliveries GROUP BY account_id;
CREATE TRIGGER deliveries_stored_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO stored_bytes(account_id, bytes) VALUES (NEW.account_id, NEW.size)
        ON CONFLICT(account_id) DO UPDATE SET bytes=bytes+excluded.bytes;
END;
CREATE TRIGGER deliveries_stored_delete AFTER DELETE ON deliveries BEGIN
    UPDATE stored_bytes SET bytes=bytes-OLD.size WHERE account_id=OLD.account_id;
END;
