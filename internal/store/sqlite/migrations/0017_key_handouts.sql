-- One-time prekey handouts, counted in a sliding window per requesting
-- device and target device, and per target device. In the store, so every
-- node sharing it counts the same handouts.
CREATE TABLE key_handouts (
    requester INTEGER NOT NULL, -- device ids; no foreign keys: rows only
    target    INTEGER NOT NULL, -- live for the window
    at        INTEGER NOT NULL  -- Unix milliseconds
);
CREATE INDEX key_handouts_target ON key_handouts(target, at);
CREATE INDEX key_handouts_at ON key_handouts(at);
