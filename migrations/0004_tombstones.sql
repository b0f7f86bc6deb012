-- Keys of pruned items, so that a feed still listing them does not bring them back.
CREATE TABLE tombstones (
    key       BYTEA PRIMARY KEY CHECK (octet_length(key) = 32),
    pruned_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
