-- The transaction id becomes a unique index instead of the table's primary
-- key (issue #12), so that a first load can defer it like the other
-- indexes: its random keys (XXH3-128) made every commit of a bulk load
-- rewrite most of its leaves, the largest cost of a 1,000,000-row load.
-- SQLite cannot drop a primary key in place: the table is rebuilt, rows,
-- rowids and every index kept. `id` stays unique and NOT NULL.
CREATE TABLE transactions_rebuilt (
    id                     TEXT NOT NULL,
    source                 TEXT NOT NULL,
    source_account_id      TEXT NOT NULL,
    source_transaction_id  TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('posted', 'pending')),
    booking_date           TEXT NOT NULL,
    amount_minor           INTEGER NOT NULL,
    currency               TEXT NOT NULL,
    description            TEXT NOT NULL,
    merchant_name          TEXT,
    mcc                    INTEGER,
    category               TEXT,
    category_source        TEXT NOT NULL,
    kind                   TEXT NOT NULL,
    memo_only              BOOLEAN NOT NULL,
    duplicate_of           TEXT,
    superseded_by          TEXT,
    transacted_at          TEXT,
    posted_at              TEXT,
    updated_at             TEXT,
    source_status          TEXT NOT NULL,
    source_type            TEXT NOT NULL,
    external_id            TEXT,
    group_id               TEXT,
    source_categories      TEXT NOT NULL,
    memo                   TEXT,
    check_number           TEXT,
    source_fields          TEXT,
    fingerprint            TEXT NOT NULL,
    first_run              INTEGER NOT NULL,
    last_run               INTEGER NOT NULL,
    seen_pending           BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO transactions_rebuilt (rowid, id, source, source_account_id, source_transaction_id, status, booking_date,
    amount_minor, currency, description, merchant_name, mcc, category, category_source, kind, memo_only,
    duplicate_of, superseded_by, transacted_at, posted_at, updated_at, source_status, source_type, external_id,
    group_id, source_categories, memo, check_number, source_fields, fingerprint, first_run, last_run, seen_pending)
SELECT rowid, id, source, source_account_id, source_transaction_id, status, booking_date,
    amount_minor, currency, description, merchant_name, mcc, category, category_source, kind, memo_only,
    duplicate_of, superseded_by, transacted_at, posted_at, updated_at, source_status, source_type, external_id,
    group_id, source_categories, memo, check_number, source_fields, fingerprint, first_run, last_run, seen_pending
FROM transactions;
DROP TABLE transactions;
ALTER TABLE transactions_rebuilt RENAME TO transactions;
CREATE UNIQUE INDEX transactions_id ON transactions (id);
CREATE INDEX transactions_account_date ON transactions (source, source_account_id, booking_date);
CREATE INDEX transactions_superseded_by ON transactions (superseded_by) WHERE superseded_by IS NOT NULL;
CREATE INDEX transactions_pending ON transactions (source, source_account_id, booking_date) WHERE status = 'pending';
CREATE INDEX transactions_source_id ON transactions (source, source_transaction_id);
CREATE INDEX transactions_booking_order ON transactions (booking_date, id);
-- Every index exists again: definitions an interrupted first load left
-- here describe indexes of the table just dropped.
DELETE FROM deferred_indexes;
