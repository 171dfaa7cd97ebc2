//! Property tests of the parsers: no input bytes make them panic.

use proptest::prelude::*;
use tally_recon::amount::{parse_amount, AmountFormat};
use tally_recon::layout::{Encoding, Layout};
use tally_recon::timestamp::{TimestampFormat, ZoneMemo};
use tally_recon::Rules;

// The fuzz target `reconciliation_rows` reads the same layouts the same way.
#[path = "support/rows.rs"]
mod rows;
use rows::{check_block, CSV_LAYOUT, FIXED_LAYOUT};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn amounts(bytes in proptest::collection::vec(any::<u8>(), 0..40), scale in 0u32..19) {
        let _ = parse_amount(&bytes, &AmountFormat::major(scale));
    }

    #[test]
    fn amount_like_text(text in "[-+]?[0-9,]{0,25}(\\.[0-9]{0,25})?") {
        let format = AmountFormat { thousands_separator: Some(b','), ..AmountFormat::major(2) };
        let _ = parse_amount(text.as_bytes(), &format);
    }

    #[test]
    fn timestamps(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        for (format, zone) in [("%Y-%m-%d %H:%M:%S", "UTC"), ("%Y%m%d%H%M%S", "Asia/Shanghai"), ("%Y-%m-%dT%H:%M:%S.%f%z", "+08:00"), ("unix_ms", "UTC")] {
            let compiled = TimestampFormat::new(format, zone).expect("format");
            let _ = compiled.parse(&bytes, &mut ZoneMemo::default());
        }
    }

    #[test]
    fn digit_timestamps(text in "[0-9]{14}") {
        let compiled = TimestampFormat::new("%Y%m%d%H%M%S", "America/New_York").expect("format");
        let _ = compiled.parse(text.as_bytes(), &mut ZoneMemo::default());
    }

    #[test]
    fn csv_blocks(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_block(CSV_LAYOUT, Encoding::Utf8, &bytes);
        check_block(CSV_LAYOUT, Encoding::Gbk, &bytes);
    }

    #[test]
    fn csv_like_blocks(text in "([A-Z0-9\"|.\n\r]{0,12}){0,30}") {
        check_block(CSV_LAYOUT, Encoding::Utf8, text.as_bytes());
    }

    #[test]
    fn fixed_width_blocks(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_block(FIXED_LAYOUT, Encoding::Utf8, &bytes);
        check_block(FIXED_LAYOUT, Encoding::Gbk, &bytes);
    }

    #[test]
    fn layouts(text in "\\PC{0,200}") {
        let _ = Layout::from_toml(&text, "fuzz");
        let _ = Rules::from_toml(&text, "fuzz");
    }
}
