//! The C2SP tlog-tiles resources of a log: the paths `tile/<L>/<N>[.p/<W>]` and
//! `tile/entries/<N>[.p/<W>]`, which tiles a tree of a given size is served in, and entry
//! bundles (entries as big-endian `u16` lengths and bytes).
//!
//! Why exactly the specification's form (https://c2sp.org/tlog-tiles): existing tlog
//! clients, monitors and witnesses compute these paths themselves from a checkpoint's
//! size, so a log that serves any other spelling cannot be read by them. Parsing is
//! strict (one spelling per resource: no leading zeros in a level or a width, three
//! digits per index element, `x` on all but the last) so that a cache or a mirror never
//! holds one tile under two names.

use crate::tiles::{TileId, TILE_HEIGHT, TILE_WIDTH};
use crate::Error;

/// Highest tile level a path may name (the specification's bound).
pub const TILE_LEVEL_MAX: u8 = 63;
/// Longest entry an entry bundle can carry (its length is a `u16`).
pub const BUNDLE_ENTRY_SIZE_MAX: usize = u16::MAX as usize;

/// One tlog-tiles resource: a tile of hashes or a bundle of entries, full (width 256)
/// or partial (width 1 to 255).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileResource {
    /// `tile/<L>/<N>[.p/<W>]`: hashes of tree level `8 * L`.
    Hashes {
        /// The tile.
        id: TileId,
        /// How many hashes, from the tile's first.
        width: usize,
    },
    /// `tile/entries/<N>[.p/<W>]`: entries `256 * N .. 256 * N + W`.
    Entries {
        /// Index of the bundle (of its level-0 tile).
        index: u64,
        /// How many entries, from the bundle's first.
        width: usize,
    },
}

/// The `<N>` path elements of an index: zero-padded three-digit groups, all but the
/// last prefixed with `x` (1234067 is `x001/x234/067`).
pub fn encode_tile_index(index: u64) -> String {
    let mut groups = vec![index % 1000];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(position, group)| {
            if position == last {
                format!("{group:03}")
            } else {
                format!("x{group:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl TileResource {
    /// The resource's path under the log's prefix, e.g. `tile/0/x001/x234/067.p/5`.
    pub fn path(&self) -> String {
        let (head, index, width) = match self {
            TileResource::Hashes { id, width } => (id.level.to_string(), id.index, *width),
            TileResource::Entries { index, width } => ("entries".to_owned(), *index, *width),
        };
        let mut path = format!("tile/{head}/{}", encode_tile_index(index));
        if width != TILE_WIDTH {
            path.push_str(&format!(".p/{width}"));
        }
        path
    }

    /// Parses a path under the log's prefix (`tile/...`) in its one canonical spelling;
    /// anything else is `invalid_tile`.
    pub fn parse(path: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidTilePath(format!("{path:?}: {why}"));
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| invalid("a tile path starts with tile/"))?;
        let (head, rest) = rest
            .split_once('/')
            .ok_or_else(|| invalid("a tile path names a level or entries, then an index"))?;
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index_part, width)) => {
                let width = parse_plain_number(width)
                    .filter(|width| (1..TILE_WIDTH as u64).contains(width))
                    .ok_or_else(|| invalid("a partial width is 1 to 255, no leading zero"))?;
                (index_part, width as usize)
            }
            None => (rest, TILE_WIDTH),
        };
        let index = parse_tile_index(index_part).ok_or_else(|| {
            invalid("an index is three-digit elements, all but the last starting with x")
        })?;
        if head == "entries" {
            return Ok(TileResource::Entries { index, width });
        }
        let level = parse_plain_number(head)
            .filter(|level| *level <= u64::from(TILE_LEVEL_MAX))
            .ok_or_else(|| invalid("a level is 0 to 63, no leading zero"))?;
        Ok(TileResource::Hashes {
            id: TileId {
                level: level as u8,
                index,
            },
            width,
        })
    }
}

/// A decimal number with no sign and no leading zero (but `0` itself).
fn parse_plain_number(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// The index of `x001/x234/067`, only in the spelling [`encode_tile_index`] gives.
fn parse_tile_index(text: &str) -> Option<u64> {
    let elements: Vec<&str> = text.split('/').collect();
    let (last, leading) = elements.split_last()?;
    let mut index: u64 = 0;
    for element in leading.iter().map(|element| element.strip_prefix('x')) {
        index = push_group(index, element?)?;
    }
    index = push_group(index, last)?;
    (encode_tile_index(index) == text).then_some(index)
}

fn push_group(index: u64, group: &str) -> Option<u64> {
    if group.len() != 3 || !group.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    index.checked_mul(1000)?.checked_add(group.parse().ok()?)
}

/// The hash tiles of one level of a tree: how many full tiles, and the width of the
/// partial tile after them (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelTiles {
    /// The tile level.
    pub level: u8,
    /// Full tiles `0 .. full`.
    pub full: u64,
    /// Width of the partial tile at index `full`, 0 when there is none.
    pub partial: usize,
}

/// The hash tiles a tree of `size` entries is served in, level by level, as the
/// specification defines them: level `l` has `size / 256^(l+1)` full tiles and a partial
/// tile of width `(size / 256^l) mod 256`. Entry bundles follow level 0.
pub fn tiles_of_tree(size: u64) -> Vec<LevelTiles> {
    let mut levels = Vec::new();
    let mut level: u8 = 0;
    loop {
        let hashes = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
        if hashes == 0 {
            break;
        }
        levels.push(LevelTiles {
            level,
            full: hashes / TILE_WIDTH as u64,
            partial: (hashes % TILE_WIDTH as u64) as usize,
        });
        level += 1;
    }
    levels
}

/// An entry bundle: each entry as its length (big-endian `u16`) and its bytes. Refused
/// (`out_of_range`) for an entry over 65,535 bytes, which the format cannot carry.
pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, Error> {
    let mut bundle = Vec::with_capacity(entries.iter().map(|e| 2 + e.as_ref().len()).sum());
    for entry in entries {
        let entry = entry.as_ref();
        let length = u16::try_from(entry.len()).map_err(|_| {
            Error::OutOfRange(format!(
                "an entry of {} bytes is over the {BUNDLE_ENTRY_SIZE_MAX} an entry bundle carries",
                entry.len()
            ))
        })?;
        bundle.extend_from_slice(&length.to_be_bytes());
        bundle.extend_from_slice(entry);
    }
    Ok(bundle)
}

/// The entries of a bundle, in order. Refused (`malformed_entry`) when it ends inside a
/// length or an entry.
pub fn decode_entry_bundle(mut bundle: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut entries = Vec::new();
    while !bundle.is_empty() {
        let (length, rest) = bundle
            .split_first_chunk::<2>()
            .ok_or_else(|| Error::MalformedEntry("a truncated length in a bundle".into()))?;
        let length = usize::from(u16::from_be_bytes(*length));
        if rest.len() < length {
            return Err(Error::MalformedEntry(
                "a truncated entry in a bundle".into(),
            ));
        }
        let (entry, rest) = rest.split_at(length);
        entries.push(entry.to_vec());
        bundle = rest;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(level: u8, index: u64, width: usize) -> TileResource {
        TileResource::Hashes {
            id: TileId { level, index },
            width,
        }
    }

    #[test]
    fn paths_are_the_specifications_examples() {
        // "index 1234067 will be encoded as x001/x234/067".
        assert_eq!(encode_tile_index(1_234_067), "x001/x234/067");
        assert_eq!(hashes(0, 1_234_067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(hashes(0, 1_234_067, 5).path(), "tile/0/x001/x234/067.p/5");
        assert_eq!(hashes(1, 3, 256).path(), "tile/1/003");
        assert_eq!(hashes(2, 1000, 17).path(), "tile/2/x001/000.p/17");
        let bundle = TileResource::Entries {
            index: 1_234_067,
            width: 256,
        };
        assert_eq!(bundle.path(), "tile/entries/x001/x234/067");
        assert_eq!(encode_tile_index(0), "000");
        assert_eq!(encode_tile_index(999), "999");
        assert_eq!(encode_tile_index(1000), "x001/000");
        assert_eq!(
            encode_tile_index(u64::MAX),
            "x018/x446/x744/x073/x709/x551/615"
        );
        // Agrees with the tile store's own naming.
        assert_eq!(
            TileId {
                level: 0,
                index: 1_234_067
            }
            .path(5),
            hashes(0, 1_234_067, 5).path()
        );
    }

    #[test]
    fn paths_parse_back_in_their_one_spelling_only() {
        for resource in [
            hashes(0, 0, 256),
            hashes(0, 1_234_067, 1),
            hashes(63, 999, 255),
            hashes(5, u64::MAX, 256),
            TileResource::Entries {
                index: 1000,
                width: 112,
            },
        ] {
            assert_eq!(TileResource::parse(&resource.path()), Ok(resource));
        }
        for bad in [
            "tile/0/0",                                 // not three digits
            "tile/0/1234",                              // four digits
            "tile/0/001/234",                           // the first element lacks its x
            "tile/0/x000/001",                          // a leading zero element
            "tile/0/x001/x234",                         // the last element has an x
            "tile/00/001",                              // a level with a leading zero
            "tile/64/001",                              // a level above 63
            "tile/0/001.p/0",                           // an empty partial tile
            "tile/0/001.p/256",                         // a partial tile as wide as a full one
            "tile/0/001.p/05",                          // a width with a leading zero
            "tile/0/001.p/",                            // no width
            "tile/entries/1",                           // not three digits
            "tile/x/001",                               // not a level
            "tile/0/",                                  // no index
            "tiles/0/001",                              // not under tile/
            "tile/0/x019/x000/x000/x000/x000/x000/000", // beyond u64
        ] {
            assert_eq!(
                TileResource::parse(bad).map_err(|error| error.code()),
                Err("invalid_tile"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_tiles_of_a_tree_are_the_specifications_examples() {
        // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
        // level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
        // width 17, and one partial level 2 tile of width 1."
        assert_eq!(
            tiles_of_tree(70_000),
            vec![
                LevelTiles {
                    level: 0,
                    full: 273,
                    partial: 112
                },
                LevelTiles {
                    level: 1,
                    full: 1,
                    partial: 17
                },
                LevelTiles {
                    level: 2,
                    full: 0,
                    partial: 1
                },
            ]
        );
        // "a tree of size 256 will be represented by a full level 0 tile and a partial
        // level 1 tile of width 1."
        assert_eq!(
            tiles_of_tree(256),
            vec![
                LevelTiles {
                    level: 0,
                    full: 1,
                    partial: 0
                },
                LevelTiles {
                    level: 1,
                    full: 0,
                    partial: 1
                },
            ]
        );
        assert_eq!(tiles_of_tree(0), vec![]);
    }

    #[test]
    fn bundles_round_trip_and_refuse_what_they_cannot_carry() -> Result<(), Error> {
        let entries = vec![b"one".to_vec(), Vec::new(), vec![7u8; 300]];
        let bundle = encode_entry_bundle(&entries)?;
        assert_eq!(&bundle[..5], &[0, 3, b'o', b'n', b'e']);
        assert_eq!(decode_entry_bundle(&bundle)?, entries);
        assert!(decode_entry_bundle(&bundle[..bundle.len() - 1]).is_err());
        assert!(decode_entry_bundle(&[0]).is_err());
        assert_eq!(
            encode_entry_bundle(&[vec![0u8; BUNDLE_ENTRY_SIZE_MAX + 1]])
                .map_err(|error| error.code()),
            Err("out_of_range")
        );
        assert_eq!(
            decode_entry_bundle(&encode_entry_bundle(&[vec![1u8; BUNDLE_ENTRY_SIZE_MAX]])?)?[0]
                .len(),
            BUNDLE_ENTRY_SIZE_MAX
        );
        Ok(())
    }
}
