-- A first backfill into an empty store inserts into the primary key alone:
-- the secondary indexes of `transactions` are dropped and their definitions
-- kept here, in the same transaction, then built again before dedupe
-- (issue #12). A process killed in between leaves them here; the next one
-- to open the database builds them.
CREATE TABLE deferred_indexes (
    name  TEXT PRIMARY KEY,
    sql   TEXT NOT NULL
);
