//! State snapshots: the replayed state at a tree size, signed by the operator with the tree's root, so opening a large log replays only the entries after it.
//!
//! A snapshot is the state's canonical bytes ([`ConsortiumState::encode`]) and a signed
//! note (C2SP signed-note, the operator's key) over
//!
//! ```text
//! tally-consortium/snapshot/v1
//! <origin>
//! <tree size>
//! <base64 root hash of the tree of that size>
//! <base64 SHA-256 of the state bytes>
//! ```
//!
//! Its first line is not an origin and its second not a size, so it can never pass for a
//! checkpoint. On opening, the operator checks the signature with its own key, that the
//! root is the stored tree's root at that size (the tiles), and the digest; an edited
//! snapshot, or one of another history, refuses the start like an edited entry does.
//! What a snapshot does not re-check: the entries before it (their leaf hashes and
//! signatures were checked when they were appended; mirrors recompute them).

use sha2::{Digest, Sha256};

use crate::hash::Hash;
use crate::note::{Note, SignerKey, VerifierKey};
use crate::state::ConsortiumState;
use crate::Error;

const SNAPSHOT_HEADER: &str = "tally-consortium/snapshot/v1";

/// A snapshot as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The tree size it describes.
    pub size: u64,
    /// The signed note (text).
    pub note: String,
    /// The state's canonical bytes.
    pub state: Vec<u8>,
}

fn statement(origin: &str, size: u64, root: &Hash, state: &[u8]) -> String {
    let digest = Hash(Sha256::digest(state).into());
    format!(
        "{SNAPSHOT_HEADER}\n{origin}\n{size}\n{}\n{}\n",
        root.to_base64(),
        digest.to_base64()
    )
}

/// Seals the state replayed from the first `state.next_index()` entries of the tree
/// whose root at that size is `root`.
pub fn seal(
    state: &ConsortiumState,
    root: &Hash,
    signer: &SignerKey,
) -> Result<StoredSnapshot, Error> {
    let bytes = state.encode();
    let mut note = Note::new(&statement(signer.name(), state.next_index(), root, &bytes))?;
    note.sign(signer, 0)?;
    Ok(StoredSnapshot {
        size: state.next_index(),
        note: note.to_string(),
        state: bytes,
    })
}

/// Opens a stored snapshot: the operator's signature, the tree's root at its size
/// (`root`, read from the tiles) and the state's digest must all agree.
pub fn open(
    stored: &StoredSnapshot,
    operator: &VerifierKey,
    root: &Hash,
) -> Result<ConsortiumState, Error> {
    let note = Note::parse(&stored.note)?;
    note.verify(std::slice::from_ref(operator))?;
    if note.text != statement(operator.name(), stored.size, root, &stored.state) {
        return Err(Error::Storage(format!(
            "the snapshot at size {} is not the signed one, or not of this log",
            stored.size
        )));
    }
    let state = ConsortiumState::decode(&stored.state)?;
    if state.next_index() != stored.size {
        return Err(Error::Storage(
            "the snapshot's state is at another size".into(),
        ));
    }
    Ok(state)
}
