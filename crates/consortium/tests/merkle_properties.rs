//! Property tests: for random sizes m <= n every proof from the log verifies, and any flipped bit fails.

use proptest::prelude::*;
use tally_consortium::{
    leaf_hash, verify_consistency, verify_inclusion, Hash, MemoryLogStore, MerkleLog,
};

const SIZE_MAX: u64 = 600;

fn log_of(size: u64) -> (MerkleLog<MemoryLogStore>, Vec<Hash>) {
    let leaves: Vec<Hash> = (0..size)
        .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
        .collect();
    let mut log = MerkleLog::open(MemoryLogStore::new()).expect("open");
    log.append_batch(&leaves).expect("append");
    (log, leaves)
}

/// One log past the 65,536 boundary (three tile levels), shared by the large-size cases.
fn large_log() -> &'static (MerkleLog<MemoryLogStore>, Vec<Hash>) {
    static LOG: std::sync::OnceLock<(MerkleLog<MemoryLogStore>, Vec<Hash>)> =
        std::sync::OnceLock::new();
    LOG.get_or_init(|| log_of(LARGE_SIZE))
}

const LARGE_SIZE: u64 = 70_000;

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut flipped = *hash;
    flipped.0[bit / 8 % 32] ^= 1 << (bit % 8);
    flipped
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn inclusion_proofs_verify_and_any_flipped_bit_fails(
        size in 1..=SIZE_MAX,
        index_seed in any::<u64>(),
        tree_seed in any::<u64>(),
        bit in 0usize..256,
        element_seed in any::<usize>(),
    ) {
        let log_size = size + tree_seed % 50;
        let (log, leaves) = log_of(log_size);
        let index = index_seed % size;
        let root = log.root_at(size).expect("root");
        let proof = log.inclusion_proof(index, size).expect("proof");
        prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &proof, &root).is_ok());
        // A flipped bit in the leaf, the root or any proof element fails.
        let leaf = flip(&leaves[index as usize], bit);
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &root).is_err());
        prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &proof, &flip(&root, bit)).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let element = element_seed % bad.len();
            bad[element] = flip(&bad[element], bit);
            prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &bad, &root).is_err());
        }
        // So does a wrong index or size.
        if size > 1 {
            let other = (index + 1) % size;
            prop_assert!(verify_inclusion(other, size, &leaves[index as usize], &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_any_flipped_bit_fails(
        size2 in 1..=SIZE_MAX,
        size1_seed in any::<u64>(),
        bit in 0usize..256,
        element_seed in any::<usize>(),
    ) {
        let (log, _) = log_of(size2);
        let size1 = 1 + size1_seed % size2;
        let root1 = log.root_at(size1).expect("root1");
        let root2 = log.root_at(size2).expect("root2");
        let proof = log.consistency_proof(size1, size2).expect("proof");
        prop_assert!(verify_consistency(size1, size2, &proof, &root1, &root2).is_ok());
        prop_assert!(verify_consistency(size1, size2, &proof, &flip(&root1, bit), &root2).is_err());
        prop_assert!(verify_consistency(size1, size2, &proof, &root1, &flip(&root2, bit)).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let element = element_seed % bad.len();
            bad[element] = flip(&bad[element], bit);
            prop_assert!(verify_consistency(size1, size2, &bad, &root1, &root2).is_err());
        }
    }

    #[test]
    fn proofs_at_large_sizes_verify_and_any_flipped_bit_fails(
        size2 in 1..=LARGE_SIZE,
        size1_seed in any::<u64>(),
        index_seed in any::<u64>(),
        bit in 0usize..256,
        element_seed in any::<usize>(),
    ) {
        let (log, leaves) = large_log();
        let size1 = 1 + size1_seed % size2;
        let index = index_seed % size1;
        let root1 = log.root_at(size1).expect("root1");
        let root2 = log.root_at(size2).expect("root2");
        let inclusion = log.inclusion_proof(index, size1).expect("inclusion");
        prop_assert!(verify_inclusion(index, size1, &leaves[index as usize], &inclusion, &root1).is_ok());
        let consistency = log.consistency_proof(size1, size2).expect("consistency");
        prop_assert!(verify_consistency(size1, size2, &consistency, &root1, &root2).is_ok());
        if !inclusion.is_empty() {
            let mut bad = inclusion.clone();
            let element = element_seed % bad.len();
            bad[element] = flip(&bad[element], bit);
            prop_assert!(verify_inclusion(index, size1, &leaves[index as usize], &bad, &root1).is_err());
        }
        if !consistency.is_empty() {
            let mut bad = consistency.clone();
            let element = element_seed % bad.len();
            bad[element] = flip(&bad[element], bit);
            prop_assert!(verify_consistency(size1, size2, &bad, &root1, &root2).is_err());
        }
    }
}
