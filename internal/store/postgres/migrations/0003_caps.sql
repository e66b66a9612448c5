-- Messaging and call capabilities a device publishes (the seed's 3.1.x strings).
ALTER TABLE devices ADD COLUMN caps TEXT NOT NULL DEFAULT '';
