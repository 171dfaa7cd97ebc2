//! Merkle tree algorithms of RFC 9162 (section 2.1): tree heads, proof plans and proof verification.
//!
//! Proof *generation* is split in two so that it works over any storage, synchronous or
//! not: [`inclusion_proof_plan`] and [`consistency_proof_plan`] say which subtree hashes a
//! proof is made of, as ranges of leaves; each range is covered by a few perfect subtrees
//! ([`NodeId`]) that a store keeps once and never rewrites; [`fold_range`] turns their
//! hashes into the range's hash. Verification needs no storage at all.

use crate::hash::{node_hash, Hash};
use crate::Error;

/// A perfect subtree: the `2^level` leaves starting at leaf `index << level`.
///
/// Once the log has grown past its last leaf the hash of a node never changes, which is
/// what lets a store keep it instead of recomputing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 for a leaf).
    pub level: u8,
    /// Position among the nodes of that level, from the left.
    pub index: u64,
}

impl NodeId {
    /// First leaf covered by the node.
    pub fn first_leaf(self) -> u64 {
        self.index << self.level
    }

    /// One past the last leaf covered by the node.
    pub fn end_leaf(self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// A range of leaves `[start, end)` whose RFC 9162 hash (MTH) is one element of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafRange {
    /// First leaf.
    pub start: u64,
    /// One past the last leaf.
    pub end: u64,
}

impl LeafRange {
    /// The perfect subtrees that cover the range, left to right, largest first.
    ///
    /// Every range in a proof plan starts at a multiple of a power of two at least as
    /// large as its length, so this is the binary decomposition of its length.
    pub fn nodes(self) -> Vec<NodeId> {
        let mut nodes = Vec::new();
        let mut start = self.start;
        while start < self.end {
            let remaining = self.end - start;
            let mut level = 63 - remaining.leading_zeros();
            if start != 0 {
                level = level.min(start.trailing_zeros());
            }
            nodes.push(NodeId {
                level: level as u8,
                index: start >> level,
            });
            start += 1u64 << level;
        }
        nodes
    }
}

/// The hash of a range from the hashes of its [`LeafRange::nodes`], in the same order.
pub fn fold_range(node_hashes: &[Hash]) -> Result<Hash, Error> {
    let (last, rest) = node_hashes
        .split_last()
        .ok_or_else(|| Error::Internal("an empty range has no hash".into()))?;
    let mut hash = *last;
    for left in rest.iter().rev() {
        hash = node_hash(left, &hash);
    }
    Ok(hash)
}

/// The largest power of two strictly smaller than `size` (which must be at least 2).
fn split_point(size: u64) -> u64 {
    1u64 << (63 - (size - 1).leading_zeros())
}

/// The ranges whose hashes form the inclusion proof of leaf `index` in a tree of `size`
/// leaves, from the bottom of the tree up (RFC 9162 section 2.1.3.1).
pub fn inclusion_proof_plan(index: u64, size: u64) -> Result<Vec<LeafRange>, Error> {
    if index >= size {
        return Err(Error::OutOfRange(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let mut ranges = Vec::new();
    let (mut start, mut end) = (0u64, size);
    // Walk down from the root; each step records the sibling range, top first.
    while end - start > 1 {
        let split = start + split_point(end - start);
        if index < split {
            ranges.push(LeafRange { start: split, end });
            end = split;
        } else {
            ranges.push(LeafRange { start, end: split });
            start = split;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The ranges whose hashes form the consistency proof from a tree of `size1` leaves to
/// one of `size2` leaves (RFC 9162 section 2.1.4.1), in proof order.
pub fn consistency_proof_plan(size1: u64, size2: u64) -> Result<Vec<LeafRange>, Error> {
    if size1 > size2 {
        return Err(Error::OutOfRange(format!(
            "size1 {size1} is larger than size2 {size2}"
        )));
    }
    if size1 == 0 || size1 == size2 {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start:end], b), iteratively: ranges collected top first.
    let mut ranges = Vec::new();
    let (mut start, mut end) = (0u64, size2);
    let mut first = size1;
    let mut whole_tree_known = true;
    loop {
        let size = end - start;
        if first == size {
            if !whole_tree_known {
                ranges.push(LeafRange { start, end });
            }
            break;
        }
        let split = split_point(size);
        if first <= split {
            ranges.push(LeafRange {
                start: start + split,
                end,
            });
            end = start + split;
        } else {
            ranges.push(LeafRange {
                start,
                end: start + split,
            });
            start += split;
            first -= split;
            whole_tree_known = false;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The root hash of a tree of `size` leaves that a valid inclusion proof for the leaf at
/// `index` with hash `leaf` leads to (RFC 9162 section 2.1.3.2).
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, Error> {
    if index >= size {
        return Err(Error::OutOfRange(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let mut position = index;
    let mut last = size - 1;
    let mut hash = *leaf;
    for sibling in proof {
        if last == 0 {
            return Err(Error::InvalidProof("inclusion proof is too long".into()));
        }
        if position & 1 == 1 || position == last {
            hash = node_hash(sibling, &hash);
            if position & 1 == 0 {
                while position & 1 == 0 && position != 0 {
                    position >>= 1;
                    last >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(Error::InvalidProof("inclusion proof is too short".into()));
    }
    Ok(hash)
}

/// Checks that the leaf with hash `leaf` is at `index` in the tree of `size` leaves whose
/// root hash is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    let computed = root_from_inclusion_proof(index, size, leaf, proof)?;
    if computed != *root {
        return Err(Error::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `size2` leaves with root `root2` extends the tree of `size1`
/// leaves with root `root1` (RFC 9162 section 2.1.4.2).
///
/// Like transparency-dev/merkle, a proof from the empty tree (`size1 == 0`) is refused as
/// meaningless, and equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), Error> {
    if size1 > size2 {
        return Err(Error::InvalidProof(format!(
            "size1 {size1} is larger than size2 {size2}"
        )));
    }
    if size1 == 0 {
        return Err(Error::InvalidProof(
            "a consistency proof from the empty tree is meaningless".into(),
        ));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(Error::InvalidProof(
                "equal sizes need an empty consistency proof".into(),
            ));
        }
        if root1 != root2 {
            return Err(Error::RootMismatch);
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(Error::InvalidProof("empty consistency proof".into()));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let mut position = size1 - 1;
    let mut last = size2 - 1;
    while position & 1 == 1 {
        position >>= 1;
        last >>= 1;
    }
    let mut first_hash = path[0];
    let mut second_hash = path[0];
    for sibling in &path[1..] {
        if last == 0 {
            return Err(Error::InvalidProof("consistency proof is too long".into()));
        }
        if position & 1 == 1 || position == last {
            first_hash = node_hash(sibling, &first_hash);
            second_hash = node_hash(sibling, &second_hash);
            if position & 1 == 0 {
                while position & 1 == 0 && position != 0 {
                    position >>= 1;
                    last >>= 1;
                }
            }
        } else {
            second_hash = node_hash(&second_hash, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(Error::InvalidProof("consistency proof is too short".into()));
    }
    if first_hash != *root1 || second_hash != *root2 {
        return Err(Error::RootMismatch);
    }
    Ok(())
}

/// The right edge of a tree (a "compact range" from leaf 0): the roots of the perfect
/// subtrees that make up its leaves, largest first. Appending a leaf touches only this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// A frontier from the hashes of the nodes of `LeafRange { start: 0, end: size }`.
    pub fn from_parts(size: u64, roots: Vec<Hash>) -> Result<Self, Error> {
        if roots.len() != size.count_ones() as usize {
            return Err(Error::Storage(format!(
                "a tree of {size} leaves has {} frontier nodes, got {}",
                size.count_ones(),
                roots.len()
            )));
        }
        Ok(Frontier { size, roots })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Roots of the perfect subtrees, largest first.
    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    /// Appends a leaf hash; `completed` is called for the leaf and for every interior node
    /// that the leaf completes, lowest first.
    pub fn append(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let index = self.size;
        let mut hash = leaf;
        completed(NodeId { level: 0, index }, &hash);
        let mut level: u8 = 0;
        let mut remaining = index;
        while remaining & 1 == 1 {
            // The invariant roots.len() == size.count_ones() makes this pop succeed.
            let Some(left) = self.roots.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            remaining >>= 1;
            completed(
                NodeId {
                    level,
                    index: remaining,
                },
                &hash,
            );
        }
        self.roots.push(hash);
        self.size += 1;
    }

    /// The root hash of the tree (the empty-tree hash when there are no leaves).
    pub fn root(&self) -> Hash {
        fold_range(&self.roots).unwrap_or_else(|_| crate::hash::empty_root())
    }
}

/// The RFC 9162 root hash of a list of leaf hashes, computed in memory.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.append(*leaf, |_, _| {});
    }
    frontier.root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    /// RFC 9162 MTH, straight from the definition: the oracle for the tests below.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => crate::hash::empty_root(),
            1 => leaves[0],
            count => {
                let split = split_point(count as u64) as usize;
                node_hash(
                    &reference_root(&leaves[..split]),
                    &reference_root(&leaves[split..]),
                )
            }
        }
    }

    fn leaves(count: u64) -> Vec<Hash> {
        (0..count).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn range_hash(all: &[Hash], range: LeafRange) -> Hash {
        reference_root(&all[range.start as usize..range.end as usize])
    }

    #[test]
    fn frontier_root_matches_the_definition() {
        for size in 0..70 {
            let all = leaves(size);
            assert_eq!(root_of(&all), reference_root(&all), "size {size}");
        }
    }

    #[test]
    fn range_nodes_fold_to_the_range_hash() -> Result<(), Error> {
        let all = leaves(40);
        for size in 1..40u64 {
            for index in 0..size {
                for range in inclusion_proof_plan(index, size)? {
                    let hashes: Vec<Hash> = range
                        .nodes()
                        .iter()
                        .map(|node| {
                            reference_root(
                                &all[node.first_leaf() as usize..node.end_leaf() as usize],
                            )
                        })
                        .collect();
                    assert_eq!(fold_range(&hashes)?, range_hash(&all, range));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn every_small_proof_verifies() -> Result<(), Error> {
        let all = leaves(33);
        for size in 1..=33u64 {
            let root = reference_root(&all[..size as usize]);
            for index in 0..size {
                let proof: Vec<Hash> = inclusion_proof_plan(index, size)?
                    .into_iter()
                    .map(|range| range_hash(&all, range))
                    .collect();
                verify_inclusion(index, size, &all[index as usize], &proof, &root)?;
            }
            for size1 in 1..=size {
                let root1 = reference_root(&all[..size1 as usize]);
                let proof: Vec<Hash> = consistency_proof_plan(size1, size)?
                    .into_iter()
                    .map(|range| range_hash(&all, range))
                    .collect();
                verify_consistency(size1, size, &proof, &root1, &root)?;
            }
        }
        Ok(())
    }

    #[test]
    fn frontier_reports_completed_nodes() {
        let mut frontier = Frontier::new();
        let mut seen = Vec::new();
        for leaf in leaves(4) {
            frontier.append(leaf, |node, _| seen.push(node));
        }
        let levels: Vec<(u8, u64)> = seen.iter().map(|node| (node.level, node.index)).collect();
        assert_eq!(
            levels,
            vec![(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0)]
        );
    }
}
