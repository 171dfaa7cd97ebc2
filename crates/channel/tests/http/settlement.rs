//! The daily settlement file served by the simulator: one row per capture, refund and paid
//! payout of the day, control totals that match the rows, and injected discrepancies.

use crate::support::{cny, config, reference, start_with_clock, MASTERCARD, VISA};
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use tally_channel::simulator::{Discrepancy, FaultsUpdate, RecordType, SettlementFile};
use tally_channel::{AuthorizeRequest, CaptureRequest, PayoutRequest, RefundRequest};
use tally_core::ManualClock;

#[tokio::test]
async fn a_days_file_lists_its_money_movements_with_matching_control_totals() {
    let start: Timestamp = "2026-03-01T10:00:00Z".parse().expect("a time");
    let clock = Arc::new(ManualClock::new(start));
    let bank = start_with_clock(config(), clock.clone()).await;
    let token = bank.card(VISA, "1000.00").await;
    let other = bank.card(MASTERCARD, "10.00").await;
    let authorization = bank
        .channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-1:authorize"),
            token: token.clone(),
            amount: cny("100.00"),
        })
        .await
        .expect("an authorisation");
    bank.channel
        .capture(&CaptureRequest {
            reference: reference("order-1:capture"),
            channel_id: authorization.channel_id.clone(),
            amount: cny("60.00"),
        })
        .await
        .expect("a capture");
    bank.channel
        .refund(&RefundRequest {
            reference: reference("order-1:refund"),
            channel_id: authorization.channel_id.clone(),
            amount: cny("10.00"),
        })
        .await
        .expect("a refund");
    bank.channel
        .payout(&PayoutRequest {
            reference: reference("withdrawal-1"),
            token: other,
            amount: cny("25.00"),
        })
        .await
        .expect("a payout");
    // The next day's capture belongs to the next day's file.
    clock.advance(SignedDuration::from_hours(24));
    let next_day = bank
        .channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-2:authorize"),
            token,
            amount: cny("5.00"),
        })
        .await
        .expect("an authorisation");
    bank.channel
        .capture(&CaptureRequest {
            reference: reference("order-2:capture"),
            channel_id: next_day.channel_id,
            amount: cny("5.00"),
        })
        .await
        .expect("a capture");

    let text = bank
        .control
        .settlement_file(date(2026, 3, 1))
        .await
        .expect("a file");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("record_type,value_date,reference,channel_id,card_last_four,amount,currency,fee")
    );
    assert_eq!(lines.last(), Some("trailer,2026-03-01,3,,,95.00,CNY,0.36"));
    let file = SettlementFile::parse(&text).expect("a readable file");
    assert_eq!(file.check_control_totals(), Ok(()));
    let rows: Vec<_> = file
        .rows
        .iter()
        .map(|row| {
            (
                row.record_type,
                row.reference.as_str(),
                row.card_last_four.as_str(),
                row.amount.to_decimal_string(),
                row.fee.to_decimal_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                RecordType::Capture,
                "order-1:capture",
                "4242",
                "60.00".into(),
                "0.36".into()
            ),
            (
                RecordType::Refund,
                "order-1:refund",
                "4242",
                "10.00".into(),
                "0.00".into()
            ),
            (
                RecordType::Payout,
                "withdrawal-1",
                "4444",
                "25.00".into(),
                "0.00".into()
            ),
        ]
    );

    let next = bank
        .control
        .settlement_file(date(2026, 3, 2))
        .await
        .expect("a file");
    let next = SettlementFile::parse(&next).expect("a readable file");
    assert_eq!(next.rows.len(), 1);
    let empty = bank
        .control
        .settlement_file(date(2026, 3, 3))
        .await
        .expect("a file");
    assert!(empty.ends_with("trailer,2026-03-03,0,,,,,\n"), "{empty}");

    // An amount mismatch changes exactly one row, by one minor unit; the totals follow it.
    bank.control
        .set_faults(&FaultsUpdate {
            settlement_discrepancies: Some(vec![Discrepancy::AmountMismatch]),
            ..FaultsUpdate::default()
        })
        .await
        .expect("faults changed");
    let served = bank
        .control
        .settlement_file(date(2026, 3, 1))
        .await
        .expect("a file");
    assert_eq!(
        bank.control
            .settlement_file(date(2026, 3, 1))
            .await
            .expect("a file"),
        served,
        "the same file every time"
    );
    let mismatched = SettlementFile::parse(&served).expect("a readable file");
    assert_eq!(mismatched.check_control_totals(), Ok(()));
    assert_eq!(mismatched.rows.len(), file.rows.len());
    let changed: Vec<_> = file
        .rows
        .iter()
        .zip(&mismatched.rows)
        .filter(|(truth, served)| truth != served)
        .collect();
    assert_eq!(changed.len(), 1);
    let (truth, served) = changed[0];
    assert_eq!(served.amount.minor(), truth.amount.minor() + 1);
    assert_eq!(
        (&served.reference, served.fee),
        (&truth.reference, truth.fee)
    );

    // The other discrepancies, all at once.
    bank.control
        .set_faults(&FaultsUpdate {
            settlement_discrepancies: Some(vec![
                Discrepancy::Missing,
                Discrepancy::Duplicate,
                Discrepancy::UnknownReference,
            ]),
            ..FaultsUpdate::default()
        })
        .await
        .expect("faults changed");
    let served = bank
        .control
        .settlement_file(date(2026, 3, 1))
        .await
        .expect("a file");
    let changed = SettlementFile::parse(&served).expect("a readable file");
    assert_eq!(changed.check_control_totals(), Ok(()));
    assert_eq!(changed.rows.len(), 4, "3 - missing + duplicate + unknown");
    let unknown = changed
        .rows
        .iter()
        .filter(|row| row.reference.as_str().starts_with("unknown-"))
        .count();
    assert_eq!(unknown, 1);
}
