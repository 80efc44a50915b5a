-- bankpipe state, PostgreSQL (scale-out: several workers share one database). Money is integer ISO 4217
-- minor units + currency code, never REAL. Dates are YYYY-MM-DD text,
-- instants RFC 3339 UTC text (both sort correctly as text).

CREATE TABLE runs (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('sync', 'backfill')),
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    outcome       TEXT NOT NULL DEFAULT 'running',
    pages         BIGINT NOT NULL DEFAULT 0,
    records       BIGINT NOT NULL DEFAULT 0,
    inserted      BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    unchanged     BIGINT NOT NULL DEFAULT 0,
    quarantined   BIGINT NOT NULL DEFAULT 0,
    superseded    BIGINT NOT NULL DEFAULT 0,
    duplicates    BIGINT NOT NULL DEFAULT 0,
    message       TEXT
);

CREATE TABLE watermarks (
    source             TEXT NOT NULL,
    source_account_id  TEXT NOT NULL,
    booking_date       TEXT NOT NULL,
    run_id             BIGINT NOT NULL,
    updated_at         TEXT NOT NULL,
    PRIMARY KEY (source, source_account_id)
);

CREATE TABLE accounts (
    source                  TEXT NOT NULL,
    source_account_id       TEXT NOT NULL,
    account_type            TEXT,
    subtype                 TEXT,
    name                    TEXT,
    mask                    TEXT,
    currency                TEXT,
    balance_minor           BIGINT,
    available_minor         BIGINT,
    credit_limit_minor      BIGINT,
    opening_minor           BIGINT,
    opening_date            TEXT,
    updated_at              TEXT,
    PRIMARY KEY (source, source_account_id)
);

CREATE TABLE transactions (
    id                     TEXT PRIMARY KEY,
    source                 TEXT NOT NULL,
    source_account_id      TEXT NOT NULL,
    source_transaction_id  TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('posted', 'pending')),
    booking_date           TEXT NOT NULL,
    amount_minor           BIGINT NOT NULL,
    currency               TEXT NOT NULL,
    description            TEXT NOT NULL,
    merchant_name          TEXT,
    mcc                    BIGINT,
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
    first_run              BIGINT NOT NULL,
    last_run               BIGINT NOT NULL
);
CREATE INDEX transactions_account_date ON transactions (source, source_account_id, booking_date);
CREATE INDEX transactions_booking_date ON transactions (booking_date);

CREATE TABLE dedupe_links (
    transaction_id  TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('superseded', 'duplicate')),
    target_id       TEXT NOT NULL,
    reason          TEXT NOT NULL,
    run_id          BIGINT NOT NULL,
    PRIMARY KEY (transaction_id, kind)
);
CREATE INDEX dedupe_links_target ON dedupe_links (target_id);

CREATE TABLE quarantine (
    id        BIGSERIAL PRIMARY KEY,
    run_id    BIGINT NOT NULL,
    source    TEXT NOT NULL,
    file      TEXT NOT NULL,
    pointer   TEXT NOT NULL,
    field     TEXT NOT NULL,
    value     TEXT NOT NULL,
    reason    TEXT NOT NULL
);

CREATE TABLE backfill_windows (
    source        TEXT NOT NULL,
    window_from   TEXT NOT NULL,
    window_to     TEXT NOT NULL,
    run_id        BIGINT NOT NULL,
    transactions  BIGINT NOT NULL,
    PRIMARY KEY (source, window_from, window_to)
);

-- The sinks' outbox (issue #6): one row per (sink, transaction).
CREATE TABLE deliveries (
    sink            TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'delivered', 'failed')),
    remote_id       TEXT,
    reason          TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (sink, transaction_id)
);
CREATE INDEX deliveries_state ON deliveries (sink, state);
