//! Re-reading a stored log against its tree: every entry against its leaf hash, every
//! tile against the tiles below it, and the root the entries give against a trusted one.
//!
//! The operator checks its own store on a schedule (an edit in the database would
//! otherwise go unnoticed until a restart replays it), and `tally consortium verify
//! --database` checks a database with the latest signed checkpoint as the trusted root.
//! Unlike [`crate::MerkleLog::audit`], which trusts the tiles the log holds in memory,
//! this reads everything from the store, and it reports *what* is wrong first (the lowest
//! entry, then tiles by level) rather than an error string, so that an alarm can name it.
//!
//! Reading at a size below the store's is sound while the log grows: entries and full
//! tiles never change, and a partial tile only widens, so its first hashes stay those of
//! the smaller tree.

use crate::hash::{empty_root, leaf_hash, Hash};
use crate::merkle::Frontier;
use crate::tiles::{perfect_root, LogStore, Tile, TileId, MIDDLE_GROUP, TILE_HEIGHT, TILE_WIDTH};
use crate::Error;

/// The first thing found wrong in a stored log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The store holds fewer entries than the tree has (entries were removed).
    Size {
        /// The stored tree size.
        stored: u64,
        /// The size checked.
        expected: u64,
    },
    /// An entry is missing or does not hash to its leaf hash in its level-0 tile.
    Entry {
        /// Index of the entry.
        index: u64,
        /// What is wrong.
        detail: String,
    },
    /// A tile is missing, short, or disagrees with itself or the tiles below it.
    Tile {
        /// The tile.
        id: TileId,
        /// What is wrong.
        detail: String,
    },
    /// The entries give another root than the trusted one at that size: entries and
    /// their hashes were rewritten together.
    Root {
        /// The tree size of the trusted root.
        size: u64,
        /// The root the stored entries give.
        found: Hash,
        /// The trusted root.
        expected: Hash,
    },
}

impl Finding {
    /// The entry named, when the finding is about one.
    pub fn entry(&self) -> Option<u64> {
        match self {
            Finding::Entry { index, .. } => Some(*index),
            _ => None,
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Size { stored, expected } => write!(
                formatter,
                "the store holds {stored} entries, the tree {expected}"
            ),
            Finding::Entry { index, detail } => write!(formatter, "entry {index} {detail}"),
            Finding::Tile { id, detail } => {
                write!(formatter, "tile {}: {detail}", id.path(TILE_WIDTH))
            }
            Finding::Root {
                size,
                found,
                expected,
            } => write!(
                formatter,
                "the entries give root {found} at size {size}, the trusted root is {expected}"
            ),
        }
    }
}

/// What a check read, and what it found first (`None`: nothing wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCheck {
    /// The tree size checked.
    pub size: u64,
    /// Entries read and hashed.
    pub entries: u64,
    /// Tiles read and checked.
    pub tiles: u64,
    /// The first thing wrong, if any.
    pub finding: Option<Finding>,
}

/// Checks the first `size` entries of `store` and every tile over them; with `trusted`
/// (a size up to `size` and its signed root), also that the entries give that root.
/// For a store that keeps its entries: a missing entry is a finding. `Err` only when
/// the store cannot be read.
pub fn check_stored_log<S: LogStore>(
    store: &S,
    size: u64,
    trusted: Option<(u64, Hash)>,
) -> Result<StoreCheck, Error> {
    let mut check = StoreCheck {
        size,
        entries: 0,
        tiles: 0,
        finding: None,
    };
    if let Some((trusted_size, _)) = trusted {
        if trusted_size > size {
            return Err(Error::OutOfRange(format!(
                "a trusted root at size {trusted_size} is beyond the size checked, {size}"
            )));
        }
    }
    let stored = store.tree_size()?;
    if stored < size {
        check.finding = Some(Finding::Size {
            stored,
            expected: size,
        });
        return Ok(check);
    }
    check.finding = check_levels(store, size, trusted, &mut check)?.err();
    Ok(check)
}

/// Level 0 with the entries and the root, then each level above against the roots of
/// the full tiles below it.
fn check_levels<S: LogStore>(
    store: &S,
    size: u64,
    trusted: Option<(u64, Hash)>,
    check: &mut StoreCheck,
) -> Result<Result<(), Finding>, Error> {
    let mut frontier = Frontier::new();
    if let Some((0, root)) = trusted {
        if root != empty_root() {
            return Ok(Err(Finding::Root {
                size: 0,
                found: empty_root(),
                expected: root,
            }));
        }
    }
    // Roots of the full tiles of the level below the one being checked.
    let mut below: Vec<Hash> = Vec::new();
    let mut level: u8 = 0;
    loop {
        let hashes = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
        if hashes == 0 {
            return Ok(Ok(()));
        }
        let mut roots = Vec::with_capacity((hashes / TILE_WIDTH as u64) as usize);
        for index in 0..hashes.div_ceil(TILE_WIDTH as u64) {
            let id = TileId { level, index };
            let width = (hashes - index * TILE_WIDTH as u64).min(TILE_WIDTH as u64) as usize;
            let tile = match read_tile(store, id, width)? {
                Ok(tile) => tile,
                Err(finding) => return Ok(Err(finding)),
            };
            check.tiles += 1;
            if level == 0 {
                for (offset, hash) in tile.hashes.iter().enumerate() {
                    let entry = index * TILE_WIDTH as u64 + offset as u64;
                    if let Err(finding) = check_entry(store, entry, hash) {
                        return Ok(Err(finding));
                    }
                    check.entries += 1;
                    frontier.append(*hash, |_, _| {});
                    if let Some((trusted_size, expected)) = trusted {
                        if frontier.size() == trusted_size && frontier.root() != expected {
                            return Ok(Err(Finding::Root {
                                size: trusted_size,
                                found: frontier.root(),
                                expected,
                            }));
                        }
                    }
                }
            } else {
                for (offset, hash) in tile.hashes.iter().enumerate() {
                    let below_index = index as usize * TILE_WIDTH + offset;
                    if below.get(below_index) != Some(hash) {
                        return Ok(Err(Finding::Tile {
                            id,
                            detail: format!(
                                "hash {offset} is not the root of tile {}",
                                TileId {
                                    level: level - 1,
                                    index: below_index as u64
                                }
                                .path(TILE_WIDTH)
                            ),
                        }));
                    }
                }
            }
            for (group, middle) in tile.middle.iter().enumerate() {
                let base = &tile.hashes[group * MIDDLE_GROUP..(group + 1) * MIDDLE_GROUP];
                if perfect_root(base)? != *middle {
                    return Ok(Err(Finding::Tile {
                        id,
                        detail: format!(
                            "middle hash {group} is not the root of hashes {}..{}",
                            group * MIDDLE_GROUP,
                            (group + 1) * MIDDLE_GROUP
                        ),
                    }));
                }
            }
            if width == TILE_WIDTH {
                roots.push(perfect_root(&tile.middle)?);
            }
        }
        below = roots;
        level += 1;
    }
}

/// A stored tile cut to `width` base hashes (and their middle hashes).
fn read_tile<S: LogStore>(
    store: &S,
    id: TileId,
    width: usize,
) -> Result<Result<Tile, Finding>, Error> {
    let Some(tile) = store.read_tile(id)? else {
        return Ok(Err(Finding::Tile {
            id,
            detail: "is missing".into(),
        }));
    };
    let middle = width / MIDDLE_GROUP;
    if tile.hashes.len() < width || tile.middle.len() < middle {
        return Ok(Err(Finding::Tile {
            id,
            detail: format!("holds {} hashes, the tree needs {width}", tile.hashes.len()),
        }));
    }
    Ok(Ok(Tile {
        hashes: tile.hashes[..width].to_vec(),
        middle: tile.middle[..middle].to_vec(),
    }))
}

fn check_entry<S: LogStore>(store: &S, index: u64, leaf: &Hash) -> Result<(), Finding> {
    match store.read_entry(index) {
        Ok(Some(bytes)) if leaf_hash(&bytes) == *leaf => Ok(()),
        Ok(Some(_)) => Err(Finding::Entry {
            index,
            detail: "does not hash to its leaf hash".into(),
        }),
        Ok(None) => Err(Finding::Entry {
            index,
            detail: "is missing".into(),
        }),
        Err(error) => Err(Finding::Entry {
            index,
            detail: format!("cannot be read: {error}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::{MemoryLogStore, MerkleLog};

    fn log(count: u32) -> Result<MerkleLog<MemoryLogStore>, Error> {
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
        let entries: Vec<Vec<u8>> = (0..count).map(|i| i.to_be_bytes().to_vec()).collect();
        for batch in entries.chunks(1000) {
            log.append_entries(batch.to_vec())?;
        }
        Ok(log)
    }

    #[test]
    fn an_untouched_log_checks_out_at_every_size() -> Result<(), Error> {
        let log = log(70_000)?;
        let check = check_stored_log(log.store(), 70_000, Some((70_000, log.root())))?;
        assert_eq!(check.finding, None);
        assert_eq!(check.entries, 70_000);
        // 274 level-0 tiles, 2 level-1 tiles, 1 level-2 tile.
        assert_eq!(check.tiles, 277);
        for size in [0u64, 1, 255, 256, 257, 4096, 65_536, 65_537] {
            let trusted = Some((size, log.root_at(size)?));
            let check = check_stored_log(log.store(), size, trusted)?;
            assert_eq!(check.finding, None, "size {size}");
        }
        Ok(())
    }

    #[test]
    fn the_first_edited_entry_is_named() -> Result<(), Error> {
        let log = log(600)?;
        let mut store = log.store().clone();
        store.overwrite_entry_for_tamper_test(300, b"edited".to_vec());
        store.overwrite_entry_for_tamper_test(7, b"edited".to_vec());
        let check = check_stored_log(&store, 600, Some((600, log.root())))?;
        assert_eq!(check.finding.as_ref().and_then(Finding::entry), Some(7));
        assert_eq!(check.entries, 7);
        assert_eq!(
            check.finding.map(|finding| finding.to_string()),
            Some("entry 7 does not hash to its leaf hash".into())
        );
        Ok(())
    }

    #[test]
    fn an_edited_tile_is_named() -> Result<(), Error> {
        let log = log(70_000)?;
        for (id, middle, offset, expected) in [
            (
                TileId { level: 0, index: 3 },
                true,
                1,
                "tile tile/0/003: middle hash 1",
            ),
            (
                TileId { level: 1, index: 0 },
                false,
                9,
                "tile tile/1/000: hash 9 is not",
            ),
            (
                TileId { level: 1, index: 1 },
                false,
                2,
                "tile tile/1/001: hash 2 is not",
            ),
        ] {
            let mut store = log.store().clone();
            let mut tile = Tile::clone(&store.read_tile(id)?.unwrap_or_default());
            let part = if middle {
                &mut tile.middle
            } else {
                &mut tile.hashes
            };
            part[offset] = leaf_hash(b"forged");
            store.overwrite_tile_for_tamper_test(id, tile);
            let finding = check_stored_log(&store, 70_000, None)?.finding;
            let text = finding
                .map(|finding| finding.to_string())
                .unwrap_or_default();
            assert!(text.starts_with(expected), "{text}");
        }
        Ok(())
    }

    #[test]
    fn entries_rewritten_with_their_hashes_give_another_root() -> Result<(), Error> {
        // A log of 100 entries whose entry 5 was replaced and every hash recomputed: the
        // store agrees with itself, only the trusted root tells.
        let honest = log(100)?;
        let mut entries: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
        entries[5] = b"rewritten".to_vec();
        let mut forged = MerkleLog::open(MemoryLogStore::new())?;
        forged.append_entries(entries)?;
        let check = check_stored_log(forged.store(), 100, Some((100, honest.root())))?;
        assert!(matches!(
            check.finding,
            Some(Finding::Root { size: 100, .. })
        ));
        assert_eq!(check_stored_log(forged.store(), 100, None)?.finding, None);
        Ok(())
    }

    #[test]
    fn a_store_shorter_than_the_tree_is_a_finding() -> Result<(), Error> {
        let log = log(10)?;
        let check = check_stored_log(log.store(), 11, None)?;
        assert_eq!(
            check.finding,
            Some(Finding::Size {
                stored: 10,
                expected: 11
            })
        );
        assert!(check_stored_log(log.store(), 5, Some((6, log.root()))).is_err());
        Ok(())
    }
}
