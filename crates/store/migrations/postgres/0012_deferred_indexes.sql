-- Migration numbers stay aligned across backends. On SQLite a first
-- backfill keeps here the definitions of the indexes it deferred (issue
-- #12); PostgreSQL never defers (other workers read the indexes while one
-- loads), so the table stays empty. It is created for schema parity.
CREATE TABLE deferred_indexes (
    name  TEXT PRIMARY KEY,
    sql   TEXT NOT NULL
);
