//! What the money core shows to the rest of Tally, pinned down: an amount's sign tests, its
//! printed forms (in statements, errors and logs), the currencies Tally knows, secrets that
//! never print, and the clocks. Each assertion here kills a mutant `mutants/run tally-core`
//! found surviving (see TESTING.md).
#![allow(clippy::unwrap_used)]

use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use tally_core::{Amount, Clock, Currency, ManualClock, Secret, SystemClock};

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

#[test]
fn an_amount_knows_its_sign() {
    let signs: Vec<(bool, bool, bool)> = [-1, 0, 1]
        .into_iter()
        .map(|minor| {
            let amount = cny(minor);
            (amount.is_negative(), amount.is_zero(), amount.is_positive())
        })
        .collect();
    assert_eq!(
        signs,
        [
            (true, false, false),
            (false, true, false),
            (false, false, true)
        ]
    );
}

#[test]
fn an_amount_prints_with_its_currencys_digits_and_code() {
    assert_eq!(cny(0).to_decimal_string(), "0.00");
    assert_eq!(cny(-5).to_decimal_string(), "-0.05");
    assert_eq!(cny(123_450).to_decimal_string(), "1234.50");
    assert_eq!(Amount::new(-7, Currency::JPY).to_decimal_string(), "-7");
    assert_eq!(
        Amount::new(1_005, Currency::KWD).to_decimal_string(),
        "1.005"
    );
    assert_eq!(cny(1_250).to_string(), "12.50 CNY");
    assert_eq!(format!("{:?}", cny(-1_250)), "-12.50 CNY");
    assert_eq!(Currency::CNY.to_string(), "CNY");
    assert_eq!(format!("{:?}", Currency::JPY), "JPY");
}

#[test]
fn a_zero_amount_allocates_zero_shares() {
    let shares = cny(0).allocate_by_ratios(&[1, 2, 3]).unwrap();
    assert_eq!(shares, vec![cny(0), cny(0), cny(0)]);
    let shares = cny(-10).allocate_by_ratios(&[1, 2]).unwrap();
    assert_eq!(shares, vec![cny(-3), cny(-7)]);
}

#[test]
fn tally_knows_the_currencies_it_can_parse() {
    let codes: Vec<&str> = Currency::known_codes().collect();
    assert!(codes.len() > 40, "{} codes", codes.len());
    for code in &codes {
        assert_eq!(Currency::from_code(code).unwrap().code(), *code);
    }
    for code in ["CNY", "EUR", "JPY", "KWD", "USD"] {
        assert!(codes.contains(&code), "{code}");
    }
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(codes, sorted);
}

#[test]
fn a_secret_never_prints() {
    let secret = Secret::new("tally_live_key".to_string());
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(secret.to_string(), "***");
    assert_eq!(format!("{:?}", Some(&secret)), "Some(***)");
    assert_eq!(secret.expose(), "tally_live_key");
}

#[test]
fn clocks_tell_the_time_they_are_given() {
    let start: Timestamp = "2026-05-01T00:00:00Z".parse().unwrap();
    let manual = ManualClock::new(start);
    let later: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
    manual.set(later);
    assert_eq!(manual.now(), later);
    manual.advance(SignedDuration::from_secs(60));
    let shared: Arc<dyn Clock> = Arc::new(manual);
    assert_eq!(
        shared.now(),
        "2026-06-01T12:01:00Z".parse::<Timestamp>().unwrap()
    );
    // The system clock reads the wall clock: after this test was written.
    let written: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
    assert!(SystemClock.now() > written);
    assert!(Arc::new(SystemClock).now() > written);
}
