//! Property tests of the parsers: no input bytes make them panic.

use proptest::prelude::*;
use tally_recon::amount::{parse_amount, AmountFormat};
use tally_recon::layout::{Encoding, Layout};
use tally_recon::record::{RowBuilder, StatusTable};
use tally_recon::text::{parse_text_block, ColumnMap};
use tally_recon::timestamp::{TimestampFormat, ZoneMemo};
use tally_recon::Rules;

const CSV_LAYOUT: &str = r#"
format = "csv"
csv = { delimiter = "|", header = false }
[fields]
key = [{ index = 1 }, { index = 3 }]
amount = { index = 2, unit = "major", scale = 2 }
currency = { value = "CNY" }
status = { index = 4, map = { "00" = "success" }, default = "failed" }
timestamp = { index = 5, format = "%Y%m%d%H%M%S", time_zone = "Asia/Shanghai" }
fee = { index = 6 }
batch = { index = 7 }
"#;

const FIXED_LAYOUT: &str = r#"
format = "fixed_width"
[fields]
key = { start = 1, width = 4 }
amount = { start = 5, width = 6 }
currency = { start = 11, width = 3 }
status = { start = 14, width = 4 }
"#;

fn check_block(layout_text: &str, encoding: Encoding, data: &[u8]) {
    let mut layout = Layout::from_toml(layout_text, "test").expect("layout");
    layout.encoding = encoding;
    let statuses = StatusTable::build(&[&layout], &Rules::default()).expect("statuses");
    let builder = RowBuilder::new(&layout, &statuses, false).expect("builder");
    let columns = ColumnMap::new(&layout, None).expect("columns");
    for open_end in [false, true] {
        let output = parse_text_block(data, 0, encoding, &columns, &builder, 3, open_end);
        assert!(output.bad_row_count as usize + output.records.rows as usize <= data.len() + 1);
        assert!(output
            .tail
            .is_none_or(|start| start > 0 && start < data.len()));
    }
}

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
