//! The daily settlement file: what the bank says it moved on one value date, as CSV with
//! per-currency control totals, optionally with deliberate discrepancies.
//!
//! # Format
//!
//! UTF-8 CSV (RFC 4180 quoting), `\n` line ends. The first line names the columns:
//!
//! ```text
//! record_type,value_date,reference,channel_id,card_last_four,amount,currency,fee
//! capture,2026-03-01,order-17:capture,cap_5f0e3a1c9d2b7e44,4242,60.00,CNY,0.36
//! refund,2026-03-01,order-17:refund-1,ref_0c9d3e5f1a2b4c6d,4242,10.00,CNY,0.00
//! payout,2026-03-01,withdrawal-9,pay_7e1f2d3c4b5a6978,4444,25.00,CNY,0.00
//! dispute,2026-03-01,dsp_1c2d3e4f5a6b7c8d:dispute,dsp_1c2d3e4f5a6b7c8d,4242,20.00,CNY,0.00
//! trailer,2026-03-01,4,,,115.00,CNY,0.36
//! ```
//!
//! - A **row** per capture, refund, paid payout and dispute movement that took place on the
//!   value date (UTC), in the order they took place. `record_type` is `capture` (money from
//!   the card to the merchant side), `refund` (back to the card), `payout` (to the card),
//!   `dispute` (a chargeback: the disputed amount taken back from Tally for the
//!   cardholder), `dispute_won` (a dispute decided for the merchant: the amount given back
//!   to Tally) or `dispute_fee` (a dispute lost: the bank's dispute fee taken from Tally;
//!   none when the fee is zero). A dispute's rows are under references of their own, the
//!   bank's dispute id (also the `channel_id`) with `:dispute`, `:dispute-won` or
//!   `:dispute-fee`, since the capture's reference is the capture's row; `card_last_four` is
//!   the disputed capture's. `amount` is positive in every case, in major units; `fee` is the
//!   bank's fee in the same currency (captures pay the configured rate, rounded half up to
//!   the minor unit; the other rows pay none). Returned payouts and voids move no money and
//!   have no row.
//! - Then a **trailer** line per currency present, by currency code, holding the control
//!   totals: `trailer,<value_date>,<record count>,,,<sum of amount>,<currency>,<sum of fee>`
//!   (the count stands in the `reference` column). A day without rows has one trailer
//!   `trailer,<value_date>,0,,,,,`.
//!
//! Injected discrepancies (`settlement_discrepancies` in `POST /v1/faults`) change the rows
//! against what the bank did, one row each, chosen by the seed and the date so the same
//! file is served every time (`late` holds the day's last row back and serves it first in
//! the next date's file, dated that date); the trailers are computed from the rows as served, so the file
//! is always consistent with itself and the difference shows only against Tally's books.

use crate::identifiers::{ChannelId, Reference};
use crate::simulator::faults::{Discrepancy, PartsPerMillion};
use jiff::civil::Date;
use std::collections::BTreeMap;
use tally_core::{Amount, Currency, MoneyError, SplitMix64};

/// The column names, the file's first line.
pub const COLUMNS: [&str; 8] = [
    "record_type",
    "value_date",
    "reference",
    "channel_id",
    "card_last_four",
    "amount",
    "currency",
    "fee",
];

const TRAILER: &str = "trailer";

/// The kind of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    Capture,
    Refund,
    Payout,
    Dispute,
    DisputeWon,
    DisputeFee,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Capture => "capture",
            RecordType::Refund => "refund",
            RecordType::Payout => "payout",
            RecordType::Dispute => "dispute",
            RecordType::DisputeWon => "dispute_won",
            RecordType::DisputeFee => "dispute_fee",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "capture" => Some(RecordType::Capture),
            "refund" => Some(RecordType::Refund),
            "payout" => Some(RecordType::Payout),
            "dispute" => Some(RecordType::Dispute),
            "dispute_won" => Some(RecordType::DisputeWon),
            "dispute_fee" => Some(RecordType::DisputeFee),
            _ => None,
        }
    }
}

/// One money movement the bank settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRow {
    pub record_type: RecordType,
    pub value_date: Date,
    pub reference: Reference,
    pub channel_id: ChannelId,
    pub card_last_four: String,
    /// Positive; `record_type` gives the direction.
    pub amount: Amount,
    pub fee: Amount,
}

/// The control totals of one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    pub value_date: Date,
    pub record_count: u64,
    /// `None` only on the trailer of a day without rows.
    pub totals: Option<Totals>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub amount_sum: Amount,
    pub fee_sum: Amount,
}

/// A settlement file: rows, then trailers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementFile {
    pub value_date: Date,
    pub rows: Vec<SettlementRow>,
    pub trailers: Vec<Trailer>,
}

/// The bank's fee on a capture: `rate` of the amount, rounded half up to the minor unit.
pub fn capture_fee(amount: Amount, rate: PartsPerMillion) -> Result<Amount, MoneyError> {
    let million = 1_000_000_i128;
    let fee = (i128::from(amount.minor()) * i128::from(rate.parts()) + million / 2) / million;
    let fee = i64::try_from(fee).map_err(|_| MoneyError::Overflow)?;
    Ok(Amount::new(fee, amount.currency()))
}

/// The trailers of `rows`: one per currency, or one empty trailer.
fn trailers_of(value_date: Date, rows: &[SettlementRow]) -> Result<Vec<Trailer>, MoneyError> {
    let mut by_currency: BTreeMap<Currency, (u64, Amount, Amount)> = BTreeMap::new();
    for row in rows {
        let currency = row.amount.currency();
        let zero = Amount::zero(currency);
        let (count, amount_sum, fee_sum) = by_currency.entry(currency).or_insert((0, zero, zero));
        *count += 1;
        *amount_sum = amount_sum.checked_add(row.amount)?;
        *fee_sum = fee_sum.checked_add(row.fee)?;
    }
    if by_currency.is_empty() {
        return Ok(vec![Trailer {
            value_date,
            record_count: 0,
            totals: None,
        }]);
    }
    Ok(by_currency
        .into_values()
        .map(|(record_count, amount_sum, fee_sum)| Trailer {
            value_date,
            record_count,
            totals: Some(Totals {
                amount_sum,
                fee_sum,
            }),
        })
        .collect())
}

impl SettlementFile {
    /// The file of `rows`, with its trailers computed from them.
    pub fn new(value_date: Date, rows: Vec<SettlementRow>) -> Result<Self, MoneyError> {
        let trailers = trailers_of(value_date, &rows)?;
        Ok(SettlementFile {
            value_date,
            rows,
            trailers,
        })
    }

    /// Whether the trailers' counts and sums are those of the rows.
    pub fn check_control_totals(&self) -> Result<(), String> {
        let expected =
            trailers_of(self.value_date, &self.rows).map_err(|error| error.to_string())?;
        if expected != self.trailers {
            return Err(format!(
                "trailers {:?} do not match the rows' totals {expected:?}",
                self.trailers
            ));
        }
        Ok(())
    }

    pub fn to_csv(&self) -> String {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let mut lines: Vec<[String; 8]> = vec![COLUMNS.map(str::to_string)];
        for row in &self.rows {
            lines.push([
                row.record_type.as_str().to_string(),
                row.value_date.to_string(),
                row.reference.to_string(),
                row.channel_id.to_string(),
                row.card_last_four.clone(),
                row.amount.to_decimal_string(),
                row.amount.currency().code().to_string(),
                row.fee.to_decimal_string(),
            ]);
        }
        for trailer in &self.trailers {
            let (amount_sum, currency, fee_sum) = match &trailer.totals {
                Some(totals) => (
                    totals.amount_sum.to_decimal_string(),
                    totals.amount_sum.currency().code().to_string(),
                    totals.fee_sum.to_decimal_string(),
                ),
                None => (String::new(), String::new(), String::new()),
            };
            lines.push([
                TRAILER.to_string(),
                trailer.value_date.to_string(),
                trailer.record_count.to_string(),
                String::new(),
                String::new(),
                amount_sum,
                currency,
                fee_sum,
            ]);
        }
        for line in lines {
            // Writing to a Vec cannot fail.
            let _ = writer.write_record(&line);
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// Reads a file in the format above (trailers after every row, all of one value date).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let header = records
            .next()
            .ok_or("an empty file")?
            .map_err(|error| error.to_string())?;
        if header.iter().ne(COLUMNS) {
            return Err(format!("unexpected columns {header:?}"));
        }
        let mut value_date = None;
        let mut rows = Vec::new();
        let mut trailers = Vec::new();
        for (index, record) in records.enumerate() {
            let line = index + 2;
            let record = record.map_err(|error| format!("line {line}: {error}"))?;
            let field = |column: usize| record.get(column).unwrap_or_default();
            let fail = |reason: String| format!("line {line}: {reason}");
            let date: Date = field(1)
                .parse()
                .map_err(|error| fail(format!("value_date: {error}")))?;
            if *value_date.get_or_insert(date) != date {
                return Err(fail("another value date".into()));
            }
            let amount = |column: usize| {
                crate::wire::amount_from_wire(field(column), field(6)).map_err(&fail)
            };
            if field(0) == TRAILER {
                let record_count = field(2)
                    .parse()
                    .map_err(|error| fail(format!("record count: {error}")))?;
                let totals = if field(6).is_empty() {
                    None
                } else {
                    Some(Totals {
                        amount_sum: amount(5)?,
                        fee_sum: amount(7)?,
                    })
                };
                trailers.push(Trailer {
                    value_date: date,
                    record_count,
                    totals,
                });
                continue;
            }
            if !trailers.is_empty() {
                return Err(fail("a row after the trailers".into()));
            }
            let record_type = RecordType::parse(field(0))
                .ok_or_else(|| fail(format!("unknown record type {:?}", field(0))))?;
            rows.push(SettlementRow {
                record_type,
                value_date: date,
                reference: Reference::new(field(2)).map_err(|error| fail(error.to_string()))?,
                channel_id: ChannelId::new(field(3)).map_err(|error| fail(error.to_string()))?,
                card_last_four: field(4).to_string(),
                amount: amount(5)?,
                fee: amount(7)?,
            });
        }
        if trailers.is_empty() {
            return Err("no trailer".into());
        }
        Ok(SettlementFile {
            value_date: value_date.ok_or("no value date")?,
            rows,
            trailers,
        })
    }
}

/// Changes `rows` by each discrepancy in turn, one row each, choosing rows with `random`.
/// A discrepancy that needs a row does nothing to an empty day.
pub(crate) fn inject(
    value_date: Date,
    rows: &mut Vec<SettlementRow>,
    discrepancies: &[Discrepancy],
    random: &mut SplitMix64,
) -> Result<(), MoneyError> {
    for discrepancy in discrepancies {
        let chosen = random.index_below(rows.len());
        match discrepancy {
            Discrepancy::Missing if !rows.is_empty() => {
                rows.remove(chosen);
            }
            Discrepancy::AmountMismatch if !rows.is_empty() => {
                let row = &mut rows[chosen];
                row.amount = row
                    .amount
                    .checked_add(Amount::new(1, row.amount.currency()))?;
            }
            Discrepancy::Duplicate if !rows.is_empty() => {
                let copy = rows[chosen].clone();
                rows.insert(chosen + 1, copy);
            }
            Discrepancy::UnknownReference => {
                let number = random.next_u64();
                // An empty day still gets its stranger, of 1.00 CNY.
                let amount = rows
                    .get(chosen)
                    .map_or(Amount::new(100, Currency::CNY), |row| row.amount);
                rows.push(SettlementRow {
                    record_type: RecordType::Capture,
                    value_date,
                    reference: Reference::new(format!("unknown-{number:016x}"))
                        .expect("a valid reference"),
                    channel_id: ChannelId::new(format!("cap_{number:016x}"))
                        .expect("a valid channel id"),
                    card_last_four: "0000".into(),
                    amount,
                    fee: Amount::zero(amount.currency()),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(reference: &str, minor: i64, currency: Currency) -> SettlementRow {
        SettlementRow {
            record_type: RecordType::Capture,
            value_date: jiff::civil::date(2026, 3, 1),
            reference: Reference::new(reference).expect("valid"),
            channel_id: ChannelId::new(format!("cap_{reference}")).expect("valid"),
            card_last_four: "4242".into(),
            amount: Amount::new(minor, currency),
            fee: Amount::new(minor / 100, currency),
        }
    }

    #[test]
    fn a_file_reads_back_and_its_totals_hold() {
        let rows = vec![
            row("a,1", 6000, Currency::CNY),
            row("b\"2", 1000, Currency::USD),
            row("c", 500, Currency::CNY),
        ];
        let file = SettlementFile::new(jiff::civil::date(2026, 3, 1), rows).expect("a file");
        let text = file.to_csv();
        assert!(text.starts_with("record_type,value_date,reference,"));
        assert!(
            text.ends_with("trailer,2026-03-01,1,,,10.00,USD,0.10\n"),
            "{text}"
        );
        assert!(
            text.contains("trailer,2026-03-01,2,,,65.00,CNY,0.65\n"),
            "{text}"
        );
        let read = SettlementFile::parse(&text).expect("readable");
        assert_eq!(read, file);
        assert_eq!(read.check_control_totals(), Ok(()));
    }

    #[test]
    fn an_empty_day_has_one_empty_trailer() {
        let file = SettlementFile::new(jiff::civil::date(2026, 3, 1), vec![]).expect("a file");
        let text = file.to_csv();
        assert!(text.ends_with("\ntrailer,2026-03-01,0,,,,,\n"), "{text}");
        assert_eq!(SettlementFile::parse(&text), Ok(file));
    }

    #[test]
    fn fees_round_half_up() {
        let rate = PartsPerMillion::new(6000).expect("valid");
        let fee = |minor| capture_fee(Amount::new(minor, Currency::CNY), rate).expect("a fee");
        assert_eq!(fee(6000).minor(), 36);
        assert_eq!(fee(75).minor(), 0); // 0.45 fen
        assert_eq!(fee(84).minor(), 1); // 0.504 fen
        assert_eq!(fee(250).minor(), 2); // 1.5 fen, half up
    }

    #[test]
    fn each_discrepancy_changes_one_row() {
        let rows: Vec<_> = (0..5)
            .map(|index| row(&format!("r{index}"), 100 + index, Currency::CNY))
            .collect();
        let changed = |discrepancy| {
            let mut copy = rows.clone();
            let date = jiff::civil::date(2026, 3, 1);
            inject(date, &mut copy, &[discrepancy], &mut SplitMix64::new(1)).expect("injected");
            copy
        };
        assert_eq!(changed(Discrepancy::Missing).len(), 4);
        assert_eq!(changed(Discrepancy::Duplicate).len(), 6);
        let unknown = changed(Discrepancy::UnknownReference);
        assert_eq!(unknown.len(), 6);
        assert!(unknown[5].reference.as_str().starts_with("unknown-"));
        let mismatched = changed(Discrepancy::AmountMismatch);
        let differing: Vec<_> = rows
            .iter()
            .zip(&mismatched)
            .filter(|(before, after)| before != after)
            .collect();
        assert_eq!(differing.len(), 1);
        let (before, after) = differing[0];
        assert_eq!(after.amount.minor(), before.amount.minor() + 1);
    }
}
