//! Tabular data as text: reading and writing CSV, labels, missing values, and the seeded
//! stratified train/test split.

use crate::error::ScoringError;
use std::io::{Read, Write};
use tally_core::SplitMix64;

/// Most rows a table may hold; a limit so that a wrong file fails clearly instead of
/// exhausting memory.
pub const ROWS_MAX: usize = 20_000_000;

/// A table of text cells with a header row, as read from CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// True when a cell holds no value: empty (after trimming), `NA`, `NaN`, `null` or `?`
/// (the UCI convention).
pub fn is_missing(text: &str) -> bool {
    let text = text.trim();
    text.is_empty()
        || text.eq_ignore_ascii_case("na")
        || text.eq_ignore_ascii_case("nan")
        || text.eq_ignore_ascii_case("null")
        || text == "?"
}

impl Table {
    /// Reads CSV with a header row. Every row must have as many cells as the header.
    pub fn from_csv<R: Read>(reader: R) -> Result<Table, ScoringError> {
        let mut csv_reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(reader);
        let headers: Vec<String> = csv_reader.headers()?.iter().map(str::to_string).collect();
        if headers.is_empty() {
            return Err(ScoringError::InvalidData(
                "the CSV has no header row".into(),
            ));
        }
        let mut rows = Vec::new();
        for record in csv_reader.records() {
            let record = record?;
            if rows.len() == ROWS_MAX {
                return Err(ScoringError::InvalidData(format!(
                    "more than {ROWS_MAX} rows"
                )));
            }
            rows.push(record.iter().map(str::to_string).collect());
        }
        Ok(Table { headers, rows })
    }

    /// Writes the table as CSV with its header row.
    pub fn write_csv<W: Write>(&self, writer: W) -> Result<(), ScoringError> {
        let mut csv_writer = csv::Writer::from_writer(writer);
        csv_writer.write_record(&self.headers)?;
        for row in &self.rows {
            csv_writer.write_record(row)?;
        }
        csv_writer.flush().map_err(csv::Error::from)?;
        Ok(())
    }

    pub fn column_index(&self, name: &str) -> Result<usize, ScoringError> {
        self.headers
            .iter()
            .position(|header| header == name)
            .ok_or_else(|| ScoringError::ColumnNotFound(name.to_string()))
    }

    /// The label of each row: `true` for bad (the cell equals `bad_value` after trimming),
    /// `false` for good. A missing label is an error, and so is a table with no bad or no
    /// good row.
    pub fn labels(&self, target: &str, bad_value: &str) -> Result<Vec<bool>, ScoringError> {
        let index = self.column_index(target)?;
        let bad_value = bad_value.trim();
        let mut labels = Vec::with_capacity(self.rows.len());
        for (row_number, row) in self.rows.iter().enumerate() {
            let cell = row[index].trim();
            if is_missing(cell) {
                return Err(ScoringError::InvalidData(format!(
                    "row {}: the label column {target:?} is empty",
                    row_number + 1
                )));
            }
            labels.push(cell == bad_value);
        }
        Ok(labels)
    }

    /// A new table with the given rows, in the given order.
    pub fn select_rows(&self, indices: &[usize]) -> Table {
        Table {
            headers: self.headers.clone(),
            rows: indices
                .iter()
                .map(|&index| self.rows[index].clone())
                .collect(),
        }
    }
}

/// The rows of a train/test split, each list in ascending row order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// A seeded, stratified split: within the bad rows and within the good rows separately, a
/// Fisher–Yates shuffle driven by `SplitMix64::new(seed)` and the first
/// `round(count * train_fraction)` rows go to training. The same seed and labels always give
/// the same rows.
pub fn stratified_split(
    labels: &[bool],
    train_fraction: f64,
    seed: u64,
) -> Result<Split, ScoringError> {
    if !(train_fraction > 0.0 && train_fraction < 1.0) {
        return Err(ScoringError::InvalidConfiguration(format!(
            "train fraction {train_fraction} must be strictly between 0 and 1"
        )));
    }
    let mut generator = SplitMix64::new(seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in [true, false] {
        let mut rows: Vec<usize> = (0..labels.len())
            .filter(|&row| labels[row] == class)
            .collect();
        for index in (1..rows.len()).rev() {
            let other = generator.index_below(index + 1);
            rows.swap(index, other);
        }
        let train_count = (rows.len() as f64 * train_fraction).round() as usize;
        train.extend_from_slice(&rows[..train_count]);
        test.extend_from_slice(&rows[train_count..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok(Split { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cells_are_recognised() {
        for missing in ["", "  ", "NA", "na", "NaN", "null", "?"] {
            assert!(is_missing(missing), "{missing:?}");
        }
        for present in ["0", "none", "no checking account"] {
            assert!(!is_missing(present), "{present:?}");
        }
    }

    #[test]
    fn csv_round_trips_and_labels_are_read() {
        let text = "a,label\n1,bad\n2,good\n,bad\n";
        let table = Table::from_csv(text.as_bytes()).unwrap();
        assert_eq!(table.headers, ["a", "label"]);
        assert_eq!(table.labels("label", "bad").unwrap(), [true, false, true]);
        assert!(matches!(
            table.labels("nope", "bad"),
            Err(ScoringError::ColumnNotFound(_))
        ));
        let mut written = Vec::new();
        table.write_csv(&mut written).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            "a,label\n1,bad\n2,good\n,bad\n"
        );
    }

    #[test]
    fn split_is_stratified_reproducible_and_complete() {
        let labels: Vec<bool> = (0..1000).map(|row| row % 10 < 3).collect();
        let split = stratified_split(&labels, 0.7, 42).unwrap();
        assert_eq!(split, stratified_split(&labels, 0.7, 42).unwrap());
        assert_ne!(split, stratified_split(&labels, 0.7, 43).unwrap());
        assert_eq!(split.train.len(), 700);
        assert_eq!(split.test.len(), 300);
        assert_eq!(split.train.iter().filter(|&&row| labels[row]).count(), 210);
        let mut all: Vec<usize> = split.train.iter().chain(&split.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(stratified_split(&labels, 1.0, 42).is_err());
    }
}
