-- One-time prekey handouts, counted in a sliding window per requesting
-- device and target device, and per target device. In the store, so every
-- node sharing it counts the same handouts. requester and target are
-- device ids (no foreign keys: rows only live for the window); at is Unix
-- time in ms. (No comments inside the CREATE: SQLite keeps its text.)
CREATE TABLE key_handouts (
    requester INTEGER NOT NULL,
    target    INTEGER NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX key_handouts_target ON key_handouts(target, at);
CREATE INDEX key_handouts_at ON key_handouts(at);
