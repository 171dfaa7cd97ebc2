//! Rows of channel and bank settlement files: any bytes, read as CSV or fixed-width in
//! UTF-8 or GBK, become records or counted bad rows; none panics, and no row is lost
//! without being counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_recon::amount::{parse_amount, AmountFormat};
use tally_recon::layout::{Encoding, Layout};

// The layouts and the block check of the parsers' property tests.
#[path = "../../crates/recon/tests/support/rows.rs"]
mod rows;
use rows::{check_block, CSV_LAYOUT, FIXED_LAYOUT};

fuzz_target!(|data: &[u8]| {
    for layout in [CSV_LAYOUT, FIXED_LAYOUT] {
        for encoding in [Encoding::Utf8, Encoding::Gbk] {
            check_block(layout, encoding, data);
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
