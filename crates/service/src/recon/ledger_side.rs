//! The ledger side of a reconciliation, read from Tally's own journal: every entry the
//! payment service posted on a channel clearing account during a business date, as one
//! record under the reference Tally gave the channel.
//!
//! Why the journal and not the payment rows: reconciliation proves the books, so the side
//! compared with the bank is what the books hold. Each channel operation is mirrored in the
//! ledger under an idempotency key derived from the operation's channel reference (a card
//! step's `{reference}:ledger`, a wallet top-up's `payments-wallet:{id}` for reference
//! `{id}:capture`, a withdrawal's `payments-wallet:{id}:post` for `{id}:payout`), and the
//! key's record keeps the entry it posted. A dispute's entries (`payments-dispute:{id}:…`)
//! carry the bank's dispute id in their metadata (`channel_dispute`), and the bank's file
//! shows them under that id: the opening as `{dispute}:dispute`, a won outcome (money back
//! on the clearing account) as `{dispute}:dispute-won`, a lost one's fee as
//! `{dispute}:dispute-fee`. A clearing-account entry under any other key is
//! still Tally's money at the bank, so it is kept under its key as the reference (the bank
//! cannot know it, and it shows as missing in the channel's file) — except the adjusting
//! entries reconciliation itself posts, which correct the books and are no channel
//! operation.
//!
//! The records are read in pages by time and key (one day's range of an index, not every
//! record ever written) and written to a CSV file as they come, so a day of millions of
//! operations is never held in memory: the engine then reads that file as it reads any
//! ledger file, whatever its order.

use crate::recon::error::ReconServiceError;
use jiff::Timestamp;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use tally_core::{AccountId, Amount};
use tally_ledger::{Entry, Outcome, Side};
use tally_store::Database;

/// Code prefix of the payment service's channel clearing accounts (one per currency).
pub const CLEARING_ACCOUNT_PREFIX: &str = "payments-channel-clearing-";
/// Idempotency-key prefix of the entries of disputes.
pub const DISPUTE_KEY_PREFIX: &str = "payments-dispute:";
/// Idempotency-key prefix of the adjusting entries reconciliation posts.
pub const ADJUSTING_KEY_PREFIX: &str = "payments-recon-adjust:";
/// Ledger outcomes read per page.
const PAGE_ROWS: i64 = 10_000;

/// The layout of the ledger-side file written by [`write_ledger_side`] (see
/// docs/recon-layout.md): amounts in minor units, times in UTC.
pub const LEDGER_LAYOUT: &str = "# Tally's ledger side, written from the journal by tally-service.\n\
format = \"csv\"\nencoding = \"utf-8\"\ncsv = { delimiter = \",\", quote = '\"', header = true }\n\n\
[fields]\nkey = [{ column = \"reference\" }]\namount = { column = \"amount_minor\", unit = \"minor\" }\n\
currency = { column = \"currency\" }\n\
timestamp = { column = \"posted_at\", format = \"%Y-%m-%d %H:%M:%S\", time_zone = \"UTC\" }\n";

/// What the bank should show for one ledger entry on a clearing account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    /// The channel reference Tally used.
    pub reference: String,
    /// `capture` (money from the card to Tally), `refund` or `payout` (back to a card),
    /// `dispute`, `dispute_won` or `dispute_fee` (a dispute's movements).
    pub record_type: &'static str,
    /// Positive; `record_type` gives the direction, as in the bank's file.
    pub amount: Amount,
    pub posted_at: Timestamp,
}

/// The record of the ledger write under `key` with `outcome`, if it moved a clearing account.
pub fn ledger_record(
    key: &str,
    outcome: &Outcome,
    clearing: &HashSet<AccountId>,
) -> Option<LedgerRecord> {
    if key.starts_with(ADJUSTING_KEY_PREFIX) {
        return None;
    }
    let entry: &Entry = match outcome {
        Outcome::Entry(entry) | Outcome::PostedHold { entry, .. } => entry,
        Outcome::Account(_) | Outcome::Hold(_) => return None,
    };
    let leg = entry
        .legs
        .iter()
        .find(|leg| clearing.contains(&leg.account_id))?;
    let (reference, record_type) = match dispute_reference(key, entry, leg.side) {
        Some(found) => found,
        None => {
            let (reference, payout) = channel_reference(key);
            let record_type = match (leg.side, payout) {
                (Side::Debit, _) => "capture",
                (Side::Credit, true) => "payout",
                (Side::Credit, false) => "refund",
            };
            (reference, record_type)
        }
    };
    Some(LedgerRecord {
        reference,
        record_type,
        amount: leg.amount,
        posted_at: entry.posted_at,
    })
}

/// The bank's reference and record type of a dispute's entry on the clearing account (its
/// leg there on `side`), or `None` when the entry is not a dispute's or does not name the
/// bank's dispute (entries posted before they did are kept under their key).
fn dispute_reference(key: &str, entry: &Entry, side: Side) -> Option<(String, &'static str)> {
    let rest = key.strip_prefix(DISPUTE_KEY_PREFIX)?;
    let dispute = entry.metadata.get("channel_dispute")?;
    let (suffix, record_type) = if rest.ends_with(":opening") {
        ("dispute", "dispute")
    } else {
        match side {
            // Won: the bank gives the amount back, the clearing account is debited.
            Side::Debit => ("dispute-won", "dispute_won"),
            // Lost: the bank's fee, the clearing account is credited.
            Side::Credit => ("dispute-fee", "dispute_fee"),
        }
    };
    Some((format!("{dispute}:{suffix}"), record_type))
}

/// The channel reference behind a ledger key, and whether the key is a payout's.
fn channel_reference(key: &str) -> (String, bool) {
    if let Some(wallet) = key.strip_prefix("payments-wallet:") {
        if let Some(id) = wallet.strip_suffix(":post") {
            return (format!("{id}:payout"), true);
        }
        if !wallet.contains(':') {
            return (format!("{wallet}:capture"), false);
        }
    }
    match key.strip_suffix(":ledger") {
        Some(reference) => (reference.to_string(), false),
        None => (key.to_string(), false),
    }
}

/// Writes the ledger side of `[from, to)` to `path` in [`LEDGER_LAYOUT`], page by page, and
/// answers how many records it wrote.
pub async fn write_ledger_side(
    database: &Database,
    from: Timestamp,
    to: Timestamp,
    path: &Path,
) -> Result<u64, ReconServiceError> {
    let failed = |error: &dyn std::fmt::Display| ReconServiceError::LedgerSide {
        path: path.display().to_string(),
        message: error.to_string(),
    };
    let mut clearing = HashSet::new();
    let mut after = String::new();
    loop {
        let page = database
            .accounts_with_code_prefix(CLEARING_ACCOUNT_PREFIX, &after, 1_000)
            .await?;
        let Some((_, last)) = page.last() else { break };
        after = last.clone();
        clearing.extend(page.into_iter().map(|(id, _)| id));
    }
    let file = std::fs::File::create(path).map_err(|error| failed(&error))?;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(std::io::BufWriter::new(file));
    writer
        .write_record([
            "reference",
            "record_type",
            "amount_minor",
            "currency",
            "posted_at",
        ])
        .map_err(|error| failed(&error))?;
    let mut written = 0_u64;
    let mut after = None;
    loop {
        let page = database
            .payment_ledger_outcomes_page(
                from.as_microsecond(),
                to.as_microsecond(),
                &after,
                PAGE_ROWS,
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.key.clone()));
        for row in &page {
            let outcome: Outcome = serde_json::from_str(&row.outcome).map_err(|error| {
                tally_store::StoreError::Corrupt(format!("ledger outcome of {}: {error}", row.key))
            })?;
            let Some(record) = ledger_record(&row.key, &outcome, &clearing) else {
                continue;
            };
            writer
                .write_record([
                    record.reference.as_str(),
                    record.record_type,
                    &record.amount.minor().to_string(),
                    record.amount.currency().code(),
                    &record.posted_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                ])
                .map_err(|error| failed(&error))?;
            written += 1;
        }
    }
    let mut inner = writer
        .into_inner()
        .map_err(|error| failed(&error.to_string()))?;
    inner.flush().map_err(|error| failed(&error))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tally_core::{Currency, EntryId};
    use tally_ledger::Leg;
    use uuid::Uuid;

    fn entry(clearing: AccountId, side: Side) -> Outcome {
        let other = AccountId(Uuid::from_u128(2));
        let amount = Amount::new(6000, Currency::CNY);
        let opposite = match side {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        };
        Outcome::Entry(Entry {
            id: EntryId(Uuid::from_u128(3)),
            legs: vec![
                Leg {
                    account_id: clearing,
                    side,
                    amount,
                },
                Leg {
                    account_id: other,
                    side: opposite,
                    amount,
                },
            ],
            description: String::new(),
            metadata: BTreeMap::new(),
            posted_at: "2026-11-30T23:10:00Z".parse().expect("a time"),
            hold_id: None,
        })
    }

    #[test]
    fn keys_map_to_the_references_the_channel_saw() {
        let clearing = AccountId(Uuid::from_u128(1));
        let accounts = HashSet::from([clearing]);
        let record = |key: &str, side| {
            ledger_record(key, &entry(clearing, side), &accounts)
                .map(|record| (record.reference, record.record_type))
        };
        assert_eq!(
            record("payments:pay_1:step:4:ledger", Side::Debit),
            Some(("payments:pay_1:step:4".into(), "capture"))
        );
        assert_eq!(
            record("payments:pay_1:step:9:ledger", Side::Credit),
            Some(("payments:pay_1:step:9".into(), "refund"))
        );
        assert_eq!(
            record("payments-wallet:wop_1", Side::Debit),
            Some(("wop_1:capture".into(), "capture"))
        );
        assert_eq!(
            record("payments-wallet:wop_1:post", Side::Credit),
            Some(("wop_1:payout".into(), "payout"))
        );
        // Money on the clearing account under another key is kept under that key.
        assert_eq!(
            record("payments-test-top-up:1", Side::Debit),
            Some(("payments-test-top-up:1".into(), "capture"))
        );
        assert_eq!(record("payments-recon-adjust:rex_1", Side::Debit), None);
        // A dispute's entries: under the bank's dispute id when they name it.
        let dispute = |key: &str, side| {
            let mut outcome = entry(clearing, side);
            if let Outcome::Entry(entry) = &mut outcome {
                entry
                    .metadata
                    .insert("channel_dispute".into(), "dsp_7".into());
            }
            ledger_record(key, &outcome, &accounts)
                .map(|record| (record.reference, record.record_type))
        };
        assert_eq!(
            dispute("payments-dispute:dis_1:opening", Side::Credit),
            Some(("dsp_7:dispute".into(), "dispute"))
        );
        assert_eq!(
            dispute("payments-dispute:dis_1:outcome", Side::Debit),
            Some(("dsp_7:dispute-won".into(), "dispute_won"))
        );
        assert_eq!(
            dispute("payments-dispute:dis_1:outcome", Side::Credit),
            Some(("dsp_7:dispute-fee".into(), "dispute_fee"))
        );
        assert_eq!(
            record("payments-dispute:dis_1:opening", Side::Credit),
            Some(("payments-dispute:dis_1:opening".into(), "refund"))
        );
        // An entry that does not touch a clearing account is no channel operation.
        let elsewhere = HashSet::from([AccountId(Uuid::from_u128(9))]);
        assert_eq!(
            ledger_record(
                "payments:pay_1:step:4:ledger",
                &entry(clearing, Side::Debit),
                &elsewhere
            ),
            None
        );
    }
}
