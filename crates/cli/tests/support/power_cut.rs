//! The power cut of the power-loss test. [`Recorder::build`] compiles `power_cut.c` with the
//! system C compiler into a library that `tally serve` loads with LD_PRELOAD; it records,
//! for every file of one directory, each write's undo (the bytes it overwrote and the size
//! before) and each sync. After the server is killed, [`Journal::cut_power`] undoes, file by
//! file and newest first, every write made after that file's last sync: the files are left
//! as a disk would hold them had the power failed at the kill, with the operating system's
//! cache lost.
//!
//! What it models, and what not:
//! - Modelled: the page cache lost at once, every write not covered by a completed fsync or
//!   fdatasync of its file dropped (the worst case, where the disk kept none of them). A
//!   sync covers only the writes recorded before it began.
//! - Not modelled: directory entries (a file created, or an unlink, is taken as durable at
//!   once, though SQLite syncs the directory only for some files); torn or reordered writes
//!   within a sector or among unsynced writes (some kept, others not); a disk that lies
//!   about a flush; memory-mapped writes (SQLite maps no database file unless `mmap_size` is
//!   set); and PostgreSQL, whose durability is its server's.
//! - The "-shm" index is not recorded and is deleted at the cut: SQLite never syncs it and
//!   rebuilds it from the log at the first open after a crash.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The C source of the recorder.
const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/power_cut.c");

/// The recorder library, the directory it follows and the journal it writes.
pub struct Recorder {
    library: PathBuf,
    directory: PathBuf,
    journal: PathBuf,
}

impl Recorder {
    /// Compiles the recorder into `work` (outside `directory`), to follow every file of
    /// `directory`.
    pub fn build(work: &Path, directory: &Path) -> Self {
        let library = work.join("power_cut.so");
        let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        let output = Command::new(&compiler)
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&library)
            .arg(SOURCE)
            .arg("-ldl")
            .output()
            .unwrap_or_else(|error| panic!("the C compiler {compiler} did not run: {error}"));
        assert!(
            output.status.success(),
            "{compiler} could not build the power-cut recorder: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The recorder compares the paths the kernel gives for open files.
        let directory = directory.canonicalize().unwrap();
        let journal = work.canonicalize().unwrap().join("power_cut.journal");
        assert!(
            !journal.starts_with(&directory),
            "the journal must not be in the directory it follows"
        );
        Self {
            library,
            directory,
            journal,
        }
    }

    /// The environment that loads the recorder into a process.
    pub fn environment(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.library.display().to_string()),
            (
                "POWER_CUT_DIRECTORY".into(),
                self.directory.display().to_string(),
            ),
            (
                "POWER_CUT_JOURNAL".into(),
                self.journal.display().to_string(),
            ),
        ]
    }

    /// What has been recorded so far.
    pub fn journal(&self) -> Journal {
        Journal::read(&self.journal, &self.directory)
    }

    /// The followed directory, as the recorder names it.
    pub fn directory(&self) -> &Path {
        &self.directory
    }
}

/// One record of the journal (see `power_cut.c`).
#[derive(Debug)]
enum Record {
    /// A write or truncation is about to change `path`: the bytes from `offset` it
    /// overwrites or cuts off, and the file's size before.
    Undo {
        path: PathBuf,
        offset: u64,
        size_before: u64,
        old: Vec<u8>,
    },
    /// A sync of `path` completed; it covers the records before `durable_before`.
    Synced {
        path: PathBuf,
        durable_before: usize,
    },
    /// `path` was unlinked: later records of that name are of a new file.
    Deleted { path: PathBuf },
    /// A write the recorder cannot undo (a writev to a followed file).
    Unsupported { path: PathBuf },
}

impl Record {
    fn path(&self) -> &Path {
        match self {
            Record::Undo { path, .. }
            | Record::Synced { path, .. }
            | Record::Deleted { path }
            | Record::Unsupported { path } => path,
        }
    }
}

/// The recorded writes and syncs, in the order they happened.
pub struct Journal {
    records: Vec<Record>,
    directory: PathBuf,
}

/// What the cut did to one file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileCut {
    /// Writes a completed sync covered: kept.
    pub kept: usize,
    /// Writes after the last sync: undone.
    pub undone: usize,
    /// Syncs of the file.
    pub syncs: usize,
}

/// Reads the numbers of a record in the machine's byte order; `None` at a record cut short
/// (the process was killed while appending it, so its write had not begun).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, length: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(length)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.take(8)?.try_into().ok()?))
    }

    fn record(&mut self) -> Option<Record> {
        let kind = *self.take(1)?.first()?;
        let length = self.u32()? as usize;
        let path = PathBuf::from(String::from_utf8(self.take(length)?.to_vec()).ok()?);
        Some(match kind {
            b'W' => {
                let offset = self.u64()?;
                let size_before = self.u64()?;
                let old_length = self.u64()? as usize;
                let old = self.take(old_length)?.to_vec();
                Record::Undo {
                    path,
                    offset,
                    size_before,
                    old,
                }
            }
            b'S' => Record::Synced {
                path,
                durable_before: self.u64()? as usize,
            },
            b'D' => Record::Deleted { path },
            b'U' => Record::Unsupported { path },
            other => panic!("power-cut journal: unknown record kind {other}"),
        })
    }
}

impl Journal {
    fn read(journal: &Path, directory: &Path) -> Self {
        let bytes = std::fs::read(journal).unwrap_or_default();
        let mut reader = Reader {
            bytes: &bytes,
            at: 0,
        };
        let mut records = Vec::new();
        while reader.at < bytes.len() {
            match reader.record() {
                Some(record) => records.push(record),
                None => break,
            }
        }
        Self {
            records,
            directory: directory.to_path_buf(),
        }
    }

    /// Per file of the directory (by name): what a cut now would keep and undo.
    pub fn files(&self) -> BTreeMap<String, FileCut> {
        self.plan()
            .into_iter()
            .map(|(path, (cut, _))| {
                let name = path.strip_prefix(&self.directory).unwrap_or(&path);
                (name.display().to_string(), cut)
            })
            .collect()
    }

    /// Per file: what the cut keeps and undoes, and the indexes of the records it undoes.
    fn plan(&self) -> BTreeMap<PathBuf, (FileCut, Vec<usize>)> {
        let unsupported: Vec<&Path> = self
            .records
            .iter()
            .filter(|record| matches!(record, Record::Unsupported { .. }))
            .map(Record::path)
            .collect();
        assert!(
            unsupported.is_empty(),
            "writes the power cut cannot undo were made to {unsupported:?}"
        );
        // A file's history starts after the last unlink of its name.
        let mut starts: BTreeMap<&Path, usize> = BTreeMap::new();
        for (index, record) in self.records.iter().enumerate() {
            starts.entry(record.path()).or_insert(0);
            if let Record::Deleted { path } = record {
                starts.insert(path.as_path(), index + 1);
            }
        }
        let mut durable_before = starts.clone();
        let mut plan: BTreeMap<PathBuf, (FileCut, Vec<usize>)> = BTreeMap::new();
        for (index, record) in self.records.iter().enumerate() {
            if let Record::Synced {
                path,
                durable_before: covered,
            } = record
            {
                if index >= starts[path.as_path()] {
                    let durable = durable_before.get_mut(path.as_path()).unwrap();
                    *durable = (*durable).max(*covered);
                    plan.entry(path.clone()).or_default().0.syncs += 1;
                }
            }
        }
        for (index, record) in self.records.iter().enumerate() {
            if let Record::Undo { path, .. } = record {
                if index < starts[path.as_path()] {
                    continue;
                }
                let (cut, undo) = plan.entry(path.clone()).or_default();
                if index < durable_before[path.as_path()] {
                    cut.kept += 1;
                } else {
                    cut.undone += 1;
                    undo.push(index);
                }
            }
        }
        plan
    }

    /// Cuts the power: undoes, per file and newest first, every write after the file's
    /// last sync, and deletes the shared-memory indexes. The process that wrote must be
    /// dead. Answers what was kept and undone per file.
    pub fn cut_power(self) -> BTreeMap<String, FileCut> {
        let files = self.files();
        for (path, (_, undo)) in self.plan() {
            if undo.is_empty() {
                continue;
            }
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            for index in undo.into_iter().rev() {
                let Record::Undo {
                    offset,
                    size_before,
                    old,
                    ..
                } = &self.records[index]
                else {
                    unreachable!("only undo records are planned")
                };
                file.write_all_at(old, *offset).unwrap();
                file.set_len(*size_before).unwrap();
            }
            file.sync_all().unwrap();
        }
        for entry in std::fs::read_dir(&self.directory).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with("-shm") {
                std::fs::remove_file(path).unwrap();
            }
        }
        files
    }
}
