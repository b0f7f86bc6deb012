-- Several kabar instances on one database. A feed is polled by the instance
-- holding its lease; a host is spoken to by one instance at a time (the one
-- holding its host lease), so per-host politeness holds across instances.
-- Leases left by a crashed instance simply expire.
ALTER TABLE feeds
    -- The politeness key of the feed's URL: host, and port when not the default.
    ADD COLUMN host         TEXT NOT NULL DEFAULT '',
    ADD COLUMN lease_owner  TEXT,
    ADD COLUMN leased_until TIMESTAMPTZ;

CREATE INDEX feeds_due ON feeds (next_due);

CREATE TABLE host_leases (
    host           TEXT PRIMARY KEY,
    owner          TEXT NOT NULL,
    leased_until   TIMESTAMPTZ NOT NULL,
    -- Who held the host before the last claim, so a new holder knows it must
    -- leave the host a quiet interval first.
    previous_owner TEXT
);
