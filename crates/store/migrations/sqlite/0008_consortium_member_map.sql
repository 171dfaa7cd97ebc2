-- Consortium log: the latest snapshot of the replayed state (members, proposals,
-- records, query counts, from which each checkpoint's member map is computed), signed
-- by the operator with the tree size and root it describes, so that opening a large log
-- replays only the entries after it. One row, replaced by each new snapshot.

CREATE TABLE consortium_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size INTEGER NOT NULL CHECK (tree_size >= 0),
    note TEXT NOT NULL,
    state BLOB NOT NULL
);
