-- The digest of what a zone's desired records were planned from (the domains' settings,
-- their DKIM keys, the TLSA digests, the planner's version): a run that finds it unchanged
-- and the zone's serial unchanged knows the zone is in sync without planning its records.
-- NULL for a state written before this column, or for a zone whose inputs are not cached.
ALTER TABLE zone_state ADD COLUMN inputs_digest TEXT NULL;
