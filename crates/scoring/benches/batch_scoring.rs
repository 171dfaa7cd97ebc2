//! Batch scoring speed of the default scorecard on one thread: 1,000,000 applicants resampled
//! (seed 1) from the German credit data, 7 timed runs after a warm-up, median reported. The
//! same measurement as `tally score bench`, without the rest of the workspace.
//! Run: `cargo bench -p tally-scoring --bench batch_scoring`.

// A benchmark: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;
use tally_core::SplitMix64;
use tally_scoring::{Applicant, Batch, Model, Table};

const ROWS: usize = 1_000_000;
const SINGLE_ROWS: usize = 200_000;
const RUNS: usize = 7;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = Model::from_json(
        &std::fs::read_to_string(root.join("models/default-scorecard.json")).unwrap(),
    )
    .unwrap();
    let table =
        Table::from_csv(std::fs::File::open(root.join("data/germancredit.csv")).unwrap()).unwrap();
    let indices: Vec<usize> = model
        .features()
        .iter()
        .map(|feature| table.column_index(&feature.name).unwrap())
        .collect();
    let mut generator = SplitMix64::new(1);
    let mut batch = Batch::new(&model);
    let mut sampled = Vec::with_capacity(ROWS);
    let mut cells = Vec::with_capacity(indices.len());
    for _ in 0..ROWS {
        let row = generator.index_below(table.rows.len());
        sampled.push(row);
        cells.clear();
        cells.extend(indices.iter().map(|&index| table.rows[row][index].as_str()));
        batch.push(&cells).unwrap();
    }
    let mut scores = Vec::with_capacity(ROWS);
    model.score_batch(&batch, &mut scores).unwrap();
    let mut rates = Vec::new();
    for run in 1..=RUNS {
        let started = Instant::now();
        model.score_batch(&batch, &mut scores).unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let mean = scores.iter().sum::<f64>() / ROWS as f64;
        println!(
            "batch run {run}: {:.3} ms, {:.0} applicants/s (mean score {mean:.3})",
            seconds * 1e3,
            ROWS as f64 / seconds
        );
        rates.push(ROWS as f64 / seconds);
    }
    println!(
        "batch median of {RUNS}: {:.0} applicants/s ({} features)",
        median(&mut rates),
        model.features().len()
    );
    let applicants: Vec<Applicant> = sampled[..SINGLE_ROWS]
        .iter()
        .map(|&row| Applicant::from_record(&table.headers, &table.rows[row]))
        .collect();
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let total: f64 = applicants
            .iter()
            .map(|applicant| model.score(applicant).score)
            .sum();
        let seconds = started.elapsed().as_secs_f64();
        std::hint::black_box(total);
        rates.push(SINGLE_ROWS as f64 / seconds);
    }
    println!(
        "single (Model::score with attributes and reasons) median of {RUNS}: {:.0} applicants/s",
        median(&mut rates)
    );
}
