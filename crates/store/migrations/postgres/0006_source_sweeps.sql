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
-- unless retried.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'in_flight', 'delivered', 'failed', 'replaced', 'skipped'));
