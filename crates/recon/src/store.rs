//! Partition buffers of both sides with memory accounting: when the budget is exceeded the largest partitions are appended to spill files.

use crate::error::ReconError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Which input a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ledger,
    Channel,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Ledger => "ledger",
            Side::Channel => "channel",
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Ledger => 0,
            Side::Channel => 1,
        }
    }
}

/// The records of one side of one partition.
#[derive(Debug, Default)]
pub struct PartitionData {
    /// Records in file order that are still in memory (they come after the spilled ones).
    pub segments: Vec<Vec<u8>>,
    /// Bytes of `segments` as accounted (capacity).
    pub memory_bytes: usize,
    /// Bytes written to the spill file.
    pub spilled_bytes: u64,
    pub spill_path: Option<PathBuf>,
}

impl PartitionData {
    /// All bytes of the partition, spilled first (file order is kept).
    pub fn total_bytes(&self) -> u64 {
        self.spilled_bytes + self.memory_bytes as u64
    }

    /// Reads the spilled records back in front of the in-memory ones.
    pub fn load(mut self) -> Result<Vec<Vec<u8>>, ReconError> {
        if let Some(path) = &self.spill_path {
            let mut spilled = Vec::with_capacity(usize::try_from(self.spilled_bytes).unwrap_or(0));
            File::open(path)
                .and_then(|mut file| file.read_to_end(&mut spilled))
                .map_err(|error| ReconError::io(path, error))?;
            let _ = std::fs::remove_file(path);
            self.segments.insert(0, spilled);
        }
        Ok(self.segments)
    }
}

/// Spill counters of a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpillStatistics {
    pub spilled_bytes: u64,
    pub spill_events: u64,
    pub peak_accounted_bytes: usize,
}

/// Both sides' partitions under one memory budget.
#[derive(Debug)]
pub struct Store {
    pub partitions: [Vec<PartitionData>; 2],
    spill_directory: PathBuf,
    memory_bytes: usize,
    threshold_bytes: usize,
    pub statistics: SpillStatistics,
}

impl Store {
    /// `threshold_bytes`: accounted partition memory above which partitions are spilled.
    pub fn new(partition_count: usize, spill_directory: &Path, threshold_bytes: usize) -> Store {
        let side = || {
            (0..partition_count)
                .map(|_| PartitionData::default())
                .collect()
        };
        Store {
            partitions: [side(), side()],
            spill_directory: spill_directory.to_path_buf(),
            memory_bytes: 0,
            threshold_bytes,
            statistics: SpillStatistics::default(),
        }
    }

    /// Accounted bytes now held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// Adds the records of one block, then spills if the budget is exceeded.
    pub fn add(&mut self, side: Side, parts: Vec<Vec<u8>>) -> Result<(), ReconError> {
        for (index, mut part) in parts.into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            if part.capacity() > part.len() + part.len() / 4 {
                part.shrink_to_fit();
            }
            let partition = &mut self.partitions[side.index()][index];
            partition.memory_bytes += part.capacity();
            self.memory_bytes += part.capacity();
            partition.segments.push(part);
        }
        self.statistics.peak_accounted_bytes =
            self.statistics.peak_accounted_bytes.max(self.memory_bytes);
        if self.memory_bytes > self.threshold_bytes {
            self.spill_until(self.threshold_bytes / 2)?;
        }
        Ok(())
    }

    /// Spills the largest in-memory partitions until at most `target_bytes` are held.
    fn spill_until(&mut self, target_bytes: usize) -> Result<(), ReconError> {
        let mut candidates: Vec<(usize, usize, usize)> = Vec::new();
        for side in 0..2 {
            for (index, partition) in self.partitions[side].iter().enumerate() {
                if partition.memory_bytes > 0 {
                    candidates.push((partition.memory_bytes, side, index));
                }
            }
        }
        candidates.sort_unstable_by(|left, right| right.cmp(left));
        for (_, side, index) in candidates {
            if self.memory_bytes <= target_bytes {
                break;
            }
            self.spill(side, index)?;
        }
        Ok(())
    }

    fn spill(&mut self, side: usize, index: usize) -> Result<(), ReconError> {
        let side_name = if side == 0 { "ledger" } else { "channel" };
        let path = self
            .spill_directory
            .join(format!("{side_name}-{index:05}.spill"));
        let partition = &mut self.partitions[side][index];
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| ReconError::io(&path, error))?;
        for segment in partition.segments.drain(..) {
            file.write_all(&segment)
                .map_err(|error| ReconError::io(&path, error))?;
            partition.spilled_bytes += segment.len() as u64;
            self.statistics.spilled_bytes += segment.len() as u64;
        }
        self.memory_bytes -= partition.memory_bytes;
        partition.memory_bytes = 0;
        partition.spill_path = Some(path);
        self.statistics.spill_events += 1;
        Ok(())
    }

    /// Hands the partitions over for matching, as (ledger, channel) pairs by partition index.
    pub fn into_pairs(self) -> Vec<(usize, PartitionData, PartitionData)> {
        let [ledger, channel] = self.partitions;
        ledger
            .into_iter()
            .zip(channel)
            .enumerate()
            .map(|(index, (ledger, channel))| (index, ledger, channel))
            .collect()
    }
}
