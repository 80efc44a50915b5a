-- The last rate budget each sink origin advertised (X-RateLimit-*), so a
-- new run (or another worker) starts from it instead of from nothing.
CREATE TABLE rate_budgets (
    origin        TEXT PRIMARY KEY,
    rate_limit    BIGINT,
    remaining     BIGINT NOT NULL,
    reset_unix    BIGINT NOT NULL,
    updated_at    TEXT NOT NULL
);
