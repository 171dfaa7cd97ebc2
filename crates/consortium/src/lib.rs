//! Tally's consortium risk-sharing log: a verifiable Merkle log of members, risk records and queries.
//!
//! Member institutions publish risk records about identifiers (phone, national id, card,
//! device, account) and query them; every admission, approval, suspension, publication,
//! retraction and query is an entry in an append-only Merkle log (RFC 6962 / RFC 9162
//! hashing) whose tree heads the operator signs as C2SP checkpoints, so any member or
//! witness can check inclusion and consistency and see that history was never rewritten.
//! This crate is the pure core: no I/O, no clock, no randomness it did not receive.
//!
//! # Map
//! - [`hash`], [`merkle`]: leaf and node hashing, tree heads, proof plans, verification.
//! - [`tiles`]: entries and stored subtree hashes (C2SP tlog-tiles layout) behind the
//!   [`LogStore`] trait, and [`MerkleLog`], which appends in batches and serves proofs.
//! - [`tile_path`]: the tlog-tiles paths (`tile/0/x001/234.p/5`, `tile/entries/...`), the
//!   tiles of a tree size and entry bundles, as existing tlog clients fetch them.
//! - [`check`]: a stored log re-read against its tree (entries, tiles, a trusted root),
//!   naming the first thing wrong.
//! - [`note`], [`checkpoint`]: C2SP signed-note, tlog-checkpoint and tlog-cosignature.
//! - [`follower`]: the pure core of a mirror or witness: follow checkpoints, detect forks.
//! - [`proof_file`]: the text files of inclusion and consistency proofs.
//! - [`encoding`], [`entry`]: canonical bytes of log entries and signed member requests.
//! - [`entry_range`]: a range of entries framed in one body, as the log serves it.
//! - [`identifier`]: normalisation and blinding of identifiers.
//! - [`state`]: the rules as a state machine replayed from entries; queries and quotas.
//! - [`member_map`]: members and their query counts in a Merkle tree whose root every
//!   checkpoint commits, so a member's count is provable in a few hashes.
//! - [`snapshot`]: the replayed state at a tree size, signed, so opening replays less.
//! - [`operator`]: rules, log and checkpoint key together, as the service drives them.
//!
//! # Threat model of identifier blinding, and the choice of a keyed hash
//! Identifier spaces are small: a country's mobile numbers are ~10^9, national ids and
//! card numbers have structure and check digits. Any *unkeyed* hash of them is reversed
//! by enumeration in hours, so hashing alone protects nobody.
//!
//! Who might try to read identifiers back, and what stops them:
//! - **Anyone holding a copy of the log** (mirrors, witnesses, auditors, a former member,
//!   a leaked backup): identifiers are `HMAC-SHA-256(consortium blinding key, domain ||
//!   kind || normalised identifier)`. Without the key, enumeration is impossible.
//! - **A member**: members never hold the blinding key and never call a blinding
//!   service. A member's signed request names a salted commitment to the normalised
//!   identifier ([`IdentifierOpening::commitment`]); it sends the identifier and the
//!   salt alongside over its authenticated channel; the operator checks that they open
//!   the commitment, blinds, and logs the signed request together with the blinded
//!   identifier ([`Operator::publish`], [`Operator::query`]). So every use of the
//!   blinding oracle *is* a logged request — member, time, blinded identifier, result
//!   count — counted against the member's daily quota by the replayed rules and visible
//!   to every member. Guessing is online, rate-limited and traceable: the property an
//!   OPRF would also give. The commitment is salted, so a log reader cannot test guesses
//!   against it either.
//! - **Residual leak, inherent to a readable log with a deterministic blind:** once a
//!   member has queried an identifier, it knows that identifier's blinded value (it is in
//!   its own logged query) and can watch the log for new records about it without further
//!   queries. The first look is logged and counted; later looks are not. Closing this
//!   needs records that only the operator can link (per-record randomised encryption),
//!   at the cost of members no longer being able to replay query results themselves.
//! - **The operator** holds the key and sees identifiers in transit. It is trusted not to
//!   retain them (the service must keep no clear identifier) and to blind honestly (the
//!   link between a commitment and its blinded value is attested by the operator's
//!   checkpoint signature, not checkable by others); it cannot forge or hide entries,
//!   because members verify signed checkpoints, inclusion and consistency, and every
//!   request carries the member's own signature.
//!
//! Why not an OPRF (RFC 9497, the `voprf` crate) now: its gain over the keyed hash is
//! that the operator would not see identifiers in transit (members blind locally), at
//! the price of a two-message protocol per identifier, elliptic-curve code in every
//! member's client, a pre-1.0 dependency, and an OPRF evaluation that is a separate
//! step from the logged request (so it would need its own logging). The rate limiting
//! and traceability, which stop a member from enumerating the log, are the same. The
//! log format does not depend on the choice: a [`BlindedIdentifier`] is a kind, a key
//! epoch and 32 bytes, so an OPRF (ristretto255-SHA512 output hashed to 32 bytes) can
//! replace the HMAC under a new key epoch without changing entries. Key rotation (not
//! implemented yet: the operator holds one key): a new epoch blinds new requests, and
//! records under an old epoch stay queryable until they expire if queries are blinded
//! under every epoch still live.
//!
//! # What storage needs from this crate
//! The store implements [`LogStore`]: the tree size, a tile by id, an entry by index, and
//! [`LogStore::commit`], which writes one [`Commit`] (entry bytes, touched tiles, new
//! size) in one transaction. Tables: entries `(index, bytes)`, tiles `(level, index,
//! bytes)` (a tile is `Tile::to_bytes`, at most 272 hashes) and the size; the operator
//! signs a checkpoint after each commit. For an async store, the proof *plans*
//! ([`inclusion_proof_plan`], [`consistency_proof_plan`], [`LeafRange::nodes`]) say which
//! node hashes to fetch and [`fold_range`] finishes the proof. [`MerkleLog::audit`] and
//! [`MerkleLog::audit_entries`] find an edited hash, tile or entry. The trait is
//! synchronous on purpose: appends are serialised through one writer anyway, so an sqlx
//! store can serve it from a dedicated writer task over one connection, while readers
//! use the proof plans from async code. Tally does this: `tally_store::consortium` has a
//! `SqlLogStore` on its own connection and current-thread runtime, and
//! `tally_service::consortium` runs the operator on a dedicated thread that
//! group-commits whatever requests are queued (one transaction, one checkpoint per
//! batch) and serves proofs and reads after the writes queued before them. A store may also keep one signed state snapshot ([`LogStore::read_snapshot`],
//! [`LogStore::write_snapshot`]; [`snapshot`]): [`Operator::open`] starts from it and
//! replays only the entries after it.
//!
//! # Throughput
//! Hashing and tiles are not the bottleneck (millions of entries per second in
//! memory); checking each member request's Ed25519 signature is (tens of microseconds
//! per request per core). [`Operator::append`] checks a batch's signatures on every core
//! before applying the rules in order on one.

pub mod check;
pub mod checkpoint;
pub mod encoding;
pub mod entry;
pub mod entry_range;
pub mod error;
pub mod follower;
pub mod hash;
pub mod identifier;
pub mod member_map;
pub mod merkle;
pub mod note;
pub mod operator;
pub mod proof_file;
pub mod snapshot;
pub mod state;
pub mod tile_path;
pub mod tiles;

pub use check::{check_stored_log, Finding, StoreCheck};
pub use checkpoint::{open_checkpoint, Checkpoint, VerifiedCheckpoint};
pub use entry::{
    Action, Entry, EntryBody, EntryKind, Genesis, MemberKey, Quorum, RiskType, SignedRequest,
    UnixSeconds,
};
pub use entry_range::{decode_entry_range, encode_entry_range};
pub use error::{Error, Refusal};
pub use follower::{ForkEvidence, LogFollower, Observation};
pub use hash::{empty_root, leaf_hash, node_hash, Hash, HASH_SIZE};
pub use identifier::{
    normalise, BlindedIdentifier, BlindingKey, IdentifierCommitment, IdentifierKind,
    IdentifierOpening, NormalisedIdentifier,
};
pub use member_map::{check_member_map, CountProof, MapCommitment, MemberLeaf, MemberMap};
pub use merkle::{
    consistency_proof_plan, fold_range, inclusion_proof_plan, root_from_inclusion_proof, root_of,
    verify_consistency, verify_inclusion, Frontier, LeafRange, NodeId,
};
pub use note::{KeyType, Note, NoteSignature, SignerKey, VerifiedNote, VerifierKey};
pub use operator::{replay_batch, EntryOutcome, Operator, QueryAnswer};
pub use proof_file::{ConsistencyProof, InclusionProof};
pub use snapshot::StoredSnapshot;
pub use state::{ConsortiumState, Effect, Member, MemberStatus, QueryCount, RiskRecord};
pub use tile_path::{
    decode_entry_bundle, encode_entry_bundle, encode_tile_index, tiles_of_tree, LevelTiles,
    TileResource,
};
pub use tiles::{
    Commit, LogStore, MemoryLogStore, MerkleLog, Tile, TileId, TILE_HEIGHT, TILE_WIDTH,
};
