-- Federation with other clusters: the peers pinned by the operator (their
-- CA, endpoints and the last delivery outcome), messages from local devices
-- queued for a peer until it commits them (and which node sends a peer's
-- queue, when several share the store), and the origin ids of messages
-- forwarded by peers, so a forward repeated after a lost answer is not
-- stored twice.
CREATE TABLE fed_peers (
    domain       TEXT PRIMARY KEY,
    ca           BLOB NOT NULL,
    ca_sha256    TEXT NOT NULL,
    api          TEXT NOT NULL,
    sip          TEXT NOT NULL,
    presented    TEXT NOT NULL DEFAULT '',
    presented_at INTEGER NOT NULL DEFAULT 0,
    added        INTEGER NOT NULL,
    delivered_at INTEGER NOT NULL DEFAULT 0,
    failed_at    INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE fed_outbound (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    domain       TEXT NOT NULL,
    sender       TEXT NOT NULL,
    sender_dev   TEXT NOT NULL,
    sender_cert  BLOB NOT NULL,
    recipient    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         BLOB NOT NULL,
    created      INTEGER NOT NULL
);
CREATE INDEX fed_outbound_domain ON fed_outbound(domain, id);
CREATE TABLE fed_seen (
    origin    TEXT NOT NULL,
    origin_id INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    PRIMARY KEY (origin, origin_id)
);
CREATE INDEX fed_seen_received ON fed_seen(received);
CREATE TABLE fed_leases (
    domain TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  INTEGER NOT NULL
);
