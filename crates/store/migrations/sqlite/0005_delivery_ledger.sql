-- The delivery ledger keeps what was sent (DESIGN §4.6-4.7, §6; issue #9).
--
-- deliveries: the idempotency marker carried by the sink row and the exact
-- request committed with `in_flight` before the request leaves; `revision`
-- counts corrections (each has a marker of its own); `replaces` is the sink
-- row a correction deletes once its replacement exists; `sent_version`
-- (status|amount_minor|booking_date) is what the sink holds, so a later
-- source change is detected; state `replaced`: a delivered row whose sink
-- row another delivery replaces. SQLite cannot alter a CHECK: rebuilt.
CREATE TABLE deliveries_new (
    sink            TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'delivered', 'failed', 'replaced')),
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
INSERT INTO deliveries_new (sink, transaction_id, state, remote_id, reason, attempts, updated_at)
    SELECT sink, transaction_id, state, remote_id, reason, attempts, updated_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_state ON deliveries (sink, state);

-- Earlier versions could record one sink row for two deliveries (twins
-- reconciled to the same row): keep the first, queue the others again.
UPDATE deliveries SET state = 'pending', remote_id = NULL,
    reason = 'queued again: its sink row was also recorded for another delivery'
WHERE remote_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM deliveries o
    WHERE o.sink = deliveries.sink AND o.remote_id = deliveries.remote_id
      AND o.transaction_id < deliveries.transaction_id);

-- Rows sent by earlier versions carry no marker: their outcome cannot be
-- reconciled, so they are not resent blindly either.
UPDATE deliveries SET state = 'failed',
    reason = 'in flight when bankpipe was upgraded: sent without an idempotency marker, so it cannot be reconciled; check the sink, then retry it if it is missing'
WHERE state = 'in_flight';

-- What the sink holds of rows delivered before: taken as their current version.
UPDATE deliveries SET sent_version = (
    SELECT t.status || '|' || t.amount_minor || '|' || t.booking_date
    FROM transactions t WHERE t.id = deliveries.transaction_id)
WHERE state = 'delivered';

-- A sink row is recorded for at most one delivery.
CREATE UNIQUE INDEX deliveries_remote ON deliveries (sink, remote_id);

-- DESIGN §4.6: a row seen pending under its own id settles itself and
-- supersedes nothing else (sticky once set).
ALTER TABLE transactions ADD COLUMN seen_pending BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE transactions SET seen_pending = TRUE WHERE status = 'pending';
CREATE INDEX transactions_superseded_by ON transactions (superseded_by) WHERE superseded_by IS NOT NULL;
