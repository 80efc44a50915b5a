-- Migration numbers stay aligned across backends. On SQLite the transaction
-- id became a unique index a first load can defer (issue #12); PostgreSQL
-- never defers, and its primary key stays as it is.
SELECT 1;
