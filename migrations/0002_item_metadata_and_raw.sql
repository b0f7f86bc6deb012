-- Metadata found by cleaning, and the item as received so changed rules can be re-applied.
ALTER TABLE items
    ADD COLUMN contributor  TEXT,
    ADD COLUMN source_note  TEXT,
    ADD COLUMN original_url TEXT,
    ADD COLUMN dateline     TEXT,
    ADD COLUMN raw          JSONB;
