//! The bank simulator's settlement file read by the reconciliation engine through the shipped layout `layouts/simulator-settlement.toml`: trailers checked, none taken for a row.

use jiff::civil::{date, Date};
use tally_channel::simulator::{RecordType, SettlementFile, SettlementRow};
use tally_channel::{ChannelId, Reference};
use tally_core::{Amount, Currency};
use tally_recon::{
    Class, ControlKind, Layout, NoProgress, NoStopwatch, Rules, RunOptions, RunOutcome,
};

const LAYOUT: &str = include_str!("../../../layouts/simulator-settlement.toml");

const LEDGER_LAYOUT: &str = r#"
format = "csv"
[fields]
key = { column = "reference" }
amount = { column = "amount", unit = "minor" }
currency = { column = "currency" }
fee = { column = "fee", unit = "minor" }
"#;

const VALUE_DATE: Date = date(2026, 3, 1);

/// A control exception's kind, currency, declared and found values.
type Control = (ControlKind, Option<String>, Option<i128>, Option<i128>);

fn row(reference: &str, minor: i64, fee: i64, currency: Currency) -> SettlementRow {
    SettlementRow {
        record_type: RecordType::Capture,
        value_date: VALUE_DATE,
        reference: Reference::new(reference).expect("a reference"),
        channel_id: ChannelId::new(format!("cap_{minor}")).expect("a channel id"),
        card_last_four: "4242".to_owned(),
        amount: Amount::new(minor, currency),
        fee: Amount::new(fee, currency),
    }
}

fn rows() -> Vec<SettlementRow> {
    vec![
        row("order-1:capture", 6000, 36, Currency::CNY),
        // The simulator quotes references that need it; the engine reads them back.
        row("order-\"2\",capture", 123_456, 741, Currency::USD),
        row("order-3:capture", 999, 6, Currency::CNY),
    ]
}

/// Tally's side of the same day, in minor units.
fn ledger(rows: &[SettlementRow]) -> String {
    let mut text = String::from("reference,amount,currency,fee\n");
    for row in rows {
        let reference = row.reference.as_str().replace('"', "\"\"");
        text.push_str(&format!(
            "\"{reference}\",{},{},{}\n",
            row.amount.minor(),
            row.amount.currency().code(),
            row.fee.minor()
        ));
    }
    text
}

fn reconcile(ledger_text: &str, channel_text: &str) -> RunOutcome {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger = directory.path().join("ledger.csv");
    let channel = directory.path().join("settlement.csv");
    std::fs::write(&ledger, ledger_text).expect("write");
    std::fs::write(&channel, channel_text).expect("write");
    let options = RunOptions::new(
        ledger,
        Layout::from_toml(LEDGER_LAYOUT, "ledger").expect("ledger layout"),
        channel,
        Layout::from_toml(LAYOUT, "layouts/simulator-settlement.toml").expect("shipped layout"),
        Rules::default(),
        directory.path().join("out"),
    );
    tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("run")
}

#[test]
fn the_served_file_passes_its_trailers_and_matches_the_books() {
    let file = SettlementFile::new(VALUE_DATE, rows()).expect("a file");
    let outcome = reconcile(&ledger(&rows()), &file.to_csv());
    let summary = &outcome.summary;
    assert!(
        summary.control_exceptions.is_empty(),
        "{}",
        summary.report()
    );
    // Two currencies, each trailer with a count, a sum and a fee sum.
    assert_eq!(summary.channel.controls_checked, 6);
    assert_eq!(summary.channel.rows, 3);
    assert_eq!(summary.bad_rows, 0);
    assert_eq!(summary.count(Class::Matched), 3);
    assert_eq!(summary.exit_code, 0);
}

#[test]
fn a_row_lost_in_transit_fails_its_currency_trailer() {
    let file = SettlementFile::new(VALUE_DATE, rows()).expect("a file");
    let served = file.to_csv();
    let cut: String = served
        .lines()
        .filter(|line| !line.contains("order-3:capture"))
        .map(|line| format!("{line}\n"))
        .collect();
    let outcome = reconcile(&ledger(&rows()), &cut);
    let kinds: Vec<Control> = outcome
        .summary
        .control_exceptions
        .iter()
        .map(|exception| {
            (
                exception.kind,
                exception.currency.clone(),
                exception.declared,
                exception.found,
            )
        })
        .collect();
    let cny = Some("CNY".to_owned());
    assert_eq!(
        kinds,
        vec![
            (ControlKind::CountMismatch, cny.clone(), Some(2), Some(1)),
            (
                ControlKind::SumMismatch,
                cny.clone(),
                Some(6999),
                Some(6000)
            ),
            (ControlKind::FeeSumMismatch, cny, Some(42), Some(36)),
        ]
    );
    assert_eq!(outcome.summary.count(Class::MissingInChannel), 1);
}

#[test]
fn a_day_without_rows_has_its_empty_trailer_checked() {
    let file = SettlementFile::new(VALUE_DATE, Vec::new()).expect("a file");
    let served = file.to_csv();
    assert!(served.ends_with("trailer,2026-03-01,0,,,,,\n"), "{served}");
    let outcome = reconcile("reference,amount,currency,fee\n", &served);
    assert!(outcome.summary.control_exceptions.is_empty());
    assert_eq!(outcome.summary.channel.controls_checked, 1);
    assert_eq!(outcome.summary.exit_code, 0);

    // Without its trailer, the file says nothing of how many rows it should hold.
    let header_only = served.lines().next().expect("the column names").to_owned() + "\n";
    let outcome = reconcile("reference,amount,currency,fee\n", &header_only);
    assert_eq!(
        outcome.summary.control_exceptions[0].kind,
        ControlKind::TrailerMissing
    );
}
