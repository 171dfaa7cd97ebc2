-- API keys limited to account-code namespaces: a JSON array of the prefixes a key may open,
-- move and read ledger accounts under (`["merchant-a-"]`), or NULL for a key limited by
-- scope alone.
ALTER TABLE api_keys ADD COLUMN account_namespaces TEXT;
