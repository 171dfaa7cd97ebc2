-- The reasons given for reading personal data in clear and for an erasure are free text that
-- may name people, so they are sealed with the personal-data keys where stored, and
-- `tally privacy reseal` seals them again under a new key (and seals those written in clear
-- before). The audit logs stay append-only: the reason is the one column that may change,
-- and only to a sealed value (`v1:<key id>:...`), never to other clear text.
DROP TRIGGER pii_reads_are_immutable ON pii_reads;
CREATE TRIGGER pii_reads_are_not_deleted BEFORE DELETE ON pii_reads
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER pii_reads_are_immutable BEFORE UPDATE ON pii_reads
    FOR EACH ROW
    WHEN ((NEW.id, NEW.at, NEW.api_key_id, NEW.principal, NEW.customer_id, NEW.field)
        IS DISTINCT FROM
        (OLD.id, OLD.at, OLD.api_key_id, OLD.principal, OLD.customer_id, OLD.field)
        OR NEW.reason NOT LIKE 'v1:%')
    EXECUTE FUNCTION tally_refuse_change();

DROP TRIGGER customer_erasures_are_immutable ON customer_erasures;
CREATE TRIGGER customer_erasures_are_not_deleted BEFORE DELETE ON customer_erasures
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER customer_erasures_are_immutable BEFORE UPDATE ON customer_erasures
    FOR EACH ROW
    WHEN ((NEW.customer_id, NEW.at, NEW.api_key_id, NEW.principal)
        IS DISTINCT FROM (OLD.customer_id, OLD.at, OLD.api_key_id, OLD.principal)
        OR NEW.reason NOT LIKE 'v1:%')
    EXECUTE FUNCTION tally_refuse_change();
