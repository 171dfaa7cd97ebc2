-- Consortium log: the latest signed checkpoint, written by the operator after each batch
-- (once its replies are out) and at start, so that `tally consortium verify --database`
-- can check a database on its own against a root the operator signed. One row, replaced;
-- it may lag the stored tree by the batch in flight, never lead it.

CREATE TABLE consortium_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size INTEGER NOT NULL CHECK (tree_size >= 0),
    note TEXT NOT NULL
);
