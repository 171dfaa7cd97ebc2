-- Consortium log (tally-consortium): entries, tiles of stored subtree hashes (C2SP
-- tlog-tiles layout plus level-4 hashes) and the tree size. Written only by the log
-- operator, one commit per batch; rows are never updated except a tile widening.

CREATE TABLE consortium_entries (
    entry_index BIGINT PRIMARY KEY,
    bytes BYTEA NOT NULL
);

CREATE TABLE consortium_tiles (
    level BIGINT NOT NULL,
    tile_index BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (level, tile_index)
);

CREATE TABLE consortium_log (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    tree_size BIGINT NOT NULL CHECK (tree_size >= 0)
);
INSERT INTO consortium_log (id, tree_size) VALUES (1, 0);
