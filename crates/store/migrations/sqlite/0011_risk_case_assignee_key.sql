-- Risk: a claimed case belongs to the API key that claimed it, not to the key's name (names
-- are not unique). `assignee` keeps the name for display; `assignee_key` holds the key id.
-- Cases claimed before this change have no key id: their owner is still found by name.
ALTER TABLE risk_cases ADD COLUMN assignee_key TEXT;
