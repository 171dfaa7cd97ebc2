//! Rows of channel and bank settlement files: any bytes, read as CSV or fixed-width in
//! UTF-8 or GBK, become records or counted bad rows; none panics, and no row is lost
//! without being counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_recon::amount::{parse_amount, AmountFormat};
use tally_recon::layout::{Encoding, Layout};
use tally_recon::record::{RowBuilder, StatusTable};
use tally_recon::text::{parse_text_block, ColumnMap};
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

fn read_block(layout_text: &str, encoding: Encoding, data: &[u8]) {
    let mut layout = Layout::from_toml(layout_text, "fuzz").expect("layout");
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

fuzz_target!(|data: &[u8]| {
    for layout in [CSV_LAYOUT, FIXED_LAYOUT] {
        for encoding in [Encoding::Utf8, Encoding::Gbk] {
            read_block(layout, encoding, data);
        }
    }
    let format = AmountFormat {
        thousands_separator: Some(b','),
        ..AmountFormat::major(2)
    };
    let _ = parse_amount(data, &format);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Layout::from_toml(text, "fuzz");
    }
});
