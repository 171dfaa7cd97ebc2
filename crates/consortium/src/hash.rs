//! SHA-256 hashes and the RFC 6962 / RFC 9162 leaf and interior node hashing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::Error;

/// Size of a hash in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree head.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// The hash held in `bytes`, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let array: [u8; HASH_SIZE] = bytes
            .try_into()
            .map_err(|_| Error::InvalidHash(format!("{} bytes, want {HASH_SIZE}", bytes.len())))?;
        Ok(Hash(array))
    }

    /// Parses standard base64 (as in checkpoints).
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|error| Error::InvalidHash(format!("base64: {error}")))?;
        Hash::from_slice(&bytes)
    }

    /// Parses lower or upper case hexadecimal.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        if text.len() != HASH_SIZE * 2 {
            return Err(Error::InvalidHash(format!(
                "{} hex digits, want {}",
                text.len(),
                HASH_SIZE * 2
            )));
        }
        let mut bytes = [0u8; HASH_SIZE];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| Error::InvalidHash("not hexadecimal".into()))?;
        Ok(Hash(bytes))
    }

    /// Standard base64 with padding.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Lower case hexadecimal.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Hash({})", self.to_hex())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

/// Prefix of a leaf hash input (RFC 6962 section 2.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash input (RFC 6962 section 2.1).
pub const NODE_PREFIX: u8 = 0x01;

/// The hash of a log entry: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    Hash(hasher.finalize().into())
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut input = [0u8; 1 + 2 * HASH_SIZE];
    input[0] = NODE_PREFIX;
    input[1..1 + HASH_SIZE].copy_from_slice(&left.0);
    input[1 + HASH_SIZE..].copy_from_slice(&right.0);
    Hash(Sha256::digest(input).into())
}

/// The root hash of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn leaf_and_node_hashes_match_rfc6962_test_data() {
        // The leaf hash of the empty entry and of 0x00, from the RFC 6962 reference tree.
        assert_eq!(
            leaf_hash(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            leaf_hash(&[0x00]).to_hex(),
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
        );
        assert_eq!(
            node_hash(&leaf_hash(b""), &leaf_hash(&[0x00])).to_hex(),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
    }

    #[test]
    fn hex_and_base64_round_trip() -> Result<(), Error> {
        let hash = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&hash.to_hex())?, hash);
        assert_eq!(Hash::from_base64(&hash.to_base64())?, hash);
        assert!(Hash::from_slice(&[0u8; 31]).is_err());
        Ok(())
    }

    #[test]
    fn hex_is_written_lower_case_and_read_in_either_case() -> Result<(), Error> {
        let text = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(Hash::from_hex(text)?, empty_root());
        assert_eq!(empty_root().to_hex(), text.to_lowercase());
        // A sign is not a digit, though `u8::from_str_radix` would take "+e" as 14.
        let signed = format!("+e{}", &text[2..]);
        assert!(Hash::from_hex(&signed).is_err());
        assert!(Hash::from_hex(&text[..62]).is_err());
        assert!(Hash::from_hex(&format!("{}zz", &text[..62])).is_err());
        Ok(())
    }
}
