//! Text files for proofs, in the style of checkpoints: what `tally consortium verify` reads and the service will serve.
//!
//! ```text
//! tally-consortium/inclusion-proof/v1
//! index 17
//! size 1000
//! leaf <base64 leaf hash>
//! <base64 hash, lowest first>
//! ...
//! ```
//! and `tally-consortium/consistency-proof/v1`, `old <size1>`, `new <size2>`, then the
//! hashes. Every line ends with a newline; anything else is refused.

use crate::hash::Hash;
use crate::merkle::{verify_consistency, verify_inclusion};
use crate::Error;

const INCLUSION_HEADER: &str = "tally-consortium/inclusion-proof/v1";
const CONSISTENCY_HEADER: &str = "tally-consortium/consistency-proof/v1";
/// Most hashes in a proof file (a proof for a tree of 2^64 entries has at most 64).
pub const PROOF_LENGTH_MAX: usize = 64;

/// An inclusion proof with what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the entry.
    pub index: u64,
    /// Tree size the proof is for.
    pub size: u64,
    /// Leaf hash of the entry.
    pub leaf: Hash,
    /// The proof, lowest hash first.
    pub hashes: Vec<Hash>,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older size.
    pub old_size: u64,
    /// The newer size.
    pub new_size: u64,
    /// The proof.
    pub hashes: Vec<Hash>,
}

fn malformed(detail: &str) -> Error {
    Error::InvalidProof(format!("proof file: {detail}"))
}

fn number_line(line: Option<&str>, label: &str) -> Result<u64, Error> {
    let value = line
        .and_then(|line| line.strip_prefix(label))
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| malformed(&format!("want a line `{label} <number>`")))?;
    if value.is_empty()
        || !value.bytes().all(|byte| byte.is_ascii_digit())
        || (value.len() > 1 && value.starts_with('0'))
    {
        return Err(malformed(&format!("{label} is not a decimal")));
    }
    value
        .parse()
        .map_err(|_| malformed(&format!("{label} out of range")))
}

fn lines(text: &str, header: &str) -> Result<Vec<String>, Error> {
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| malformed("must end with a newline"))?;
    let lines: Vec<String> = body.split('\n').map(str::to_owned).collect();
    if lines.first().map(String::as_str) != Some(header) {
        return Err(malformed(&format!("first line must be {header}")));
    }
    Ok(lines)
}

fn hashes(lines: &[String]) -> Result<Vec<Hash>, Error> {
    if lines.len() > PROOF_LENGTH_MAX {
        return Err(malformed("too many hashes"));
    }
    lines.iter().map(|line| Hash::from_base64(line)).collect()
}

fn push_hashes(text: &mut String, hashes: &[Hash]) {
    for hash in hashes {
        text.push_str(&hash.to_base64());
        text.push('\n');
    }
}

impl InclusionProof {
    /// The file text.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{INCLUSION_HEADER}\nindex {}\nsize {}\nleaf {}\n",
            self.index,
            self.size,
            self.leaf.to_base64()
        );
        push_hashes(&mut text, &self.hashes);
        text
    }

    /// Parses the file text.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let lines = lines(text, INCLUSION_HEADER)?;
        let index = number_line(lines.get(1).map(String::as_str), "index")?;
        let size = number_line(lines.get(2).map(String::as_str), "size")?;
        let leaf = lines
            .get(3)
            .and_then(|line| line.strip_prefix("leaf "))
            .ok_or_else(|| malformed("want a line `leaf <base64>`"))?;
        Ok(InclusionProof {
            index,
            size,
            leaf: Hash::from_base64(leaf)?,
            hashes: hashes(lines.get(4..).unwrap_or_default())?,
        })
    }

    /// Verifies the proof against a root hash of a tree of `self.size` entries.
    pub fn verify(&self, root: &Hash) -> Result<(), Error> {
        verify_inclusion(self.index, self.size, &self.leaf, &self.hashes, root)
    }
}

impl ConsistencyProof {
    /// The file text.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{CONSISTENCY_HEADER}\nold {}\nnew {}\n",
            self.old_size, self.new_size
        );
        push_hashes(&mut text, &self.hashes);
        text
    }

    /// Parses the file text.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let lines = lines(text, CONSISTENCY_HEADER)?;
        Ok(ConsistencyProof {
            old_size: number_line(lines.get(1).map(String::as_str), "old")?,
            new_size: number_line(lines.get(2).map(String::as_str), "new")?,
            hashes: hashes(lines.get(3..).unwrap_or_default())?,
        })
    }

    /// Verifies the proof between two root hashes.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), Error> {
        verify_consistency(
            self.old_size,
            self.new_size,
            &self.hashes,
            old_root,
            new_root,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tiles::{MemoryLogStore, MerkleLog};

    #[test]
    fn proof_files_round_trip_and_verify() -> Result<(), Error> {
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
        log.append_batch(&leaves)?;
        let inclusion = InclusionProof {
            index: 17,
            size: 300,
            leaf: leaves[17],
            hashes: log.inclusion_proof(17, 300)?,
        };
        let parsed = InclusionProof::parse(&inclusion.to_text())?;
        assert_eq!(parsed, inclusion);
        parsed.verify(&log.root())?;
        let consistency = ConsistencyProof {
            old_size: 100,
            new_size: 300,
            hashes: log.consistency_proof(100, 300)?,
        };
        let parsed = ConsistencyProof::parse(&consistency.to_text())?;
        assert_eq!(parsed, consistency);
        parsed.verify(&log.root_at(100)?, &log.root())?;
        assert!(InclusionProof::parse("nonsense\n").is_err());
        assert!(
            InclusionProof::parse(&inclusion.to_text().replace("index 17", "index 017")).is_err()
        );
        Ok(())
    }
}
