-- Risk: at most one live list entry per kind, field and value, as the engine keeps them.
-- Adding an entry that exists replaces it: the older row is marked removed. Databases
-- written before this change may hold several live rows for one value; the engine loaded
-- the latest (by added_at, then id), so every older one is marked removed now, at the time
-- and by the author of the row that replaced it.
UPDATE risk_list_entries
SET removed_at = (
        SELECT later.added_at FROM risk_list_entries AS later
        WHERE later.kind = risk_list_entries.kind AND later.field = risk_list_entries.field
          AND later.value = risk_list_entries.value AND later.removed_at IS NULL
          AND (later.added_at > risk_list_entries.added_at
               OR (later.added_at = risk_list_entries.added_at AND later.id > risk_list_entries.id))
        ORDER BY later.added_at, later.id LIMIT 1
    ),
    removed_by = (
        SELECT later.added_by FROM risk_list_entries AS later
        WHERE later.kind = risk_list_entries.kind AND later.field = risk_list_entries.field
          AND later.value = risk_list_entries.value AND later.removed_at IS NULL
          AND (later.added_at > risk_list_entries.added_at
               OR (later.added_at = risk_list_entries.added_at AND later.id > risk_list_entries.id))
        ORDER BY later.added_at, later.id LIMIT 1
    )
WHERE removed_at IS NULL AND EXISTS (
    SELECT 1 FROM risk_list_entries AS later
    WHERE later.kind = risk_list_entries.kind AND later.field = risk_list_entries.field
      AND later.value = risk_list_entries.value AND later.removed_at IS NULL
      AND (later.added_at > risk_list_entries.added_at
           OR (later.added_at = risk_list_entries.added_at AND later.id > risk_list_entries.id))
);
CREATE UNIQUE INDEX risk_list_entries_one_live ON risk_list_entries (kind, field, value)
WHERE removed_at IS NULL;
