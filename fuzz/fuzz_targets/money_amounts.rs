//! Money amounts as clients write them: any text either parses exactly into minor units
//! or is refused, and an accepted amount reads back as the same amount.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_core::{Amount, Currency};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for code in ["CNY", "JPY", "KWD"] {
        let currency = Currency::from_code(code).expect("a known currency");
        if let Ok(amount) = Amount::parse(text, currency) {
            let written = amount.to_decimal_string();
            let again = Amount::parse(&written, currency).expect("an amount reads back");
            assert_eq!(again, amount, "{text:?} read back as {written:?}");
        }
    }
    // The JSON wire form of an amount, and of an exact rate.
    let _ = serde_json::from_slice::<Amount>(data);
    let _ = tally_core::rate::exact::parse(text);
});
