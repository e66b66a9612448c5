-- A counter of changes to what message routing reads (accounts, their
-- status, active devices, contact lists), bumped by triggers, so a node can
-- cache those facts and check in its write transaction that none changed,
-- also when another process (the admin commands) made the change.
CREATE TABLE routing_generation (
    id INTEGER PRIMARY KEY, -- the one row is 1
    n  INTEGER NOT NULL
);
INSERT INTO routing_generation(id, n) VALUES (1, 1);
CREATE TRIGGER accounts_routing_insert AFTER INSERT ON accounts BEGIN
    UPDATE routing_generation SET n=n+1;
END;
CREATE TRIGGER accounts_routing_update AFTER UPDATE OF id, name, status ON accounts BEGIN
    UPDATE routing_generation SET n=n+1;
END;
CREATE TRIGGER accounts_routing_delete AFTER DELETE ON accounts BEGIN
    UPDATE routing_generation SET n=n+1;
END;
CREATE TRIGGER devices_routing_insert AFTER INSERT ON devices BEGIN
    UPDATE routing_generation SET n=n+1;
END;
CREATE TRIGGER devices_routing_update AFTER UPDATE OF id, account_id, name, suite, status ON devices BEGIN
    UPDATE routing_generation SET n=n+1;
END;
CREATE TRIGGER devices_routing_delete AFTER DELETE ON devices BEGIN
    UPDATE routing_generation SET n=n+1;
END;
CREATE TRIGGER contacts_routing_insert AFTER INSERT ON contacts BEGIN
    UPDATE routing_generation SET n=n+1;
END;
CREATE TRIGGER contacts_routing_update AFTER UPDATE ON contacts BEGIN
    UPDATE routing_generation SET n=n+1;
END;
CREATE TRIGGER contacts_routing_delete AFTER DELETE ON contacts BEGIN
    UPDATE routing_generation SET n=n+1;
END;

-- A delivered copy is forgotten by its sequence number; the message body
-- goes with its last copy. Without an index on message_id, both that check
-- and the foreign key's cascade scanned every waiting copy of every device
-- for each delivered one. The trigger makes forgetting one statement.
CREATE INDEX deliveries_message ON deliveries(message_id);
CREATE TRIGGER deliveries_forget_message AFTER DELETE ON deliveries
WHEN NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id=OLD.message_id)
BEGIN
    DELETE FROM messages WHERE id=OLD.message_id;
END;
