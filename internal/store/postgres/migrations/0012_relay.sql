-- A counter of changes to what message routing reads (accounts, their
-- status, active devices, contact lists), bumped by triggers, so a node can
-- cache those facts and check in its write transaction that none changed,
-- also when another node or an admin command made the change.
CREATE TABLE routing_generation (
    id BIGINT PRIMARY KEY, -- the one row is 1
    n  BIGINT NOT NULL
);
INSERT INTO routing_generation(id, n) VALUES (1, 1);

CREATE FUNCTION routing_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE routing_generation SET n=n+1 WHERE id=1;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_routing_insert AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION routing_bump();
CREATE TRIGGER accounts_routing_update AFTER UPDATE OF id, name, status ON accounts FOR EACH ROW EXECUTE FUNCTION routing_bump();
CREATE TRIGGER accounts_routing_delete AFTER DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION routing_bump();
CREATE TRIGGER devices_routing_insert AFTER INSERT ON devices FOR EACH ROW EXECUTE FUNCTION routing_bump();
CREATE TRIGGER devices_routing_update AFTER UPDATE OF id, account_id, name, suite, status ON devices FOR EACH ROW EXECUTE FUNCTION routing_bump();
CREATE TRIGGER devices_routing_delete AFTER DELETE ON devices FOR EACH ROW EXECUTE FUNCTION routing_bump();
CREATE TRIGGER contacts_routing_insert AFTER INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION routing_bump();
CREATE TRIGGER contacts_routing_update AFTER UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION routing_bump();
CREATE TRIGGER contacts_routing_delete AFTER DELETE ON contacts FOR EACH ROW EXECUTE FUNCTION routing_bump();

-- A delivered copy is forgotten by its sequence number; the message body
-- goes with its last copy. The body's row is locked first: two copies of
-- one message forgotten by concurrent transactions would otherwise each
-- see the other still there and both keep the body. After the lock, the
-- check reads what the other committed (a new snapshot per statement in
-- READ COMMITTED).
CREATE INDEX deliveries_message ON deliveries(message_id);
CREATE FUNCTION deliveries_forget_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM messages WHERE id=OLD.message_id FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id=OLD.message_id) THEN
        DELETE FROM messages WHERE id=OLD.message_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_forget_message AFTER DELETE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION deliveries_forget_message();
