-- The other leg of a transfer between two asset accounts (same source and
-- source transaction id, another account): Trupocket receives a transfer
-- whose both legs it maps as one `cashflow: transfer` (issue #11).
CREATE INDEX transactions_source_id ON transactions (source, source_transaction_id);
