//! The member map: every member's standing and counts in a small Merkle tree whose root each checkpoint commits, so a member's query count is provable in a few hashes.
//!
//! Leaves are the members sorted by name, each `(name, status, queries, publications)`,
//! hashed as RFC 9162 leaves (with a domain tag, so a leaf is never an entry). The
//! operator writes the map's size and root as an extension line of every checkpoint it
//! signs ([`MEMBER_MAP_EXTENSION`]), describing the state after exactly the checkpoint's
//! entries. A [`CountProof`] is that signed checkpoint, one leaf and its inclusion proof:
//! anyone holding the operator's key checks it offline. The map is derived from the
//! entries, so a mirror that replays them recomputes it ([`check_member_map`]) and
//! catches an operator that signed counts the log does not give.

use crate::checkpoint::{open_checkpoint, Checkpoint, VerifiedCheckpoint};
use crate::encoding::Writer;
use crate::hash::{leaf_hash, Hash};
use crate::merkle::{root_of, verify_inclusion};
use crate::note::VerifierKey;
use crate::proof_file::PROOF_LENGTH_MAX;
use crate::state::{ConsortiumState, MemberStatus};
use crate::Error;

/// First word of the checkpoint extension line `<tag> <members> <base64 root>`.
pub const MEMBER_MAP_EXTENSION: &str = "tally-consortium/member-map/v1";
/// Domain tag at the start of every leaf's bytes.
const LEAF_TAG: &str = "tally-consortium/member-leaf/v1";
const PROOF_HEADER: &str = "tally-consortium/member-count-proof/v1";

/// One member's leaf: what a count proof proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLeaf {
    /// The member's name.
    pub member: String,
    /// Active or suspended.
    pub status: MemberStatus,
    /// Queries logged for it since the log began.
    pub queries: u64,
    /// Records it published since the log began (retracted ones included).
    pub publications: u64,
}

fn status_name(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Active => "active",
        MemberStatus::Suspended => "suspended",
    }
}

impl MemberLeaf {
    /// Canonical bytes: tag, name, status, queries, publications.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer
            .string(LEAF_TAG)
            .string(&self.member)
            .u8(match self.status {
                MemberStatus::Active => 0,
                MemberStatus::Suspended => 1,
            })
            .u64(self.queries)
            .u64(self.publications);
        writer.finish()
    }

    /// The RFC 9162 leaf hash of its bytes.
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.to_bytes())
    }
}

/// The size and root of a member map, as a checkpoint commits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapCommitment {
    /// Number of members (leaves).
    pub members: u64,
    /// Root hash of the map.
    pub root: Hash,
}

impl MapCommitment {
    /// The checkpoint extension line.
    pub fn extension_line(&self) -> String {
        format!(
            "{MEMBER_MAP_EXTENSION} {} {}",
            self.members,
            self.root.to_base64()
        )
    }

    /// The commitment in a checkpoint's extension lines: exactly one must carry it.
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self, Error> {
        let malformed = |detail: &str| Error::MalformedCheckpoint(detail.to_owned());
        let mut found = checkpoint.extensions.iter().filter_map(|line| {
            line.strip_prefix(MEMBER_MAP_EXTENSION)
                .and_then(|rest| rest.strip_prefix(' '))
        });
        let line = found
            .next()
            .ok_or_else(|| malformed("no member map extension line"))?;
        if found.next().is_some() {
            return Err(malformed("two member map extension lines"));
        }
        let (members, root) = line
            .split_once(' ')
            .ok_or_else(|| malformed("member map line wants `<members> <root>`"))?;
        let canonical = !members.is_empty()
            && members.bytes().all(|byte| byte.is_ascii_digit())
            && (members == "0" || !members.starts_with('0'));
        let members = members
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| malformed("member map size is not a decimal"))?;
        let root = Hash::from_base64(root).map_err(|_| malformed("bad member map root"))?;
        Ok(MapCommitment { members, root })
    }
}

/// Every member's leaf, sorted by name, with the leaf hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMap {
    leaves: Vec<MemberLeaf>,
    hashes: Vec<Hash>,
}

impl MemberMap {
    /// The map of a replayed state (members are kept sorted by name).
    pub fn of(state: &ConsortiumState) -> Self {
        let leaves: Vec<MemberLeaf> = state
            .members()
            .iter()
            .map(|(name, member)| MemberLeaf {
                member: name.clone(),
                status: member.status,
                queries: state.query_count(name).total,
                publications: state.publication_count(name),
            })
            .collect();
        let hashes = leaves.iter().map(MemberLeaf::hash).collect();
        MemberMap { leaves, hashes }
    }

    /// The leaves, sorted by name.
    pub fn leaves(&self) -> &[MemberLeaf] {
        &self.leaves
    }

    /// Size and root.
    pub fn commitment(&self) -> MapCommitment {
        MapCommitment {
            members: self.leaves.len() as u64,
            root: root_of(&self.hashes),
        }
    }

    /// A member's leaf, its index and its inclusion proof, if it is a member.
    pub fn prove(&self, member: &str) -> Option<(u64, MemberLeaf, Vec<Hash>)> {
        let index = self
            .leaves
            .binary_search_by(|leaf| leaf.member.as_str().cmp(member))
            .ok()?;
        let mut proof = Vec::new();
        inclusion_path(index, &self.hashes, &mut proof);
        Some((index as u64, self.leaves[index].clone(), proof))
    }
}

/// RFC 9162 PATH(m, D[n]) over leaf hashes in memory, lowest sibling first; each
/// level hashes only the sibling subtree, so the whole proof costs `O(n)`.
fn inclusion_path(index: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    // The largest power of two below the size.
    let split = 1usize << (usize::BITS - 1 - (leaves.len() - 1).leading_zeros());
    let (left, right) = leaves.split_at(split);
    if index < split {
        inclusion_path(index, left, proof);
        proof.push(root_of(right));
    } else {
        inclusion_path(index - split, right, proof);
        proof.push(root_of(left));
    }
}

/// Checks that a checkpoint commits the member map of `state`, the state replayed from
/// exactly the checkpoint's entries: what a mirror does at each checkpoint.
pub fn check_member_map(state: &ConsortiumState, checkpoint: &Checkpoint) -> Result<(), Error> {
    if state.next_index() != checkpoint.size {
        return Err(Error::OutOfRange(format!(
            "the state is at {} entries, the checkpoint at {}",
            state.next_index(),
            checkpoint.size
        )));
    }
    let committed = MapCommitment::from_checkpoint(checkpoint)?;
    let computed = MemberMap::of(state).commitment();
    if committed != computed {
        return Err(Error::InvalidProof(format!(
            "the checkpoint of size {} commits a member map of {} members with root {}, \
             its entries give {} members with root {}",
            checkpoint.size,
            committed.members,
            committed.root.to_base64(),
            computed.members,
            computed.root.to_base64()
        )));
    }
    Ok(())
}

/// A member's counts as of a signed checkpoint: its leaf, the leaf's inclusion proof in
/// the member map the checkpoint commits, and the checkpoint itself.
///
/// ```text
/// tally-consortium/member-count-proof/v1
/// member <name>
/// status active|suspended
/// queries <n>
/// publications <n>
/// index <leaf index>
/// members <map size>
/// <base64 hash, lowest first>
/// ...
///
/// <the signed checkpoint note>
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountProof {
    /// The member's leaf.
    pub leaf: MemberLeaf,
    /// Its index in the map.
    pub index: u64,
    /// Number of members in the map.
    pub members: u64,
    /// The inclusion proof, lowest hash first.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint (note text) that commits the map.
    pub checkpoint: String,
}

fn malformed(detail: &str) -> Error {
    Error::InvalidProof(format!("count proof: {detail}"))
}

fn field<'a>(line: Option<&'a str>, label: &str) -> Result<&'a str, Error> {
    line.and_then(|line| line.strip_prefix(label))
        .and_then(|rest| rest.strip_prefix(' '))
        .filter(|value| !value.is_empty())
        .ok_or_else(|| malformed(&format!("want a line `{label} <value>`")))
}

fn number(line: Option<&str>, label: &str) -> Result<u64, Error> {
    let value = field(line, label)?;
    if !value.bytes().all(|byte| byte.is_ascii_digit())
        || (value.len() > 1 && value.starts_with('0'))
    {
        return Err(malformed(&format!("{label} is not a decimal")));
    }
    value
        .parse()
        .map_err(|_| malformed(&format!("{label} out of range")))
}

impl CountProof {
    /// The file text.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{PROOF_HEADER}\nmember {}\nstatus {}\nqueries {}\npublications {}\nindex {}\nmembers {}\n",
            self.leaf.member,
            status_name(self.leaf.status),
            self.leaf.queries,
            self.leaf.publications,
            self.index,
            self.members
        );
        for hash in &self.hashes {
            text.push_str(&hash.to_base64());
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    /// Parses the file text (the checkpoint's signature is checked by
    /// [`CountProof::verify`]).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before the checkpoint"))?;
        let lines: Vec<&str> = head.split('\n').collect();
        if lines.first() != Some(&PROOF_HEADER) {
            return Err(malformed(&format!("first line must be {PROOF_HEADER}")));
        }
        let member = field(lines.get(1).copied(), "member")?;
        if !crate::note::is_valid_key_name(member) {
            return Err(malformed("bad member name"));
        }
        let status = match field(lines.get(2).copied(), "status")? {
            "active" => MemberStatus::Active,
            "suspended" => MemberStatus::Suspended,
            _ => return Err(malformed("status is active or suspended")),
        };
        let queries = number(lines.get(3).copied(), "queries")?;
        let publications = number(lines.get(4).copied(), "publications")?;
        let index = number(lines.get(5).copied(), "index")?;
        let members = number(lines.get(6).copied(), "members")?;
        let hash_lines = lines.get(7..).unwrap_or_default();
        if hash_lines.len() > PROOF_LENGTH_MAX {
            return Err(malformed("too many hashes"));
        }
        let hashes = hash_lines
            .iter()
            .map(|line| Hash::from_base64(line))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CountProof {
            leaf: MemberLeaf {
                member: member.to_owned(),
                status,
                queries,
                publications,
            },
            index,
            members,
            hashes,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Checks the checkpoint's signature by the operator (and the witnesses' cosignatures
    /// given), then that the leaf is in the member map the checkpoint commits.
    pub fn verify(
        &self,
        operator: &VerifierKey,
        witnesses: &[VerifierKey],
    ) -> Result<VerifiedCheckpoint, Error> {
        let opened = open_checkpoint(&self.checkpoint, operator, witnesses)?;
        let committed = MapCommitment::from_checkpoint(&opened.checkpoint)?;
        if committed.members != self.members {
            return Err(malformed(&format!(
                "the checkpoint's map has {} members, the proof says {}",
                committed.members, self.members
            )));
        }
        verify_inclusion(
            self.index,
            self.members,
            &self.leaf.hash(),
            &self.hashes,
            &committed.root,
        )?;
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_paths_match_the_tiled_log_for_every_size() -> Result<(), Error> {
        use crate::tiles::{MemoryLogStore, MerkleLog};
        let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for size in 1..=leaves.len() {
            let mut log = MerkleLog::open(MemoryLogStore::new())?;
            log.append_batch(&leaves[..size])?;
            for index in 0..size {
                let mut proof = Vec::new();
                inclusion_path(index, &leaves[..size], &mut proof);
                assert_eq!(proof, log.inclusion_proof(index as u64, size as u64)?);
            }
        }
        Ok(())
    }
}
