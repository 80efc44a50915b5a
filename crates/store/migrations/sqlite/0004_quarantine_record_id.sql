-- The source's own id of a quarantined record, so that a record re-read by
-- a later run is recognised while distinct records with the same bad value
-- are all kept.
ALTER TABLE quarantine ADD COLUMN record_id TEXT;
