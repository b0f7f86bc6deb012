-- Feeds as configured, with their polling state.
CREATE TABLE feeds (
    id                   BIGSERIAL PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    url                  TEXT NOT NULL,
    region               TEXT NOT NULL,
    tags                 TEXT[] NOT NULL DEFAULT '{}',
    -- false once the feed is no longer in the config; its items stay.
    active               BOOLEAN NOT NULL DEFAULT TRUE,
    -- What the portal's feed says about itself, for atom:source.
    site_title           TEXT,
    site_link            TEXT,
    site_id              TEXT,
    site_updated         TIMESTAMPTZ,
    -- Validators for conditional GET; written in the same transaction as the poll's items.
    etag                 TEXT,
    last_modified        TEXT,
    last_polled_at       TIMESTAMPTZ,
    last_success_at      TIMESTAMPTZ,
    last_error_at        TIMESTAMPTZ,
    last_error_kind      TEXT,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_due             TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Items, deduplicated across all feeds by the SHA-256 of their normalized URL.
CREATE TABLE items (
    key               BYTEA PRIMARY KEY CHECK (octet_length(key) = 32),
    url               TEXT NOT NULL,
    title             TEXT NOT NULL,
    guid              TEXT,
    -- The feed's publication time, or first_seen when the feed gave none.
    published         TIMESTAMPTZ NOT NULL,
    published_by_feed BOOLEAN NOT NULL,
    updated           TIMESTAMPTZ NOT NULL,
    summary           TEXT,
    content_html      TEXT NOT NULL,
    authors           TEXT[] NOT NULL DEFAULT '{}',
    categories        TEXT[] NOT NULL DEFAULT '{}',
    image_url         TEXT,
    feed_id           BIGINT NOT NULL REFERENCES feeds (id),
    first_seen        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX items_newest ON items (published DESC, key DESC);
CREATE INDEX items_by_feed ON items (feed_id, published DESC);
