//! Tally's consortium risk-sharing log: a verifiable Merkle log of members, risk records and queries.
//!
//! (Threat model and design notes are completed as the crate grows.)

pub mod checkpoint;
pub mod error;
pub mod hash;
pub mod merkle;
pub mod note;
pub mod tiles;

pub use checkpoint::{open_checkpoint, Checkpoint, VerifiedCheckpoint};
pub use error::{Error, Refusal};
pub use hash::{empty_root, leaf_hash, node_hash, Hash, HASH_SIZE};
pub use merkle::{
    consistency_proof_plan, fold_range, inclusion_proof_plan, root_from_inclusion_proof, root_of,
    verify_consistency, verify_inclusion, Frontier, LeafRange, NodeId,
};
pub use note::{KeyType, Note, NoteSignature, SignerKey, VerifiedNote, VerifierKey};
pub use tiles::{MemoryTileStore, MerkleLog, Tile, TileId, TileStore, TILE_HEIGHT, TILE_WIDTH};
