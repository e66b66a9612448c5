-- The sender of each waiting copy, so a device's copies can be read with
-- the senders taking turns from an index alone.
ALTER TABLE deliveries ADD COLUMN sender TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET sender=(SELECT sender FROM messages WHERE messages.id=deliveries.message_id);
CREATE INDEX deliveries_device_sender ON deliveries(device_id, sender, seq);
