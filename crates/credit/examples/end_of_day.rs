//! Measures the pure end-of-day rules over many in-memory accounts (no storage):
//! `cargo run --release -p tally-credit --example end_of_day -- [ACCOUNTS] [DAYS]`.
//! Each account has three active plans (flat fee over 12, annuity over 24, one period);
//! statement days are spread over 1 to 28. Prints the time per account-day.
#![allow(clippy::unwrap_used)]

use jiff::civil::date;
use jiff::ToSpan;
use std::time::Instant;
use tally_core::{Amount, Currency};
use tally_credit::account::DayOutcome;
use tally_credit::{Account, AccountPolicy, Cycle, Product};

fn main() {
    let mut arguments = std::env::args().skip(1);
    let accounts: usize = arguments
        .next()
        .map_or(100_000, |text| text.parse().unwrap());
    let days: i64 = arguments.next().map_or(31, |text| text.parse().unwrap());
    let flat = Product::from_toml(
        r#"code = "flat"
           name = "flat"
           currency = "CNY"
           fee_model = { kind = "flat_fee" }
           terms = [{ periods = 1, rate = "0" }, { periods = 12, rate = "0.008" }]"#,
    )
    .unwrap();
    let annuity = Product::from_toml(
        r#"code = "annuity"
           name = "annuity"
           currency = "CNY"
           fee_model = { kind = "annuity" }
           terms = [{ periods = 24, rate = "0.18" }]"#,
    )
    .unwrap();
    let policy = AccountPolicy::default();
    let start = date(2026, 1, 1);
    let built = Instant::now();
    let mut book: Vec<Account> = (0..accounts)
        .map(|index| {
            let day = i8::try_from(index % 28 + 1).unwrap();
            let mut account = Account::open(
                Amount::new(5_000_000, Currency::CNY),
                Cycle::new(day, 9).unwrap(),
            )
            .unwrap();
            let minor = 100_000 + i64::try_from(index % 1000).unwrap() * 100;
            for (product, periods) in [(&flat, 12), (&annuity, 24), (&flat, 1)] {
                let value = Amount::new(minor, Currency::CNY);
                account.authorize(start, value).unwrap();
                account.capture(start, value, product, periods).unwrap();
            }
            account
        })
        .collect();
    println!(
        "built {accounts} accounts with {} plans in {} ms",
        accounts * 3,
        built.elapsed().as_millis()
    );
    let mut outcome = DayOutcome::default();
    let mut postings = 0_usize;
    let mut statements = 0_usize;
    let timed = Instant::now();
    for offset in 1..=days {
        let today = start.checked_add(offset.days()).unwrap();
        for account in &mut book {
            account.end_of_day(today, &policy, &mut outcome).unwrap();
            postings += outcome.postings.len();
            statements += usize::from(outcome.statement.is_some());
        }
    }
    let elapsed = timed.elapsed();
    let account_days = accounts as u128 * u128::from(days.unsigned_abs());
    println!(
        "{days} days x {accounts} accounts: {} ms, {} ns per account-day, {statements} statements, {postings} postings",
        elapsed.as_millis(),
        elapsed.as_nanos() / account_days.max(1)
    );
}
