//! Stored subtree hashes in tiles (after C2SP tlog-tiles) and the append-only Merkle log over them.
//!
//! Layout: a tile of tile-level `L` and index `N` holds the hashes of the tree nodes at
//! level `8 * L` with indexes `256 * N .. 256 * N + 256`, left to right. Levels in between
//! are recomputed from at most 128 stored hashes of the tile below them, so the store
//! keeps about `n * (1 + 1/256 + ...)` hashes for `n` entries, and a proof or a tree head
//! at any size reads `O(log n)` tiles: a tree of a billion entries never needs a rebuild.
//! The last tile of a level may be partial; a wider version replaces a narrower one.
//! Tiles of stored hashes never change once full, which is what a tamper check relies on.

use std::collections::BTreeMap;

use crate::hash::{empty_root, node_hash, Hash};
use crate::merkle::{
    consistency_proof_plan, fold_range, inclusion_proof_plan, Frontier, LeafRange, NodeId,
};
use crate::Error;

/// Tree levels covered by one tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;
/// Most entries appended in one batch (one storage transaction).
pub const BATCH_SIZE_MAX: usize = 1 << 20;

/// Address of a tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Tile level: the tile stores tree nodes of level `TILE_HEIGHT * level`.
    pub level: u8,
    /// Index of the tile among the tiles of its level.
    pub index: u64,
}

impl TileId {
    /// The tlog-tiles path of the tile, e.g. `tile/0/x001/234` (`.p/W` for a partial one).
    pub fn path(self, width: usize) -> String {
        let mut digits = format!("{:03}", self.index % 1000);
        let mut rest = self.index / 1000;
        while rest > 0 {
            digits = format!("x{:03}/{digits}", rest % 1000);
            rest /= 1000;
        }
        if width == TILE_WIDTH {
            format!("tile/{}/{digits}", self.level)
        } else {
            format!("tile/{}/{digits}.p/{width}", self.level)
        }
    }
}

/// The hashes of one tile, full (256) or partial (1 to 255).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tile {
    /// Node hashes, left to right.
    pub hashes: Vec<Hash>,
}

impl Tile {
    /// The tile as bytes: its hashes concatenated, as tlog-tiles serves them.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes.iter().flat_map(|hash| hash.0).collect()
    }

    /// A tile from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() % 32 != 0 || bytes.len() / 32 > TILE_WIDTH {
            return Err(Error::Storage(format!(
                "a tile of {} bytes is not 1 to 256 hashes",
                bytes.len()
            )));
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(Hash::from_slice)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tile { hashes })
    }
}

/// Where the log keeps its tiles and its size. The sqlx store implements this (or an
/// async twin of it) over one table of tiles `(level, index, bytes)` and one row for the
/// size; [`MemoryTileStore`] is the in-memory implementation.
pub trait TileStore {
    /// The number of entries covered by the last commit.
    fn tree_size(&self) -> Result<u64, Error>;
    /// The widest stored version of a tile, or `None` when it was never written.
    fn read_tile(&self, id: TileId) -> Result<Option<Tile>, Error>;
    /// Stores the tiles touched by a batch and the new tree size, all or nothing.
    fn commit(&mut self, tree_size: u64, tiles: Vec<(TileId, Tile)>) -> Result<(), Error>;
}

/// Tiles in memory, for tests, benchmarks and the command line.
#[derive(Debug, Clone, Default)]
pub struct MemoryTileStore {
    tree_size: u64,
    tiles: BTreeMap<TileId, Tile>,
}

impl MemoryTileStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryTileStore::default()
    }

    /// Number of tiles stored.
    pub fn tile_count(&self) -> usize {
        self.tiles.len()
    }

    /// Replaces a stored tile without any check: for tamper tests only.
    pub fn overwrite_tile_for_tamper_test(&mut self, id: TileId, tile: Tile) {
        self.tiles.insert(id, tile);
    }
}

impl TileStore for MemoryTileStore {
    fn tree_size(&self) -> Result<u64, Error> {
        Ok(self.tree_size)
    }

    fn read_tile(&self, id: TileId) -> Result<Option<Tile>, Error> {
        Ok(self.tiles.get(&id).cloned())
    }

    fn commit(&mut self, tree_size: u64, tiles: Vec<(TileId, Tile)>) -> Result<(), Error> {
        if tree_size < self.tree_size {
            return Err(Error::Storage(format!(
                "commit would shrink the log from {} to {tree_size}",
                self.tree_size
            )));
        }
        for (id, tile) in tiles {
            self.tiles.insert(id, tile);
        }
        self.tree_size = tree_size;
        Ok(())
    }
}

/// An append-only RFC 9162 Merkle log over a [`TileStore`].
///
/// It keeps the frontier (one hash per set bit of the size) and the partial tile of each
/// tile level in memory, so appending reads nothing from the store.
#[derive(Debug)]
pub struct MerkleLog<S> {
    store: S,
    frontier: Frontier,
    /// The rightmost tile of each tile level, as far as it is filled.
    edge_tiles: Vec<(TileId, Tile)>,
}

impl<S: TileStore> MerkleLog<S> {
    /// Opens the log kept in `store`, reading `O(log n)` tiles.
    pub fn open(store: S) -> Result<Self, Error> {
        let size = store.tree_size()?;
        let mut log = MerkleLog {
            store,
            frontier: Frontier::new(),
            edge_tiles: Vec::new(),
        };
        let roots = LeafRange {
            start: 0,
            end: size,
        }
        .nodes()
        .into_iter()
        .map(|node| log.node_hash_at(node, size))
        .collect::<Result<Vec<_>, _>>()?;
        log.frontier = Frontier::from_parts(size, roots)?;
        // The number of nodes stored at level 8L is size >> 8L; load the partial tile.
        let mut level: u8 = 0;
        loop {
            let stored = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
            if stored == 0 && level > 0 {
                break;
            }
            let id = TileId {
                level,
                index: stored / TILE_WIDTH as u64,
            };
            let width = (stored % TILE_WIDTH as u64) as usize;
            let tile = if width == 0 {
                Tile::default()
            } else {
                let mut tile = log.read_tile(id)?;
                if tile.hashes.len() < width {
                    return Err(Error::Storage(format!(
                        "tile {} has {} hashes, want {width}",
                        id.path(width),
                        tile.hashes.len()
                    )));
                }
                tile.hashes.truncate(width);
                tile
            };
            log.edge_tiles.push((id, tile));
            if stored == 0 {
                break;
            }
            level += 1;
        }
        Ok(log)
    }

    /// The store beneath the log.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store beneath the log, mutably (tamper tests).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Number of entries in the log.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Root hash of the whole log.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Appends a batch of leaf hashes and commits it to the store in one call.
    /// Returns the index of the first appended leaf.
    pub fn append_batch(&mut self, leaves: &[Hash]) -> Result<u64, Error> {
        if leaves.len() > BATCH_SIZE_MAX {
            return Err(Error::OutOfRange(format!(
                "batch of {} entries is above the maximum {BATCH_SIZE_MAX}",
                leaves.len()
            )));
        }
        let first = self.frontier.size();
        let mut touched: BTreeMap<TileId, Tile> = BTreeMap::new();
        let mut frontier = self.frontier.clone();
        let mut edge_tiles = self.edge_tiles.clone();
        let mut failure: Option<Error> = None;
        for leaf in leaves {
            frontier.append(*leaf, |node, hash| {
                if node.level % TILE_HEIGHT != 0 || failure.is_some() {
                    return;
                }
                let tile_level = node.level / TILE_HEIGHT;
                if let Err(error) =
                    place_in_edge(&mut edge_tiles, &mut touched, tile_level, node, hash)
                {
                    failure = Some(error);
                }
            });
        }
        if let Some(error) = failure {
            return Err(error);
        }
        for (id, tile) in &edge_tiles {
            if !tile.hashes.is_empty() {
                touched.insert(*id, tile.clone());
            }
        }
        self.store
            .commit(frontier.size(), touched.into_iter().collect())?;
        self.frontier = frontier;
        self.edge_tiles = edge_tiles;
        Ok(first)
    }

    fn read_tile(&self, id: TileId) -> Result<Tile, Error> {
        if let Some((edge_id, tile)) = self.edge_tiles.get(id.level as usize) {
            if *edge_id == id && !tile.hashes.is_empty() {
                return Ok(tile.clone());
            }
        }
        self.store
            .read_tile(id)?
            .ok_or_else(|| Error::Storage(format!("tile {} is missing", id.path(TILE_WIDTH))))
    }

    /// The hash of a perfect subtree that is complete in a tree of `size` leaves.
    pub fn node_hash_at(&self, node: NodeId, size: u64) -> Result<Hash, Error> {
        if node.end_leaf() > size || size > self.store.tree_size()?.max(self.size()) {
            return Err(Error::OutOfRange(format!(
                "node {node:?} is not complete in a tree of {size} leaves"
            )));
        }
        let tile_level = node.level / TILE_HEIGHT;
        let height_in_tile = node.level % TILE_HEIGHT;
        let first = node.index << height_in_tile;
        let count = 1usize << height_in_tile;
        let id = TileId {
            level: tile_level,
            index: first / TILE_WIDTH as u64,
        };
        let offset = (first % TILE_WIDTH as u64) as usize;
        let tile = self.read_tile(id)?;
        let stored = tile.hashes.get(offset..offset + count).ok_or_else(|| {
            Error::Storage(format!(
                "tile {} has {} hashes, want at least {}",
                id.path(TILE_WIDTH),
                tile.hashes.len(),
                offset + count
            ))
        })?;
        Ok(perfect_root(stored))
    }

    fn range_hash(&self, range: LeafRange, size: u64) -> Result<Hash, Error> {
        let hashes = range
            .nodes()
            .into_iter()
            .map(|node| self.node_hash_at(node, size))
            .collect::<Result<Vec<_>, _>>()?;
        fold_range(&hashes)
    }

    /// Root hash of the log when it had `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, Error> {
        if size > self.size() {
            return Err(Error::OutOfRange(format!(
                "tree size {size} is beyond the log size {}",
                self.size()
            )));
        }
        if size == 0 {
            return Ok(empty_root());
        }
        self.range_hash(
            LeafRange {
                start: 0,
                end: size,
            },
            size,
        )
    }

    /// Recomputes the root from the stored leaf hashes alone (every level-0 tile) and
    /// checks it against the root read from the upper tiles: a full audit, `O(n)` hashing.
    /// Returns the recomputed root, which the caller compares with a signed checkpoint.
    pub fn audit(&self) -> Result<Hash, Error> {
        let size = self.size();
        let mut frontier = Frontier::new();
        let mut index = 0u64;
        while index < size {
            let id = TileId {
                level: 0,
                index: index / TILE_WIDTH as u64,
            };
            let tile = self.read_tile(id)?;
            let want = ((size - index) as usize).min(TILE_WIDTH);
            let hashes = tile
                .hashes
                .get(..want)
                .ok_or_else(|| Error::Storage(format!("tile {} is short", id.path(TILE_WIDTH))))?;
            for hash in hashes {
                frontier.append(*hash, |_, _| {});
            }
            index += want as u64;
        }
        let recomputed = frontier.root();
        let stored = self.root_at(size)?;
        if recomputed != stored {
            return Err(Error::Storage(format!(
                "stored tiles are inconsistent: leaves give root {recomputed}, upper tiles give {stored}"
            )));
        }
        Ok(recomputed)
    }

    /// The hash of the leaf at `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, Error> {
        self.node_hash_at(NodeId { level: 0, index }, self.size())
    }

    /// Inclusion proof of leaf `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        if size > self.size() {
            return Err(Error::OutOfRange(format!(
                "tree size {size} is beyond the log size {}",
                self.size()
            )));
        }
        inclusion_proof_plan(index, size)?
            .into_iter()
            .map(|range| self.range_hash(range, size))
            .collect()
    }

    /// Consistency proof from the tree of `size1` entries to the tree of `size2` entries.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, Error> {
        if size2 > self.size() {
            return Err(Error::OutOfRange(format!(
                "tree size {size2} is beyond the log size {}",
                self.size()
            )));
        }
        consistency_proof_plan(size1, size2)?
            .into_iter()
            .map(|range| self.range_hash(range, size2))
            .collect()
    }
}

fn place_in_edge(
    edge_tiles: &mut Vec<(TileId, Tile)>,
    touched: &mut BTreeMap<TileId, Tile>,
    tile_level: u8,
    node: NodeId,
    hash: &Hash,
) -> Result<(), Error> {
    let id = TileId {
        level: tile_level,
        index: node.index / TILE_WIDTH as u64,
    };
    let offset = (node.index % TILE_WIDTH as u64) as usize;
    while edge_tiles.len() <= tile_level as usize {
        let level = edge_tiles.len() as u8;
        edge_tiles.push((TileId { level, index: 0 }, Tile::default()));
    }
    let slot = &mut edge_tiles[tile_level as usize];
    if slot.0 != id {
        if offset != 0 || !slot.1.hashes.is_empty() {
            return Err(Error::Internal(format!(
                "node {node:?} does not continue tile {:?}",
                slot.0
            )));
        }
        *slot = (id, Tile::default());
    }
    if slot.1.hashes.len() != offset {
        return Err(Error::Internal(format!(
            "node {node:?} lands at offset {offset} of a tile of width {}",
            slot.1.hashes.len()
        )));
    }
    slot.1.hashes.push(*hash);
    if slot.1.hashes.len() == TILE_WIDTH {
        touched.insert(id, std::mem::take(&mut slot.1));
        slot.0 = TileId {
            level: tile_level,
            index: id.index + 1,
        };
    }
    Ok(())
}

/// Root of a perfect subtree from its (power of two many) bottom hashes.
fn perfect_root(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level.first().copied().unwrap_or_else(empty_root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::{root_of, verify_consistency, verify_inclusion};

    fn leaves(count: u64) -> Vec<Hash> {
        (0..count).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn tile_paths_follow_tlog_tiles() {
        let id = TileId {
            level: 0,
            index: 1_234_067,
        };
        assert_eq!(id.path(TILE_WIDTH), "tile/0/x001/x234/067");
        assert_eq!(id.path(5), "tile/0/x001/x234/067.p/5");
        assert_eq!(TileId { level: 1, index: 3 }.path(TILE_WIDTH), "tile/1/003");
    }

    #[test]
    fn log_matches_in_memory_roots_and_proofs_across_batches() -> Result<(), Error> {
        let all = leaves(70_000);
        let mut log = MerkleLog::open(MemoryTileStore::new())?;
        // Uneven batches across tile and level boundaries.
        let mut start = 0usize;
        for batch in [1usize, 255, 1, 300, 65_000, 4_443] {
            log.append_batch(&all[start..start + batch])?;
            start += batch;
            assert_eq!(log.root(), root_of(&all[..start]));
        }
        for size in [1u64, 2, 255, 256, 257, 557, 65_536, 65_537, 70_000] {
            let root = log.root_at(size)?;
            assert_eq!(root, root_of(&all[..size as usize]), "size {size}");
            for index in [0, size / 3, size - 1] {
                let proof = log.inclusion_proof(index, size)?;
                verify_inclusion(index, size, &all[index as usize], &proof, &root)?;
            }
            for size1 in [1, size / 2 + 1, size] {
                let proof = log.consistency_proof(size1, size)?;
                verify_consistency(size1, size, &proof, &log.root_at(size1)?, &root)?;
            }
        }
        Ok(())
    }

    #[test]
    fn reopening_the_store_restores_the_log() -> Result<(), Error> {
        let all = leaves(1_000);
        let mut log = MerkleLog::open(MemoryTileStore::new())?;
        log.append_batch(&all[..777])?;
        let store = log.store().clone();
        let mut reopened = MerkleLog::open(store)?;
        assert_eq!(reopened.root(), root_of(&all[..777]));
        reopened.append_batch(&all[777..])?;
        assert_eq!(reopened.root(), root_of(&all));
        Ok(())
    }

    #[test]
    fn a_tampered_tile_breaks_proofs_against_the_signed_root() -> Result<(), Error> {
        let all = leaves(600);
        let mut log = MerkleLog::open(MemoryTileStore::new())?;
        log.append_batch(&all)?;
        let root = log.root();
        assert_eq!(log.audit().map_err(|error| error.code()), Ok(root));
        let id = TileId { level: 0, index: 1 };
        let mut tile = log.store().read_tile(id)?.unwrap_or_default();
        tile.hashes[10] = leaf_hash(b"forged entry");
        log.store_mut().overwrite_tile_for_tamper_test(id, tile);
        let reopened = MerkleLog::open(log.store().clone())?;
        let proof = reopened.inclusion_proof(266, 600)?;
        let forged = leaf_hash(b"forged entry");
        assert!(verify_inclusion(266, 600, &forged, &proof, &root).is_err());
        // The upper tiles still give the old root, but an audit sees the leaves disagree.
        assert_eq!(
            reopened.audit().map_err(|error| error.code()),
            Err("storage")
        );
        Ok(())
    }
}
