-- `export` and `replay` read every transaction in (booking_date, id)
-- order, a batch at a time (issue #12): an index in that order makes each
-- batch an index range instead of a sort of the rest of the table.
CREATE INDEX transactions_booking_order ON transactions (booking_date, id);
DROP INDEX transactions_booking_date;
