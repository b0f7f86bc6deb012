-- Polling state beyond the last poll: backoff, Retry-After and publisher
-- hints (not_before), disabling (410 Gone, failing too long), skipped ticks.
ALTER TABLE feeds
    ADD COLUMN state           TEXT NOT NULL DEFAULT 'active'
                               CHECK (state IN ('active', 'disabled')),
    ADD COLUMN disabled_reason TEXT,
    ADD COLUMN not_before      TIMESTAMPTZ,
    ADD COLUMN failing_since   TIMESTAMPTZ,
    ADD COLUMN skipped_ticks   BIGINT NOT NULL DEFAULT 0;
