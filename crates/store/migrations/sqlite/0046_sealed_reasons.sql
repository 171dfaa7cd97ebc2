-- The reasons given for reading personal data in clear and for an erasure are free text that
-- may name people, so they are sealed with the personal-data keys where stored, and
-- `tally privacy reseal` seals them again under a new key (and seals those written in clear
-- before). The audit logs stay append-only: the reason is the one column that may change,
-- and only to a sealed value (`v1:<key id>:...`), never to other clear text.
DROP TRIGGER pii_reads_are_immutable_update;
CREATE TRIGGER pii_reads_are_immutable_update BEFORE UPDATE ON pii_reads
WHEN NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.api_key_id IS NOT OLD.api_key_id
    OR NEW.principal IS NOT OLD.principal OR NEW.customer_id IS NOT OLD.customer_id
    OR NEW.field IS NOT OLD.field OR NEW.reason NOT LIKE 'v1:%'
BEGIN SELECT RAISE(ABORT, 'pii_reads rows are immutable'); END;

DROP TRIGGER customer_erasures_are_immutable_update;
CREATE TRIGGER customer_erasures_are_immutable_update BEFORE UPDATE ON customer_erasures
WHEN NEW.customer_id IS NOT OLD.customer_id OR NEW.at IS NOT OLD.at
    OR NEW.api_key_id IS NOT OLD.api_key_id OR NEW.principal IS NOT OLD.principal
    OR NEW.reason NOT LIKE 'v1:%'
BEGIN SELECT RAISE(ABORT, 'customer_erasures rows are immutable'); END;
