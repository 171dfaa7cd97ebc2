-- The last checkpoint of a consortium log this member verified (the operator's signature,
-- and consistency with the one verified before), by the operator's public key
-- (`[consortium_member] log_key` as configured). Loaded when the member starts, so that
-- a restarted member goes on refusing a checkpoint older than, or of another history than,
-- the one it verified last, instead of trusting the first one it sees again. `checkpoint`
-- is the signed note as the log served it; `size` its tree size, never lowered.
CREATE TABLE consortium_member_checkpoints (
    log_key TEXT PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    size BIGINT NOT NULL CHECK (size >= 0),
    verified_at BIGINT NOT NULL
);
