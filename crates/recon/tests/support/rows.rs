//! Rows of settlement files read block by block, shared by the parsers' property tests and
//! the fuzz target `reconciliation_rows` (which includes this file by its path): a CSV and a
//! fixed-width layout, and a check that any bytes read with either, in either encoding,
//! become records or counted bad rows, none lost without being counted.

use tally_recon::layout::{Encoding, Layout};
use tally_recon::record::{RowBuilder, StatusTable};
use tally_recon::text::{parse_text_block, ColumnMap};
use tally_recon::Rules;

pub const CSV_LAYOUT: &str = r#"
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

pub const FIXED_LAYOUT: &str = r#"
format = "fixed_width"
[fields]
key = { start = 1, width = 4 }
amount = { start = 5, width = 6 }
currency = { start = 11, width = 3 }
status = { start = 14, width = 4 }
"#;

pub fn check_block(layout_text: &str, encoding: Encoding, data: &[u8]) {
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
