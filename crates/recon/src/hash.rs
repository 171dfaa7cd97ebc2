//! The one hash of a transaction key, computed once per row: its top bits pick the partition, all of it feeds the hash table.

use std::hash::{BuildHasherDefault, Hasher};

/// Hashes key bytes to 64 bits (word-at-a-time multiply-rotate, murmur3 finaliser).
/// Deterministic across runs and machines, so partitioning and output order are reproducible.
#[inline]
pub fn hash_key(bytes: &[u8]) -> u64 {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut state: u64 = (bytes.len() as u64) ^ 0x243F_6A88_85A3_08D3;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        state = (state ^ u64::from_le_bytes(word))
            .wrapping_mul(MULTIPLIER)
            .rotate_left(29);
    }
    let remainder = chunks.remainder();
    if !remainder.is_empty() {
        let mut word = [0u8; 8];
        word[..remainder.len()].copy_from_slice(remainder);
        state = (state ^ u64::from_le_bytes(word))
            .wrapping_mul(MULTIPLIER)
            .rotate_left(29);
    }
    state ^= state >> 33;
    state = state.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    state ^= state >> 33;
    state = state.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    state ^= state >> 33;
    state
}

/// The partition of a key hash: its top `bits` bits.
#[inline]
pub fn partition_of(hash: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (hash >> (64 - bits)) as usize
    }
}

/// A hasher that passes a precomputed key hash through. The hash is rotated so that the
/// partition bits (the top bits, equal for every key of one partition) do not end up in the
/// control bits of the hash table.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrecomputedHasher(u64);

impl Hasher for PrecomputedHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(32)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if a type other than `HashedKey` is hashed with this hasher.
        self.0 = hash_key(bytes);
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Builds [`PrecomputedHasher`]s.
pub type PrecomputedState = BuildHasherDefault<PrecomputedHasher>;

/// A key borrowed from a partition buffer together with its hash.
#[derive(Debug, Clone, Copy)]
pub struct HashedKey<'a> {
    pub hash: u64,
    pub bytes: &'a [u8],
}

impl PartialEq for HashedKey<'_> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.bytes == other.bytes
    }
}

impl Eq for HashedKey<'_> {}

impl std::hash::Hash for HashedKey<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_spreads_partitions() {
        assert_eq!(hash_key(b"T000000000000001"), hash_key(b"T000000000000001"));
        assert_ne!(hash_key(b"a"), hash_key(b"a\0"));
        let mut counts = [0u32; 16];
        for index in 0..16_000 {
            let key = format!("T{index:015}");
            counts[partition_of(hash_key(key.as_bytes()), 4)] += 1;
        }
        assert!(
            counts.iter().all(|&count| (800..1200).contains(&count)),
            "{counts:?}"
        );
    }
}
