-- The sources' own daily totals (issue #12): stored at ingest so export,
-- totals and status reconcile after sync and backfill exactly as replay
-- does (DESIGN §3). One row per (source, account or '*', date, currency);
-- a later fetch replaces the figure (late rows change a day's total).
CREATE TABLE source_daily_totals (
    source             TEXT NOT NULL,
    account            TEXT NOT NULL,
    booking_date       TEXT NOT NULL,
    currency           TEXT NOT NULL,
    -- As reported: exact decimal in major units, and the count.
    net_total          TEXT NOT NULL,
    transaction_count  BIGINT NOT NULL,
    -- JSON array of the source account ids the figure speaks for.
    scope              TEXT NOT NULL,
    -- Page URL or file, '#', JSON pointer of the entry.
    origin             TEXT NOT NULL,
    run_id             BIGINT NOT NULL,
    -- The last reconciliation: computed figures and match/mismatch.
    computed_net       TEXT,
    computed_count     BIGINT,
    status             TEXT,
    PRIMARY KEY (source, account, booking_date, currency)
);
CREATE INDEX source_daily_totals_date ON source_daily_totals (booking_date);
