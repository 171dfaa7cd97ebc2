//! SplitMix64, Tally's one seeded pseudo-random generator: generated test data, demo and
//! benchmark traffic, and the reproducible splits and folds of scoring. The same seed always
//! gives the same sequence; never use it for keys, salts that protect anything, or nonces
//! (those come from the operating system).

/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state advanced by a fixed odd
/// constant and mixed into each output. Small, fast and well mixed; seeded by the caller.
///
/// Its helpers keep the exact formulas the generated data sets and published benchmark
/// results were produced with, which is why two bounded integers exist ([`below`] by
/// remainder and [`index_below`] by multiply-shift): changing either would change the
/// data a seed gives.
///
/// [`below`]: SplitMix64::below
/// [`index_below`]: SplitMix64::index_below
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.state;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    /// An integer in `0..bound` by remainder (`next_u64() % bound`), 0 when `bound` is 0.
    /// Biased by at most `bound / 2^64`, which test data does not notice.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// An index in `0..length` by Lemire's multiply-shift (the high 64 bits of
    /// `next_u64() * length`), 0 when `length` is 0. Used for shuffles and row samples.
    pub fn index_below(&mut self, length: usize) -> usize {
        let wide = u128::from(self.next_u64()) * (length as u128);
        (wide >> 64) as usize
    }

    /// An integer in `low..high` (by remainder); `low` when the range is empty.
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        // The difference of two i64 fits in a u64 and the result lies in low..high.
        low.wrapping_add(self.below(high.wrapping_sub(low) as u64) as i64)
    }

    /// A float in `[0, 1)`: the top 53 bits over 2^53.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// True with probability `probability` (0 to 1): `next_f64() <= probability`.
    pub fn chance(&mut self, probability: f64) -> bool {
        self.next_f64() <= probability
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn matches_the_reference_sequence() {
        // Seed 0: the published C implementation's first outputs.
        let mut generator = SplitMix64::new(0);
        assert_eq!(generator.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(generator.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(generator.next_u64(), 0x06C4_5D18_8009_454F);
        // Seed 42: what the generators this one replaced gave (risk scenarios, recon and
        // consortium test data, scoring splits), so a seed still gives the same data.
        let mut generator = SplitMix64::new(42);
        assert_eq!(generator.next_u64(), 0xBDD7_3226_2FEB_6E95);
        assert_eq!(generator.next_u64(), 0x28EF_E333_B266_F103);
        assert_eq!(generator.next_u64(), 0x4752_6757_130F_9F52);
    }

    #[test]
    fn helpers_keep_their_formulas() {
        let draw = |pick: fn(&mut SplitMix64) -> i64| {
            let mut generator = SplitMix64::new(42);
            (0..4).map(|_| pick(&mut generator)).collect::<Vec<_>>()
        };
        assert_eq!(
            draw(|generator| generator.below(1000) as i64),
            [413, 291, 858, 764]
        );
        assert_eq!(
            draw(|generator| generator.index_below(1000) as i64),
            [741, 159, 278, 344]
        );
        assert_eq!(
            draw(|generator| generator.range(-100, 100)),
            [-87, -9, -42, 64]
        );
        assert_eq!(
            draw(|generator| i64::from(generator.chance(0.5))),
            [0, 1, 1, 1]
        );
        let mut generator = SplitMix64::new(42);
        assert_eq!(generator.next_f64(), 0.7415648787718233);
    }

    #[test]
    fn bounds_are_kept() {
        let mut generator = SplitMix64::new(7);
        assert_eq!(generator.below(0), 0);
        assert_eq!(generator.index_below(0), 0);
        assert_eq!(generator.range(5, 5), 5);
        assert_eq!(generator.range(5, -5), 5);
        for _ in 0..10_000 {
            assert!(generator.below(7) < 7);
            assert!(generator.index_below(7) < 7);
            assert!((-3..3).contains(&generator.range(-3, 3)));
            let fraction = generator.next_f64();
            assert!((0.0..1.0).contains(&fraction));
        }
        // The widest range does not overflow: the first output of seed 0 (below the span,
        // u64::MAX) is the offset from the low end.
        assert_eq!(
            SplitMix64::new(0).range(i64::MIN, i64::MAX),
            i64::MIN.wrapping_add(0xE220_A839_7B1D_CDAF_u64 as i64)
        );
        assert!(!SplitMix64::new(1).chance(-0.5));
        assert!(SplitMix64::new(1).chance(1.0));
    }
}
