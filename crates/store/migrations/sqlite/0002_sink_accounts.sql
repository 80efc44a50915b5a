-- Sink account mapping created by bankpipe (create_accounts = true), so a
-- later run reuses the account instead of creating another.
CREATE TABLE sink_accounts (
    sink               TEXT NOT NULL,
    source             TEXT NOT NULL,
    source_account_id  TEXT NOT NULL,
    remote_account_id  TEXT NOT NULL,
    PRIMARY KEY (sink, source, source_account_id)
);
