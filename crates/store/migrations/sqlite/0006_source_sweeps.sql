-- The last full-history sweep of each source (issue #10): hand-kept
-- ledgers (Firefly) are back-dated and edited, so a source is walked from
-- the beginning every `full_sweep_days`, not only from its watermarks.
CREATE TABLE source_sweeps (
    source      TEXT PRIMARY KEY,
    swept_at    TEXT NOT NULL,
    run_id      BIGINT NOT NULL
);
-- Oldest still-pending row per account: where a sync window must start.
CREATE INDEX transactions_pending ON transactions (source, source_account_id, booking_date) WHERE status = 'pending';

-- `bankpipe deliveries skip` (issue #11): state `skipped`, never delivered
-- unless retried. SQLite cannot alter a CHECK: the table is rebuilt.
CREATE TABLE deliveries_new (
    sink            TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'delivered', 'failed', 'replaced', 'skipped')),
    remote_id       TEXT,
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT NOT NULL,
    marker          TEXT,
    request         TEXT,
    revision        INTEGER NOT NULL DEFAULT 0,
    replaces        TEXT,
    sent_version    TEXT,
    PRIMARY KEY (sink, transaction_id)
);
INSERT INTO deliveries_new SELECT sink, transaction_id, state, remote_id, reason, attempts, updated_at, marker,
    request, revision, replaces, sent_version FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_state ON deliveries (sink, state);
CREATE UNIQUE INDEX deliveries_remote ON deliveries (sink, remote_id);
