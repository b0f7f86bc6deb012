-- What a running daemon wants admins to see through `kabar status`, e.g. a refused reload.
CREATE TABLE daemon_notes (
    topic   TEXT PRIMARY KEY,
    message TEXT NOT NULL,
    at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
