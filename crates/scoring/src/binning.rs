//! Binning of one feature, weight of evidence and information value: fine classes, then the
//! partition of them (monotonic in bad rate unless configured otherwise) that has the greatest
//! information value (dynamic programming).

use crate::data::is_missing;
use crate::error::ScoringError;
use serde::{Deserialize, Serialize};

/// Count of good and bad rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub good: u64,
    pub bad: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.good + self.bad
    }

    fn add(&mut self, is_bad: bool) {
        if is_bad {
            self.bad += 1;
        } else {
            self.good += 1;
        }
    }

    fn plus(self, other: Counts) -> Counts {
        Counts {
            good: self.good + other.good,
            bad: self.bad + other.bad,
        }
    }

    fn minus(self, other: Counts) -> Counts {
        Counts {
            good: self.good - other.good,
            bad: self.bad - other.bad,
        }
    }

    /// Share of bad rows; 0 for an empty bin.
    pub fn bad_rate(&self) -> f64 {
        if self.total() == 0 {
            0.0
        } else {
            self.bad as f64 / self.total() as f64
        }
    }
}

/// A zero count is replaced by this before taking logarithms, so that a bin with no bad (or no
/// good) row gets a large but finite weight of evidence.
pub const ZERO_COUNT_REPLACEMENT: f64 = 0.5;

fn adjusted(count: u64) -> f64 {
    if count == 0 {
        ZERO_COUNT_REPLACEMENT
    } else {
        count as f64
    }
}

/// Weight of evidence of a bin: `ln((good / total good) / (bad / total bad))`. Positive means
/// fewer bad rows than average. An empty bin has weight 0 (neutral).
pub fn weight_of_evidence(bin: Counts, totals: Counts) -> f64 {
    if bin.total() == 0 {
        return 0.0;
    }
    let good_share = adjusted(bin.good) / totals.good as f64;
    let bad_share = adjusted(bin.bad) / totals.bad as f64;
    (good_share / bad_share).ln()
}

/// The bin's term of the information value: `(good share - bad share) * WOE`, never negative.
pub fn information_value_term(bin: Counts, totals: Counts) -> f64 {
    if bin.total() == 0 {
        return 0.0;
    }
    let good_share = adjusted(bin.good) / totals.good as f64;
    let bad_share = adjusted(bin.bad) / totals.bad as f64;
    (good_share - bad_share) * (good_share / bad_share).ln()
}

/// Whether a feature is binned on numeric ranges or on groups of categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    Categorical,
}

/// One bin: a numeric range `lower <= x < upper` (an absent bound is infinite) or a group of
/// categories, with its training counts, weight of evidence and points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    pub good: u64,
    pub bad: u64,
    pub woe: f64,
    #[serde(default)]
    pub points: f64,
}

impl Bin {
    pub fn counts(&self) -> Counts {
        Counts {
            good: self.good,
            bad: self.bad,
        }
    }
}

/// Direction of a monotonic trend of the bad rate over the bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Bad rate rises from the first bin to the last.
    Increasing,
    /// Bad rate falls from the first bin to the last.
    Decreasing,
    /// A single bin: no trend.
    Flat,
    /// Bad rate rises and falls (only when binning is not monotonic).
    NonMonotonic,
}

impl Trend {
    /// The trend of bad rates over consecutive bins.
    pub fn of_rates(rates: &[f64]) -> Trend {
        if rates.len() < 2 {
            Trend::Flat
        } else if rates.windows(2).all(|pair| pair[0] < pair[1]) {
            Trend::Increasing
        } else if rates.windows(2).all(|pair| pair[0] > pair[1]) {
            Trend::Decreasing
        } else {
            Trend::NonMonotonic
        }
    }
}

/// The settings of binning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinningConfig {
    /// Number of quantile fine classes of a numeric feature before merging.
    pub fine_bins: usize,
    /// Most bins of a feature, not counting the missing bin.
    pub bins_max: usize,
    /// Least share of the training rows in each bin (and in the missing bin for it to get its
    /// own weight of evidence).
    pub bin_fraction_min: f64,
    /// Whether the bad rate must rise (or fall) steadily over a feature's bins. Off, bins
    /// may follow a U shape (e.g. risk by age); categories are always ordered by bad rate.
    #[serde(default = "monotonic_by_default")]
    pub monotonic: bool,
}

fn monotonic_by_default() -> bool {
    true
}

impl Default for BinningConfig {
    fn default() -> Self {
        Self {
            fine_bins: 20,
            bins_max: 5,
            bin_fraction_min: 0.05,
            monotonic: true,
        }
    }
}

impl BinningConfig {
    pub fn validate(&self) -> Result<(), ScoringError> {
        let fail = |reason: String| Err(ScoringError::InvalidConfiguration(reason));
        if !(2..=100).contains(&self.fine_bins) {
            return fail(format!("fine_bins {} must be in 2..=100", self.fine_bins));
        }
        if !(1..=self.fine_bins).contains(&self.bins_max) {
            return fail(format!(
                "bins_max {} must be in 1..=fine_bins",
                self.bins_max
            ));
        }
        if !(self.bin_fraction_min > 0.0 && self.bin_fraction_min <= 0.5) {
            return fail(format!(
                "bin_fraction_min {} must be in (0, 0.5]",
                self.bin_fraction_min
            ));
        }
        Ok(())
    }
}

/// The binning of one feature learned from training data.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureBinning {
    pub name: String,
    pub kind: FeatureKind,
    pub trend: Trend,
    pub bins: Vec<Bin>,
    pub missing: Bin,
    pub information_value: f64,
}

/// True when every non-missing cell parses as a finite number (and there is at least one).
pub fn looks_numeric<'a>(cells: impl IntoIterator<Item = &'a str>) -> bool {
    let mut seen = false;
    for cell in cells {
        if is_missing(cell) {
            continue;
        }
        match cell.trim().parse::<f64>() {
            Ok(value) if value.is_finite() => seen = true,
            _ => return false,
        }
    }
    seen
}

/// Formats a bound for a label: integers without a fraction.
pub fn format_number(value: f64) -> String {
    format!("{value}")
}

fn range_label(lower: Option<f64>, upper: Option<f64>) -> String {
    match (lower, upper) {
        (None, None) => "all values".to_string(),
        (None, Some(upper)) => format!("< {}", format_number(upper)),
        (Some(lower), None) => format!(">= {}", format_number(lower)),
        (Some(lower), Some(upper)) => {
            format!("[{}, {})", format_number(lower), format_number(upper))
        }
    }
}

/// The label of the bin for missing values.
pub const MISSING_LABEL: &str = "missing";

fn missing_bin(counts: Counts, totals: Counts, count_min: u64) -> Bin {
    // A missing bin too small to estimate gets a neutral weight (0) rather than noise.
    let woe = if counts.total() >= count_min {
        weight_of_evidence(counts, totals)
    } else {
        0.0
    };
    Bin {
        label: MISSING_LABEL.to_string(),
        lower: None,
        upper: None,
        categories: Vec::new(),
        good: counts.good,
        bad: counts.bad,
        woe,
        points: 0.0,
    }
}

/// Bins one feature. `cells` and `labels` (true = bad) are aligned rows.
pub fn bin_feature(
    name: &str,
    cells: &[&str],
    labels: &[bool],
    config: &BinningConfig,
) -> Result<FeatureBinning, ScoringError> {
    config.validate()?;
    if cells.len() != labels.len() {
        return Err(ScoringError::Internal("cells and labels differ in length"));
    }
    let mut totals = Counts::default();
    for &label in labels {
        totals.add(label);
    }
    if totals.good == 0 || totals.bad == 0 {
        return Err(ScoringError::InvalidData(
            "training data needs both good and bad rows".into(),
        ));
    }
    let count_min = ((totals.total() as f64) * config.bin_fraction_min).ceil() as u64;
    let kind = if looks_numeric(cells.iter().copied()) {
        FeatureKind::Numeric
    } else {
        FeatureKind::Categorical
    };
    let mut missing = Counts::default();
    for (cell, &label) in cells.iter().zip(labels) {
        if is_missing(cell) {
            missing.add(label);
        }
    }
    let (bins, trend) = match kind {
        FeatureKind::Numeric => bin_numeric(cells, labels, totals, count_min, config),
        FeatureKind::Categorical => bin_categorical(cells, labels, totals, count_min, config),
    };
    let missing = missing_bin(missing, totals, count_min);
    let information_value = bins
        .iter()
        .chain(std::iter::once(&missing))
        .filter(|bin| bin.woe != 0.0)
        .map(|bin| information_value_term(bin.counts(), totals))
        .sum::<f64>()
        // A single bin gives (1 - 1) * ln 1 = -0: print it as 0.
        + 0.0;
    Ok(FeatureBinning {
        name: name.to_string(),
        kind,
        trend,
        bins,
        missing,
        information_value,
    })
}

fn bin_numeric(
    cells: &[&str],
    labels: &[bool],
    totals: Counts,
    count_min: u64,
    config: &BinningConfig,
) -> (Vec<Bin>, Trend) {
    let mut values: Vec<(f64, bool)> = cells
        .iter()
        .zip(labels)
        .filter(|(cell, _)| !is_missing(cell))
        .filter_map(|(cell, &label)| cell.trim().parse::<f64>().ok().map(|value| (value, label)))
        .collect();
    values.sort_by(|left, right| left.0.total_cmp(&right.0));
    // Fine classes: cut where the running count passes each quantile, at a change of value.
    let mut cuts: Vec<f64> = Vec::new();
    let mut fine: Vec<Counts> = vec![Counts::default()];
    let count = values.len();
    let mut next_quantile = 1;
    for (index, &(value, label)) in values.iter().enumerate() {
        if index > 0 && value != values[index - 1].0 {
            let threshold = count * next_quantile / config.fine_bins;
            if index >= threshold && next_quantile < config.fine_bins {
                cuts.push(value);
                fine.push(Counts::default());
                while next_quantile < config.fine_bins
                    && count * next_quantile / config.fine_bins <= index
                {
                    next_quantile += 1;
                }
            }
        }
        if let Some(last) = fine.last_mut() {
            last.add(label);
        }
    }
    let (segments, trend) = best_partition(&fine, totals, count_min, config);
    let bins = segments
        .iter()
        .map(|&(start, end)| {
            let lower = if start == 0 {
                None
            } else {
                Some(cuts[start - 1])
            };
            let upper = if end + 1 == fine.len() {
                None
            } else {
                Some(cuts[end])
            };
            let counts = fine[start..=end]
                .iter()
                .fold(Counts::default(), |sum, &counts| sum.plus(counts));
            Bin {
                label: range_label(lower, upper),
                lower,
                upper,
                categories: Vec::new(),
                good: counts.good,
                bad: counts.bad,
                woe: weight_of_evidence(counts, totals),
                points: 0.0,
            }
        })
        .collect();
    (bins, trend)
}

fn bin_categorical(
    cells: &[&str],
    labels: &[bool],
    totals: Counts,
    count_min: u64,
    config: &BinningConfig,
) -> (Vec<Bin>, Trend) {
    let mut categories: std::collections::BTreeMap<&str, Counts> = Default::default();
    for (cell, &label) in cells.iter().zip(labels) {
        if !is_missing(cell) {
            categories.entry(cell.trim()).or_default().add(label);
        }
    }
    // Order categories by bad rate (ties by name, for determinism), then group neighbours.
    let mut ordered: Vec<(&str, Counts)> = categories.into_iter().collect();
    ordered.sort_by(|left, right| {
        left.1
            .bad_rate()
            .total_cmp(&right.1.bad_rate())
            .then_with(|| left.0.cmp(right.0))
    });
    let fine: Vec<Counts> = ordered.iter().map(|(_, counts)| *counts).collect();
    let (segments, trend) = best_partition(&fine, totals, count_min, config);
    let bins = segments
        .iter()
        .map(|&(start, end)| {
            let names: Vec<String> = ordered[start..=end]
                .iter()
                .map(|(name, _)| (*name).to_string())
                .collect();
            let counts = fine[start..=end]
                .iter()
                .fold(Counts::default(), |sum, &counts| sum.plus(counts));
            Bin {
                label: names.join(" | "),
                lower: None,
                upper: None,
                categories: names,
                good: counts.good,
                bad: counts.bad,
                woe: weight_of_evidence(counts, totals),
                points: 0.0,
            }
        })
        .collect();
    (bins, trend)
}

/// The partition the configuration asks for: [`best_monotone_partition`], or
/// [`best_unconstrained_partition`] when binning is not monotonic.
fn best_partition(
    fine: &[Counts],
    totals: Counts,
    count_min: u64,
    config: &BinningConfig,
) -> (Vec<(usize, usize)>, Trend) {
    if config.monotonic {
        best_monotone_partition(fine, totals, count_min, config.bins_max)
    } else {
        best_unconstrained_partition(fine, totals, count_min, config.bins_max)
    }
}

/// The partition of consecutive fine classes into at most `bins_max` segments, each holding at
/// least `count_min` rows, with a strictly monotonic bad rate, that has the greatest information
/// value. Both directions are tried; a single segment is always allowed. Returns inclusive
/// `(start, end)` segments. Exact: dynamic programming over (segments used, last segment).
pub fn best_monotone_partition(
    fine: &[Counts],
    totals: Counts,
    count_min: u64,
    bins_max: usize,
) -> (Vec<(usize, usize)>, Trend) {
    search_partition(
        fine,
        totals,
        count_min,
        bins_max,
        &[Trend::Increasing, Trend::Decreasing],
    )
}

/// As [`best_monotone_partition`] without the monotonic bad rate: any partition into at most
/// `bins_max` segments of at least `count_min` rows. The trend reported is that of the result.
pub fn best_unconstrained_partition(
    fine: &[Counts],
    totals: Counts,
    count_min: u64,
    bins_max: usize,
) -> (Vec<(usize, usize)>, Trend) {
    let (segments, _) = search_partition(fine, totals, count_min, bins_max, &[Trend::NonMonotonic]);
    let rates: Vec<f64> = segments
        .iter()
        .map(|&(start, end)| {
            fine[start..=end]
                .iter()
                .fold(Counts::default(), |sum, &counts| sum.plus(counts))
                .bad_rate()
        })
        .collect();
    let trend = Trend::of_rates(&rates);
    (segments, trend)
}

/// The dynamic programme behind both searches: one pass per trend in `trends`, where
/// `NonMonotonic` lets any segment follow any other.
// Index loops mirror the recurrence over (segments, start, end) and read better than iterators.
#[allow(clippy::needless_range_loop)]
fn search_partition(
    fine: &[Counts],
    totals: Counts,
    count_min: u64,
    bins_max: usize,
    trends: &[Trend],
) -> (Vec<(usize, usize)>, Trend) {
    let count = fine.len();
    if count == 0 {
        return (Vec::new(), Trend::Flat);
    }
    if count == 1 {
        return (vec![(0, 0)], Trend::Flat);
    }
    let mut prefix = vec![Counts::default(); count + 1];
    for index in 0..count {
        prefix[index + 1] = prefix[index].plus(fine[index]);
    }
    let segment = |start: usize, end: usize| prefix[end + 1].minus(prefix[start]);
    let mut best: (f64, Vec<(usize, usize)>, Trend) = (
        information_value_term(segment(0, count - 1), totals),
        vec![(0, count - 1)],
        Trend::Flat,
    );
    for &trend in trends {
        let allowed = |previous: f64, next: f64| match trend {
            Trend::Increasing => next > previous,
            Trend::Decreasing => next < previous,
            Trend::Flat | Trend::NonMonotonic => true,
        };
        // value[k][start][end]: best IV of fine[0..=end] in k+1 segments, the last [start..=end].
        let unset = f64::NEG_INFINITY;
        let mut value = vec![vec![vec![unset; count]; count]; bins_max];
        let mut parent = vec![vec![vec![usize::MAX; count]; count]; bins_max];
        for end in 0..count {
            if segment(0, end).total() >= count_min {
                value[0][0][end] = information_value_term(segment(0, end), totals);
            }
        }
        for segments in 1..bins_max {
            for start in 1..count {
                for end in start..count {
                    let last = segment(start, end);
                    if last.total() < count_min {
                        continue;
                    }
                    let term = information_value_term(last, totals);
                    for previous_start in 0..start {
                        let before = value[segments - 1][previous_start][start - 1];
                        if before == unset
                            || !allowed(
                                segment(previous_start, start - 1).bad_rate(),
                                last.bad_rate(),
                            )
                        {
                            continue;
                        }
                        if before + term > value[segments][start][end] {
                            value[segments][start][end] = before + term;
                            parent[segments][start][end] = previous_start;
                        }
                    }
                }
            }
        }
        for segments in 1..bins_max {
            for start in 1..count {
                let total = value[segments][start][count - 1];
                // Prefer fewer bins unless more bins carry clearly more information.
                if total > best.0 + 1e-12 {
                    let mut path = vec![(start, count - 1)];
                    let (mut level, mut current_start, mut current_end) =
                        (segments, start, count - 1);
                    while level > 0 {
                        let previous_start = parent[level][current_start][current_end];
                        path.push((previous_start, current_start - 1));
                        level -= 1;
                        current_end = current_start - 1;
                        current_start = previous_start;
                    }
                    path.reverse();
                    best = (total, path, trend);
                }
            }
        }
    }
    (best.1, best.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(left: f64, right: f64) -> bool {
        (left - right).abs() < 1e-12
    }

    #[test]
    fn weight_of_evidence_and_information_value_match_hand_computation() {
        // Totals 80 good, 20 bad. Bin A: 60 good, 5 bad. Bin B: 20 good, 15 bad.
        let totals = Counts { good: 80, bad: 20 };
        let a = Counts { good: 60, bad: 5 };
        let b = Counts { good: 20, bad: 15 };
        // A: ln((60/80)/(5/20)) = ln(0.75/0.25) = ln 3.
        assert!(close(weight_of_evidence(a, totals), 3f64.ln()));
        // B: ln((20/80)/(15/20)) = ln(0.25/0.75) = -ln 3.
        assert!(close(weight_of_evidence(b, totals), -(3f64.ln())));
        // IV = (0.75-0.25) ln 3 + (0.25-0.75)(-ln 3) = ln 3 = 1.0986...
        let information_value =
            information_value_term(a, totals) + information_value_term(b, totals);
        assert!(close(information_value, 3f64.ln()));
        assert!((information_value - 1.098_612_288_668_11).abs() < 1e-12);
    }

    #[test]
    fn zero_counts_are_replaced_and_empty_bins_are_neutral() {
        let totals = Counts { good: 10, bad: 10 };
        // No bad row: ln((4/10)/(0.5/10)) = ln 8.
        assert!(close(
            weight_of_evidence(Counts { good: 4, bad: 0 }, totals),
            8f64.ln()
        ));
        assert_eq!(weight_of_evidence(Counts::default(), totals), 0.0);
        assert_eq!(information_value_term(Counts::default(), totals), 0.0);
    }

    #[test]
    fn partition_is_monotone_and_respects_size_and_count_limits() {
        // Bad rates 0.1, 0.3, 0.2, 0.5, 0.6 over five fine classes of 20 rows each.
        let fine: Vec<Counts> = [2, 6, 4, 10, 12]
            .iter()
            .map(|&bad| Counts {
                good: 20 - bad,
                bad,
            })
            .collect();
        let totals = fine.iter().fold(Counts::default(), |sum, &c| sum.plus(c));
        let (segments, trend) = best_monotone_partition(&fine, totals, 20, 5);
        assert_eq!(trend, Trend::Increasing);
        // 0.3 then 0.2 violates the trend, so classes 1 and 2 must share a bin.
        assert_eq!(segments, [(0, 0), (1, 2), (3, 3), (4, 4)]);
        let (segments, _) = best_monotone_partition(&fine, totals, 20, 2);
        assert_eq!(segments.len(), 2);
        let (segments, _) = best_monotone_partition(&fine, totals, 50, 5);
        assert!(segments
            .iter()
            .all(|&(start, end)| (end - start + 1) * 20 >= 50));
    }

    /// Every way of cutting `count` classes into consecutive segments.
    fn all_partitions(count: usize) -> Vec<Vec<(usize, usize)>> {
        (0u32..1 << (count - 1))
            .map(|cuts| {
                let mut segments = Vec::new();
                let mut start = 0;
                for position in 0..count - 1 {
                    if cuts & (1 << position) != 0 {
                        segments.push((start, position));
                        start = position + 1;
                    }
                }
                segments.push((start, count - 1));
                segments
            })
            .collect()
    }

    proptest::proptest! {
        /// The dynamic programme finds the same optimum as trying every partition, with and
        /// without the monotonic constraint.
        #[test]
        fn partition_is_the_exhaustive_optimum(
            fine in proptest::collection::vec((0u64..30, 0u64..30), 1..8),
            count_min in 1u64..40,
            bins_max in 1usize..5,
        ) {
            let fine: Vec<Counts> = fine.iter().map(|&(good, bad)| Counts { good, bad }).collect();
            let totals = fine.iter().fold(Counts::default(), |sum, &c| sum.plus(c));
            proptest::prop_assume!(totals.good > 0 && totals.bad > 0);
            let segment = |(start, end): (usize, usize)| {
                fine[start..=end].iter().fold(Counts::default(), |sum, &c| sum.plus(c))
            };
            let value = |segments: &[(usize, usize)]| -> f64 {
                segments.iter().map(|&s| information_value_term(segment(s), totals)).sum()
            };
            for monotonic in [true, false] {
                let feasible = |segments: &[(usize, usize)]| -> bool {
                    if segments.len() == 1 {
                        return true;
                    }
                    let rates: Vec<f64> = segments.iter().map(|&s| segment(s).bad_rate()).collect();
                    segments.len() <= bins_max
                        && segments.iter().all(|&s| segment(s).total() >= count_min)
                        && (!monotonic
                            || rates.windows(2).all(|pair| pair[0] < pair[1])
                            || rates.windows(2).all(|pair| pair[0] > pair[1]))
                };
                let config = BinningConfig { bins_max, monotonic, ..BinningConfig::default() };
                let (chosen, trend) = best_partition(&fine, totals, count_min, &config);
                proptest::prop_assert!(feasible(&chosen), "{chosen:?}");
                proptest::prop_assert_eq!(chosen.first().map(|s| s.0), Some(0));
                proptest::prop_assert_eq!(chosen.last().map(|s| s.1), Some(fine.len() - 1));
                if monotonic {
                    proptest::prop_assert_ne!(trend, Trend::NonMonotonic);
                }
                let best = all_partitions(fine.len())
                    .iter()
                    .filter(|segments| feasible(segments))
                    .map(|segments| value(segments))
                    .fold(f64::NEG_INFINITY, f64::max);
                proptest::prop_assert!((value(&chosen) - best).abs() < 1e-9, "{} vs {best}", value(&chosen));
            }
        }
    }

    #[test]
    fn numeric_feature_gets_ranges_and_a_missing_bin() {
        let cells: Vec<String> = (0..100)
            .map(|row| {
                if row < 10 {
                    String::new()
                } else {
                    (row % 50).to_string()
                }
            })
            .collect();
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        let labels: Vec<bool> = (0..100).map(|row| row % 50 > 35 || row % 7 == 0).collect();
        let config = BinningConfig::default();
        let binning = bin_feature("x", &cells, &labels, &config).unwrap();
        assert_eq!(binning.kind, FeatureKind::Numeric);
        assert_eq!(binning.trend, Trend::Increasing);
        assert_eq!(binning.bins.first().unwrap().lower, None);
        assert_eq!(binning.bins.last().unwrap().upper, None);
        for pair in binning.bins.windows(2) {
            assert_eq!(pair[0].upper, pair[1].lower);
            assert!(pair[0].counts().bad_rate() < pair[1].counts().bad_rate());
        }
        assert_eq!(binning.missing.counts().total(), 10);
        assert!(binning.information_value > 0.0);
    }

    #[test]
    fn without_the_monotonic_constraint_a_u_shape_keeps_both_arms() {
        // Risky at both ends (young and old), safe in the middle.
        let cells: Vec<String> = (0..300).map(|row| (row % 60).to_string()).collect();
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        let labels: Vec<bool> = (0..300)
            .map(|row| {
                let value = row % 60;
                (!(15..45).contains(&value) && row % 3 != 0) || row % 7 == 0
            })
            .collect();
        let monotonic = bin_feature("age", &cells, &labels, &BinningConfig::default()).unwrap();
        assert_ne!(monotonic.trend, Trend::NonMonotonic);
        let config = BinningConfig {
            monotonic: false,
            ..BinningConfig::default()
        };
        let free = bin_feature("age", &cells, &labels, &config).unwrap();
        assert_eq!(free.trend, Trend::NonMonotonic);
        assert!(free.information_value > monotonic.information_value);
        let rates: Vec<f64> = free
            .bins
            .iter()
            .map(|bin| bin.counts().bad_rate())
            .collect();
        let first = rates[0];
        let last = rates[rates.len() - 1];
        assert!(
            rates.iter().any(|&rate| rate < first && rate < last),
            "{rates:?}"
        );
    }

    #[test]
    fn categorical_feature_groups_rare_categories() {
        let mut cells = Vec::new();
        let mut labels = Vec::new();
        for (name, good, bad) in [("a", 40, 2), ("b", 30, 15), ("c", 2, 1), ("d", 5, 5)] {
            for _ in 0..good {
                cells.push(name);
                labels.push(false);
            }
            for _ in 0..bad {
                cells.push(name);
                labels.push(true);
            }
        }
        let config = BinningConfig::default();
        let binning = bin_feature("y", &cells, &labels, &config).unwrap();
        assert_eq!(binning.kind, FeatureKind::Categorical);
        let all: Vec<&str> = binning
            .bins
            .iter()
            .flat_map(|bin| bin.categories.iter().map(String::as_str))
            .collect();
        assert_eq!(all.len(), 4);
        // "c" has 3 of 100 rows, below the 5% minimum, so it shares a bin.
        let with_c = binning
            .bins
            .iter()
            .find(|bin| bin.categories.iter().any(|name| name == "c"))
            .unwrap();
        assert!(with_c.categories.len() > 1);
        assert_eq!(binning.missing.woe, 0.0);
    }
}
