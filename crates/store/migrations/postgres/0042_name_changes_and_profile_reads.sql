-- A customer's name can be changed through the risk gate like the phone, address and bank
-- card; and the delivery address and bound bank card can be read in clear, each read on the
-- `pii_reads` audit log like the original fields'.
ALTER TABLE customer_profile_changes DROP CONSTRAINT customer_profile_changes_field_check;
ALTER TABLE customer_profile_changes ADD CONSTRAINT customer_profile_changes_field_check
    CHECK (field IN ('name', 'phone', 'address', 'bank_card'));
ALTER TABLE pii_reads DROP CONSTRAINT pii_reads_field_check;
ALTER TABLE pii_reads ADD CONSTRAINT pii_reads_field_check
    CHECK (field IN ('name', 'phone', 'national_id', 'date_of_birth', 'address', 'bank_card'));
