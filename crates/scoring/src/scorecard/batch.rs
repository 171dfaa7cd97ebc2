//! Applicants laid out by column in the model's feature order, for fast batch scoring.

use super::*;

#[derive(Debug, Clone)]
pub(super) enum Column {
    /// NaN marks a missing or unparseable number.
    Numbers(Vec<f64>),
    /// Trimmed cells laid end to end; `ends[row]` is where the row's cell ends.
    Texts { text: String, ends: Vec<usize> },
}

/// Applicants laid out by column in the model's feature order, for fast batch scoring.
#[derive(Debug, Clone)]
pub struct Batch {
    pub(super) rows: usize,
    pub(super) columns: Vec<Column>,
}

impl Batch {
    /// An empty batch for the model's features.
    pub fn new(model: &Model) -> Batch {
        let columns = model
            .file
            .features
            .iter()
            .map(|feature| match feature.kind {
                FeatureKind::Numeric => Column::Numbers(Vec::new()),
                FeatureKind::Categorical => Column::Texts {
                    text: String::new(),
                    ends: Vec::new(),
                },
            })
            .collect();
        Batch { rows: 0, columns }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one applicant given as one cell per model feature, in the model's order.
    pub fn push(&mut self, cells: &[&str]) -> Result<(), ScoringError> {
        if cells.len() != self.columns.len() {
            return Err(ScoringError::InvalidApplicant(format!(
                "expected {} cells, got {}",
                self.columns.len(),
                cells.len()
            )));
        }
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            match column {
                Column::Numbers(numbers) => numbers.push(if is_missing(cell) {
                    f64::NAN
                } else {
                    cell.trim().parse::<f64>().unwrap_or(f64::NAN)
                }),
                Column::Texts { text, ends } => {
                    text.push_str(cell.trim());
                    ends.push(text.len());
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// A batch of every row of a table, which must have a column for each model feature.
    pub fn from_table(model: &Model, table: &Table) -> Result<Batch, ScoringError> {
        let indices: Vec<usize> = model
            .file
            .features
            .iter()
            .map(|feature| table.column_index(&feature.name))
            .collect::<Result<_, _>>()?;
        let mut batch = Batch::new(model);
        let mut cells: Vec<&str> = Vec::with_capacity(indices.len());
        for row in &table.rows {
            cells.clear();
            cells.extend(indices.iter().map(|&index| row[index].as_str()));
            batch.push(&cells)?;
        }
        Ok(batch)
    }
}
