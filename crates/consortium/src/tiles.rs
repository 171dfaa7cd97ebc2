//! Stored subtree hashes in tiles (after C2SP tlog-tiles) and the append-only Merkle log over them.
//!
//! Layout: a tile of tile-level `L` and index `N` holds the hashes of the tree nodes at
//! level `8 * L` with indexes `256 * N .. 256 * N + 256`, left to right — exactly a
//! tlog-tiles tile — followed by the hashes of the nodes at level `8 * L + 4` that those
//! nodes complete (one for every 16). Any node inside a tile is then recomputed from at
//! most 8 stored hashes (at most 7 SHA-256 calls), and the store keeps about
//! `n * (1 + 1/16 + 1/256 + ...)` ≈ `1.07 n` hashes for `n` entries. A proof or a tree
//! head at any size reads `O(log n)` tiles: a tree of a billion entries never needs a
//! rebuild. The last tile of a level may be partial; a wider version replaces a
//! narrower one. Full tiles never change, which is what an audit relies on.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::hash::{empty_root, leaf_hash, node_hash, Hash};
use crate::merkle::{
    consistency_proof_plan, fold_range, inclusion_proof_plan, Frontier, LeafRange, NodeId,
};
use crate::snapshot::StoredSnapshot;
use crate::Error;

/// Tree levels covered by one tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile (its base level).
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;
/// The level inside a tile whose node hashes are also stored.
pub const MIDDLE_LEVEL: u8 = 4;
/// Base hashes under one stored middle hash.
pub const MIDDLE_GROUP: usize = 1 << MIDDLE_LEVEL;
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
        crate::tile_path::TileResource::Hashes { id: self, width }.path()
    }
}

/// The hashes of one tile, full (256) or partial (1 to 255).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tile {
    /// Node hashes of the tile's base level, left to right (the tlog-tiles tile).
    pub hashes: Vec<Hash>,
    /// Node hashes four levels up: one per complete group of 16 base hashes.
    pub middle: Vec<Hash>,
}

impl Tile {
    /// The tile as bytes: base hashes then middle hashes, concatenated.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes
            .iter()
            .chain(&self.middle)
            .flat_map(|hash| hash.0)
            .collect()
    }

    /// A tile from its bytes; the split between base and middle hashes follows from the
    /// count, since a tile of width `w` has `w + w / 16` hashes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bad = || {
            Error::Storage(format!(
                "a tile of {} bytes is not a valid tile",
                bytes.len()
            ))
        };
        if !bytes.len().is_multiple_of(32) {
            return Err(bad());
        }
        let count = bytes.len() / 32;
        let width = (1..=TILE_WIDTH)
            .find(|width| width + width / MIDDLE_GROUP == count)
            .ok_or_else(bad)?;
        let all = bytes
            .chunks_exact(32)
            .map(Hash::from_slice)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tile {
            hashes: all[..width].to_vec(),
            middle: all[width..].to_vec(),
        })
    }

    fn is_full(&self) -> bool {
        self.hashes.len() == TILE_WIDTH && self.middle.len() == TILE_WIDTH / MIDDLE_GROUP
    }
}

/// What one append writes: the new size, the entries' bytes (when the log keeps them)
/// and every tile the batch touched. A store writes it all or nothing.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Index of the first entry of the batch.
    pub first_index: u64,
    /// The tree size after the batch.
    pub tree_size: u64,
    /// Entry bytes, one per leaf of the batch; empty for a log of bare hashes.
    pub entries: Vec<Vec<u8>>,
    /// Tiles touched, each replacing any narrower stored version.
    pub tiles: Vec<(TileId, Tile)>,
}

/// Where the log keeps its entries, tiles and size. The sqlx store implements this (or
/// an async twin of it) over a table of entries `(index, bytes)`, a table of tiles
/// `(level, index, bytes)` and one row for the size, committing each [`Commit`] in one
/// transaction; [`MemoryLogStore`] is the in-memory implementation.
pub trait LogStore {
    /// The number of entries covered by the last commit.
    fn tree_size(&self) -> Result<u64, Error>;
    /// The widest stored version of a tile, or `None` when it was never written.
    fn read_tile(&self, id: TileId) -> Result<Option<Arc<Tile>>, Error>;
    /// The bytes of entry `index`, or `None` when the log keeps bare hashes.
    fn read_entry(&self, index: u64) -> Result<Option<Vec<u8>>, Error>;
    /// Writes a batch, all or nothing.
    fn commit(&mut self, commit: Commit) -> Result<(), Error>;
    /// The latest state snapshot, when the store keeps them.
    fn read_snapshot(&self) -> Result<Option<StoredSnapshot>, Error> {
        Ok(None)
    }
    /// Replaces the stored snapshot (a store that keeps none ignores it).
    fn write_snapshot(&mut self, _snapshot: StoredSnapshot) -> Result<(), Error> {
        Ok(())
    }
}

/// Entries and tiles in memory, for tests, benchmarks and the command line.
#[derive(Debug, Clone, Default)]
pub struct MemoryLogStore {
    tree_size: u64,
    tiles: BTreeMap<TileId, Arc<Tile>>,
    entries: Vec<Vec<u8>>,
    snapshot: Option<StoredSnapshot>,
}

impl MemoryLogStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryLogStore::default()
    }

    /// Number of tiles stored.
    pub fn tile_count(&self) -> usize {
        self.tiles.len()
    }

    /// Replaces a stored tile without any check: for tamper tests only.
    pub fn overwrite_tile_for_tamper_test(&mut self, id: TileId, tile: Tile) {
        self.tiles.insert(id, Arc::new(tile));
    }

    /// Replaces or removes the stored snapshot without any check: for tamper tests only.
    pub fn overwrite_snapshot_for_tamper_test(&mut self, snapshot: Option<StoredSnapshot>) {
        self.snapshot = snapshot;
    }

    /// Replaces a stored entry without any check: for tamper tests only.
    pub fn overwrite_entry_for_tamper_test(&mut self, index: u64, bytes: Vec<u8>) {
        if let Some(entry) = self.entries.get_mut(index as usize) {
            *entry = bytes;
        }
    }
}

impl LogStore for MemoryLogStore {
    fn tree_size(&self) -> Result<u64, Error> {
        Ok(self.tree_size)
    }

    fn read_tile(&self, id: TileId) -> Result<Option<Arc<Tile>>, Error> {
        Ok(self.tiles.get(&id).cloned())
    }

    fn read_entry(&self, index: u64) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entries.get(index as usize).cloned())
    }

    fn commit(&mut self, commit: Commit) -> Result<(), Error> {
        if commit.first_index != self.tree_size || commit.tree_size < self.tree_size {
            return Err(Error::Storage(format!(
                "commit of entries {}..{} does not continue a log of {}",
                commit.first_index, commit.tree_size, self.tree_size
            )));
        }
        let keeps_entries = !commit.entries.is_empty();
        let grows = commit.tree_size > commit.first_index;
        if !keeps_entries && grows && !self.entries.is_empty() {
            return Err(Error::Storage(
                "a log that keeps entries needs their bytes".into(),
            ));
        }
        if keeps_entries
            && (commit.entries.len() as u64 != commit.tree_size - commit.first_index
                || self.entries.len() as u64 != self.tree_size)
        {
            return Err(Error::Storage("entries do not match the leaves".into()));
        }
        for (id, tile) in commit.tiles {
            self.tiles.insert(id, Arc::new(tile));
        }
        self.entries.extend(commit.entries);
        self.tree_size = commit.tree_size;
        Ok(())
    }

    fn read_snapshot(&self) -> Result<Option<StoredSnapshot>, Error> {
        Ok(self.snapshot.clone())
    }

    fn write_snapshot(&mut self, snapshot: StoredSnapshot) -> Result<(), Error> {
        self.snapshot = Some(snapshot);
        Ok(())
    }
}

/// An append-only RFC 9162 Merkle log over a [`LogStore`].
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

/// Where in a tile a node's stored hashes are.
#[derive(Debug, Clone, Copy)]
struct TileSlice {
    id: TileId,
    middle: bool,
    offset: usize,
    count: usize,
}

fn tile_slice(node: NodeId) -> TileSlice {
    let within = node.level % TILE_HEIGHT;
    let tile_level = node.level / TILE_HEIGHT;
    if within < MIDDLE_LEVEL {
        let first = node.index << within;
        TileSlice {
            id: TileId {
                level: tile_level,
                index: first / TILE_WIDTH as u64,
            },
            middle: false,
            offset: (first % TILE_WIDTH as u64) as usize,
            count: 1 << within,
        }
    } else {
        let first = node.index << (within - MIDDLE_LEVEL);
        let per_tile = (TILE_WIDTH / MIDDLE_GROUP) as u64;
        TileSlice {
            id: TileId {
                level: tile_level,
                index: first / per_tile,
            },
            middle: true,
            offset: (first % per_tile) as usize,
            count: 1 << (within - MIDDLE_LEVEL),
        }
    }
}

fn pick(tile: &Tile, middle: bool) -> &[Hash] {
    if middle {
        &tile.middle
    } else {
        &tile.hashes
    }
}

impl<S: LogStore> MerkleLog<S> {
    /// Opens the log kept in `store`, reading `O(log n)` tiles.
    pub fn open(store: S) -> Result<Self, Error> {
        let size = store.tree_size()?;
        let mut log = MerkleLog {
            store,
            frontier: Frontier::new(),
            edge_tiles: Vec::new(),
        };
        // Load the partial tile of each level: level L stores size >> 8L base hashes.
        let mut edge_tiles = Vec::new();
        let mut level: u8 = 0;
        loop {
            let stored = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
            let id = TileId {
                level,
                index: stored / TILE_WIDTH as u64,
            };
            let width = (stored % TILE_WIDTH as u64) as usize;
            let tile = if width == 0 {
                Tile::default()
            } else {
                let stored_tile = log
                    .store
                    .read_tile(id)?
                    .ok_or_else(|| Error::Storage(format!("tile {} is missing", id.path(width))))?;
                let mut tile = Tile::clone(&stored_tile);
                if tile.hashes.len() < width || tile.middle.len() < width / MIDDLE_GROUP {
                    return Err(Error::Storage(format!(
                        "tile {} has {} hashes, want {width}",
                        id.path(width),
                        tile.hashes.len()
                    )));
                }
                tile.hashes.truncate(width);
                tile.middle.truncate(width / MIDDLE_GROUP);
                tile
            };
            edge_tiles.push((id, tile));
            if stored < TILE_WIDTH as u64 {
                break;
            }
            level += 1;
        }
        log.edge_tiles = edge_tiles;
        let roots = LeafRange {
            start: 0,
            end: size,
        }
        .nodes()
        .into_iter()
        .map(|node| log.stored_node_hash(node))
        .collect::<Result<Vec<_>, _>>()?;
        log.frontier = Frontier::from_parts(size, roots)?;
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

    /// Appends a batch of entries (their leaf hashes and their bytes) and commits it to
    /// the store in one call. Returns the index of the first entry.
    pub fn append_entries(&mut self, entries: Vec<Vec<u8>>) -> Result<u64, Error> {
        let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
        self.append(&leaves, entries)
    }

    /// Appends a batch of bare leaf hashes (a log that keeps no entry bytes) and commits
    /// it to the store in one call. Returns the index of the first leaf.
    pub fn append_batch(&mut self, leaves: &[Hash]) -> Result<u64, Error> {
        self.append(leaves, Vec::new())
    }

    fn append(&mut self, leaves: &[Hash], entries: Vec<Vec<u8>>) -> Result<u64, Error> {
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
                if failure.is_none() {
                    if let Err(error) = place_in_edge(&mut edge_tiles, &mut touched, node, hash) {
                        failure = Some(error);
                    }
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
        self.store.commit(Commit {
            first_index: first,
            tree_size: frontier.size(),
            entries,
            tiles: touched.into_iter().collect(),
        })?;
        self.frontier = frontier;
        self.edge_tiles = edge_tiles;
        Ok(first)
    }

    /// The hash of a node from the tiles (the edge tiles first, then the store).
    fn stored_node_hash(&self, node: NodeId) -> Result<Hash, Error> {
        let slice = tile_slice(node);
        let range = slice.offset..slice.offset + slice.count;
        if let Some((edge_id, tile)) = self.edge_tiles.get(slice.id.level as usize) {
            if *edge_id == slice.id {
                if let Some(hashes) = pick(tile, slice.middle).get(range.clone()) {
                    return perfect_root(hashes);
                }
            }
        }
        let tile = self.store.read_tile(slice.id)?.ok_or_else(|| {
            Error::Storage(format!("tile {} is missing", slice.id.path(TILE_WIDTH)))
        })?;
        let hashes = pick(&tile, slice.middle).get(range).ok_or_else(|| {
            Error::Storage(format!(
                "tile {} is too short for node {node:?}",
                slice.id.path(TILE_WIDTH)
            ))
        })?;
        perfect_root(hashes)
    }

    /// The hash of a perfect subtree that is complete in a tree of `size` leaves.
    pub fn node_hash_at(&self, node: NodeId, size: u64) -> Result<Hash, Error> {
        if node.end_leaf() > size || size > self.size() {
            return Err(Error::OutOfRange(format!(
                "node {node:?} is not complete in a tree of {size} leaves"
            )));
        }
        self.stored_node_hash(node)
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

    /// Checks every stored hash against the hashes below it, then recomputes the root
    /// from the leaf hashes alone: a full audit, `O(n)` hashing. Returns the root, which
    /// the caller compares with a signed checkpoint.
    pub fn audit(&self) -> Result<Hash, Error> {
        let size = self.size();
        let mut level: u8 = 0;
        loop {
            let stored = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
            if stored == 0 {
                break;
            }
            let tiles = stored.div_ceil(TILE_WIDTH as u64);
            for index in 0..tiles {
                let id = TileId { level, index };
                let tile = self.audited_tile(id, stored)?;
                for (group, middle) in tile.middle.iter().enumerate() {
                    let base = &tile.hashes[group * MIDDLE_GROUP..(group + 1) * MIDDLE_GROUP];
                    if perfect_root(base)? != *middle {
                        return Err(tampered(id, "a middle hash does not match its base hashes"));
                    }
                }
                if level > 0 {
                    for (offset, hash) in tile.hashes.iter().enumerate() {
                        let below = TileId {
                            level: level - 1,
                            index: index * TILE_WIDTH as u64 + offset as u64,
                        };
                        let below_tile = self.audited_tile(below, stored << TILE_HEIGHT)?;
                        if !below_tile.is_full() || perfect_root(&below_tile.middle)? != *hash {
                            return Err(tampered(id, "a hash does not match the tile below"));
                        }
                    }
                }
            }
            level += 1;
        }
        let mut frontier = Frontier::new();
        for index in 0..size.div_ceil(TILE_WIDTH as u64) {
            let tile = self.audited_tile(TileId { level: 0, index }, size)?;
            for hash in &tile.hashes {
                frontier.append(*hash, |_, _| {});
            }
        }
        let recomputed = frontier.root();
        let stored_root = self.root_at(size)?;
        if recomputed != stored_root || frontier.size() != size {
            return Err(Error::Storage(format!(
                "stored tiles are inconsistent: leaves give root {recomputed}, upper tiles give {stored_root}"
            )));
        }
        Ok(recomputed)
    }

    /// A tile as it should be for `stored` base hashes at its level, cut to that width.
    fn audited_tile(&self, id: TileId, stored: u64) -> Result<Tile, Error> {
        let start = id.index * TILE_WIDTH as u64;
        let width = (stored.saturating_sub(start)).min(TILE_WIDTH as u64) as usize;
        let tile = match self.edge_tiles.get(id.level as usize) {
            Some((edge_id, tile)) if *edge_id == id => tile.clone(),
            _ => {
                let stored = self
                    .store
                    .read_tile(id)?
                    .ok_or_else(|| Error::Storage(format!("tile {} is missing", id.path(width))))?;
                (*stored).clone()
            }
        };
        if tile.hashes.len() < width || tile.middle.len() < width / MIDDLE_GROUP {
            return Err(tampered(id, "the tile is short"));
        }
        Ok(Tile {
            hashes: tile.hashes[..width].to_vec(),
            middle: tile.middle[..width / MIDDLE_GROUP].to_vec(),
        })
    }

    /// Checks that every stored entry hashes to its stored leaf hash (an edited entry
    /// fails). Entries the store does not keep are skipped; returns how many were checked.
    pub fn audit_entries(&self) -> Result<u64, Error> {
        let mut checked = 0;
        for index in 0..self.size() {
            let Some(entry) = self.store.read_entry(index)? else {
                continue;
            };
            if leaf_hash(&entry) != self.leaf_hash(index)? {
                return Err(Error::Storage(format!(
                    "entry {index} does not hash to its leaf hash"
                )));
            }
            checked += 1;
        }
        Ok(checked)
    }

    /// The bytes of entry `index`, when the store keeps them.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, Error> {
        if index >= self.size() {
            return Err(Error::OutOfRange(format!(
                "entry {index} is beyond the log size {}",
                self.size()
            )));
        }
        self.store.read_entry(index)
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

fn tampered(id: TileId, detail: &str) -> Error {
    Error::Storage(format!("tile {}: {detail}", id.path(TILE_WIDTH)))
}

/// Puts a completed node's hash into the edge tile of its level, when the layout stores
/// it; moves a tile to `touched` once it is full.
fn place_in_edge(
    edge_tiles: &mut Vec<(TileId, Tile)>,
    touched: &mut BTreeMap<TileId, Tile>,
    node: NodeId,
    hash: &Hash,
) -> Result<(), Error> {
    let within = node.level % TILE_HEIGHT;
    if within != 0 && within != MIDDLE_LEVEL {
        return Ok(());
    }
    let slice = tile_slice(node);
    let tile_level = slice.id.level as usize;
    while edge_tiles.len() <= tile_level {
        let level = edge_tiles.len() as u8;
        edge_tiles.push((TileId { level, index: 0 }, Tile::default()));
    }
    let (edge_id, tile) = &mut edge_tiles[tile_level];
    if *edge_id != slice.id {
        return Err(Error::Internal(format!(
            "node {node:?} does not belong to the edge tile {edge_id:?}"
        )));
    }
    let part = if slice.middle {
        &mut tile.middle
    } else {
        &mut tile.hashes
    };
    if part.len() != slice.offset {
        return Err(Error::Internal(format!(
            "node {node:?} lands at offset {} of a tile part of width {}",
            slice.offset,
            part.len()
        )));
    }
    part.push(*hash);
    if tile.is_full() {
        touched.insert(slice.id, std::mem::take(tile));
        *edge_id = TileId {
            level: slice.id.level,
            index: slice.id.index + 1,
        };
    }
    Ok(())
}

/// Root of a perfect subtree from its 1, 2, 4, 8 or 16 bottom hashes.
pub(crate) fn perfect_root(hashes: &[Hash]) -> Result<Hash, Error> {
    let mut buffer = [Hash::default(); MIDDLE_GROUP];
    let mut count = hashes.len();
    if count == 0 || count > MIDDLE_GROUP || !count.is_power_of_two() {
        return Err(Error::Internal(format!(
            "{count} hashes are not a perfect subtree"
        )));
    }
    buffer[..count].copy_from_slice(hashes);
    while count > 1 {
        for pair in 0..count / 2 {
            buffer[pair] = node_hash(&buffer[2 * pair], &buffer[2 * pair + 1]);
        }
        count /= 2;
    }
    Ok(buffer[0])
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
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
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
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
        log.append_batch(&all[..777])?;
        let store = log.store().clone();
        let mut reopened = MerkleLog::open(store)?;
        assert_eq!(reopened.root(), root_of(&all[..777]));
        reopened.append_batch(&all[777..])?;
        assert_eq!(reopened.root(), root_of(&all));
        Ok(())
    }

    #[test]
    fn reopening_at_tile_boundaries_restores_the_log() -> Result<(), Error> {
        let all = leaves(70_000);
        for size in [
            0usize, 1, 15, 16, 17, 255, 256, 257, 4_095, 4_096, 4_097, 65_539,
        ] {
            let mut log = MerkleLog::open(MemoryLogStore::new())?;
            log.append_batch(&all[..size])?;
            let mut reopened = MerkleLog::open(log.store().clone())?;
            assert_eq!(reopened.root(), root_of(&all[..size]), "size {size}");
            reopened.append_batch(&all[size..size + 300])?;
            assert_eq!(
                reopened.root(),
                root_of(&all[..size + 300]),
                "size {size} + 300"
            );
            assert_eq!(reopened.audit()?, reopened.root());
        }
        Ok(())
    }

    #[test]
    fn an_audit_finds_an_edited_entry() -> Result<(), Error> {
        let entries: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
        log.append_entries(entries[..100].to_vec())?;
        log.append_entries(entries[100..].to_vec())?;
        assert_eq!(log.audit_entries()?, 300);
        assert_eq!(log.entry(7)?, Some(entries[7].clone()));
        let mut store = log.store().clone();
        store.overwrite_entry_for_tamper_test(7, b"edited".to_vec());
        let reopened = MerkleLog::open(store)?;
        assert_eq!(
            reopened.audit()?,
            log.root(),
            "the hashes alone still agree"
        );
        assert_eq!(
            reopened.audit_entries().map_err(|error| error.code()),
            Err("storage")
        );
        // A batch of bare hashes cannot follow a log that keeps entries, and vice versa.
        let mut mixed = MerkleLog::open(MemoryLogStore::new())?;
        mixed.append_batch(&leaves(3))?;
        assert!(mixed.append_entries(vec![b"x".to_vec()]).is_err());
        assert!(log.append_batch(&leaves(1)).is_err());
        assert_eq!(log.size(), 300, "a refused commit leaves the log as it was");
        Ok(())
    }

    #[test]
    fn tile_bytes_round_trip() -> Result<(), Error> {
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
        log.append_batch(&leaves(300))?;
        for id in [TileId { level: 0, index: 0 }, TileId { level: 0, index: 1 }] {
            let tile = log.store().read_tile(id)?.unwrap_or_default();
            assert_eq!(Tile::from_bytes(&tile.to_bytes())?, *tile);
        }
        assert!(Tile::from_bytes(&[0u8; 33]).is_err());
        Ok(())
    }

    #[test]
    fn an_audit_finds_a_tampered_middle_or_upper_hash() -> Result<(), Error> {
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
        log.append_batch(&leaves(70_000))?;
        for (id, middle) in [
            (TileId { level: 0, index: 3 }, true),
            (TileId { level: 1, index: 0 }, false),
            (TileId { level: 1, index: 0 }, true),
        ] {
            let mut store = log.store().clone();
            let mut tile = Tile::clone(&store.read_tile(id)?.unwrap_or_default());
            let part = if middle {
                &mut tile.middle
            } else {
                &mut tile.hashes
            };
            part[1] = leaf_hash(b"forged");
            store.overwrite_tile_for_tamper_test(id, tile);
            let reopened = MerkleLog::open(store)?;
            assert_eq!(
                reopened.audit().map_err(|error| error.code()),
                Err("storage")
            );
        }
        Ok(())
    }

    #[test]
    fn a_tampered_tile_breaks_proofs_against_the_signed_root() -> Result<(), Error> {
        let all = leaves(600);
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
        log.append_batch(&all)?;
        let root = log.root();
        assert_eq!(log.audit().map_err(|error| error.code()), Ok(root));
        let id = TileId { level: 0, index: 1 };
        let mut tile = Tile::clone(&log.store().read_tile(id)?.unwrap_or_default());
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
