//! Measures of a scorecard: AUC, Gini, KS, the score table by decile with bad rates, and the
//! population stability index between two score distributions.

use serde::Serialize;

/// Area under the ROC curve for scores where higher means less risky: the probability that a
/// random good row scores above a random bad row (ties count one half). `None` when either
/// class is absent or a score is NaN.
pub fn area_under_curve(scores: &[f64], bad: &[bool]) -> Option<f64> {
    if scores.len() != bad.len() || scores.iter().any(|score| score.is_nan()) {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&left, &right| scores[left].total_cmp(&scores[right]));
    // Mann–Whitney: sum of the (mid-)ranks of the good rows.
    let mut rank_sum_good = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && scores[order[end + 1]] == scores[order[start]] {
            end += 1;
        }
        let mid_rank = (start + end) as f64 / 2.0 + 1.0;
        for &row in &order[start..=end] {
            if !bad[row] {
                rank_sum_good += mid_rank;
            }
        }
        start = end + 1;
    }
    let goods = bad.iter().filter(|&&is_bad| !is_bad).count() as f64;
    let bads = bad.len() as f64 - goods;
    if goods == 0.0 || bads == 0.0 {
        return None;
    }
    Some((rank_sum_good - goods * (goods + 1.0) / 2.0) / (goods * bads))
}

/// Kolmogorov–Smirnov statistic: the greatest gap between the cumulative score distributions
/// of bad and good rows.
pub fn kolmogorov_smirnov(scores: &[f64], bad: &[bool]) -> Option<f64> {
    if scores.len() != bad.len() || scores.iter().any(|score| score.is_nan()) {
        return None;
    }
    let bads = bad.iter().filter(|&&is_bad| is_bad).count() as f64;
    let goods = bad.len() as f64 - bads;
    if goods == 0.0 || bads == 0.0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&left, &right| scores[left].total_cmp(&scores[right]));
    let (mut cumulative_bad, mut cumulative_good, mut best) = (0.0, 0.0, 0.0f64);
    let mut index = 0;
    while index < order.len() {
        let value = scores[order[index]];
        while index < order.len() && scores[order[index]] == value {
            if bad[order[index]] {
                cumulative_bad += 1.0;
            } else {
                cumulative_good += 1.0;
            }
            index += 1;
        }
        best = best.max((cumulative_bad / bads - cumulative_good / goods).abs());
    }
    Some(best)
}

/// One line of the score table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decile {
    /// 1 is the lowest-scoring (riskiest) tenth.
    pub decile: usize,
    pub score_min: f64,
    pub score_max: f64,
    pub rows: usize,
    pub bad: usize,
    pub bad_rate: f64,
    /// Share of all bad rows in this and the lower deciles.
    pub cumulative_bad_share: f64,
}

/// The rows sorted by score and cut into ten groups of (nearly) equal size.
pub fn deciles(scores: &[f64], bad: &[bool]) -> Vec<Decile> {
    let count = scores.len().min(bad.len());
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by(|&left, &right| scores[left].total_cmp(&scores[right]));
    let total_bad = bad[..count].iter().filter(|&&is_bad| is_bad).count();
    let mut cumulative = 0;
    let mut table = Vec::new();
    for decile in 0..10 {
        let start = count * decile / 10;
        let end = count * (decile + 1) / 10;
        if start == end {
            continue;
        }
        let rows = &order[start..end];
        let bads = rows.iter().filter(|&&row| bad[row]).count();
        cumulative += bads;
        table.push(Decile {
            decile: decile + 1,
            score_min: scores[rows[0]],
            score_max: scores[rows[rows.len() - 1]],
            rows: rows.len(),
            bad: bads,
            bad_rate: bads as f64 / rows.len() as f64,
            cumulative_bad_share: if total_bad == 0 {
                0.0
            } else {
                cumulative as f64 / total_bad as f64
            },
        });
    }
    table
}

/// Share used in place of an empty bucket in the stability index, so that it stays finite.
pub const STABILITY_SHARE_MIN: f64 = 1e-4;

/// Population stability index of `actual` against `expected` (the baseline): both cut at the
/// baseline's score deciles, `PSI = sum((actual% - expected%) * ln(actual% / expected%))`.
/// Rule of thumb: below 0.1 stable, 0.1 to 0.25 watch, above 0.25 shifted.
pub fn population_stability_index(expected: &[f64], actual: &[f64]) -> Option<f64> {
    if expected.is_empty() || actual.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = expected.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut cuts: Vec<f64> = (1..10)
        .map(|decile| sorted[sorted.len() * decile / 10])
        .collect();
    cuts.dedup();
    let shares = |scores: &[f64]| -> Vec<f64> {
        let mut counts = vec![0usize; cuts.len() + 1];
        for &score in scores {
            counts[cuts.partition_point(|&cut| cut <= score)] += 1;
        }
        counts
            .iter()
            .map(|&count| (count as f64 / scores.len() as f64).max(STABILITY_SHARE_MIN))
            .collect()
    };
    Some(stability_of_shares(&shares(expected), &shares(actual)))
}

/// The stability index of two distributions over the same buckets, given as shares.
pub fn stability_of_shares(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&expected, &actual)| {
            let expected = expected.max(STABILITY_SHARE_MIN);
            let actual = actual.max(STABILITY_SHARE_MIN);
            (actual - expected) * (actual / expected).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_under_curve_counts_pairs_and_ties() {
        // Goods 3, 4; bads 1, 3. Pairs (good > bad): (3>1) (4>1) (4>3) = 3, tie (3,3) = 0.5.
        let scores = [3.0, 4.0, 1.0, 3.0];
        let bad = [false, false, true, true];
        assert_eq!(area_under_curve(&scores, &bad), Some(3.5 / 4.0));
        assert_eq!(area_under_curve(&[1.0, 2.0], &[false, false]), None);
    }

    #[test]
    fn kolmogorov_smirnov_is_the_largest_gap() {
        let scores = [1.0, 2.0, 3.0, 4.0];
        let bad = [true, false, true, false];
        // After 1: bad 1/2, good 0 -> 0.5. After 2: 0.5 vs 0.5. After 3: 1 vs 0.5 -> 0.5.
        assert_eq!(kolmogorov_smirnov(&scores, &bad), Some(0.5));
        let perfect = [true, true, false, false];
        assert_eq!(kolmogorov_smirnov(&scores, &perfect), Some(1.0));
    }

    #[test]
    fn deciles_cover_every_row() {
        let scores: Vec<f64> = (0..95).map(f64::from).collect();
        let bad: Vec<bool> = (0..95).map(|row| row < 20).collect();
        let table = deciles(&scores, &bad);
        assert_eq!(table.len(), 10);
        assert_eq!(table.iter().map(|line| line.rows).sum::<usize>(), 95);
        assert_eq!(table[0].bad_rate, 1.0);
        assert_eq!(table[9].cumulative_bad_share, 1.0);
    }

    #[test]
    fn stability_index_matches_hand_computation() {
        assert_eq!(
            population_stability_index(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]),
            Some(0.0)
        );
        // (0.6-0.5) ln(0.6/0.5) + (0.4-0.5) ln(0.4/0.5) = 0.1 ln 1.2 + 0.1 ln 1.25
        let psi = stability_of_shares(&[0.5, 0.5], &[0.6, 0.4]);
        assert!((psi - (0.1 * 1.2f64.ln() + 0.1 * 1.25f64.ln())).abs() < 1e-12);
    }
}
