//! Personal values of risk events and list entries replaced by keyed fingerprints where they
//! enter Tally (`POST /v1/risk/decisions`, `POST /v1/risk/lists`), before the engine, its
//! store or an evidence package sees them.
//!
//! - `card`: always fingerprinted ([`Privacy::card_fingerprint`]): a card number (12 to 19
//!   digits, Luhn valid, spaces and dashes dropped) by its digits, so it matches the bank card
//!   bound to a profile; any other card identifier (a lender's token) as it is. Fingerprinted
//!   rather than refused: a lender sends what its checkout has, often the number itself, and
//!   a refusal would push it to hash the number unkeyed, which a guess confirms.
//! - `address`: always fingerprinted after normalisation (words joined by one space, lower
//!   case), so the same address written twice is one address to the velocity features.
//! - `customer`: the lender's customer reference, shown to analysts and acted on; one that
//!   reads as a phone number is refused (`risk_customer_is_phone_number`) rather than stored,
//!   since a fingerprint in its place would leave the lender unable to act on a case.
//! - A value already in fingerprint form (64 lower-case hex digits, as copied from an evidence
//!   package or a list) is kept, so analysts can block what they see.
//!
//! Without personal-data keys an event carrying a card or an address is refused
//! (`privacy_keys_not_configured`): storing it as sent is what this module exists to prevent.
//!
//! Events and list entries stored before this edge existed keep their cards and addresses as
//! sent until [`backfill`] (`tally privacy fingerprint-events`) rewrites them to the same
//! fingerprints, so the velocity features and lists keep matching them.

use jiff::Timestamp;
use tally_privacy::{identity, Privacy};
use tally_risk::{EntityField, Event};
use tally_store::fingerprint_backfill::ListValueRow;
use tally_store::{Database, StoreError};

/// Why an event or list entry was refused before it reached the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    #[error("risk events with a card or an address need personal-data keys ([privacy] blind_index_key), and none are configured: they are never stored in clear")]
    PrivacyKeysNotConfigured,
    #[error("customer must be the lender's customer reference, not a phone number: personal data is never stored in clear in risk events")]
    CustomerIsPhoneNumber,
    #[error("address must not be blank")]
    BlankAddress,
}

impl FingerprintError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            FingerprintError::PrivacyKeysNotConfigured => "privacy_keys_not_configured",
            FingerprintError::CustomerIsPhoneNumber => "risk_customer_is_phone_number",
            FingerprintError::BlankAddress => "risk_invalid_event",
        }
    }
}

fn keys(privacy: Option<&Privacy>) -> Result<&Privacy, FingerprintError> {
    privacy.ok_or(FingerprintError::PrivacyKeysNotConfigured)
}

/// Whether a customer reference reads as a phone number: digits with the separators phones
/// are written with, and normalisable as one. A Tally customer id (a UUID) never is.
fn is_phone_number(customer: &str) -> bool {
    customer
        .chars()
        .all(|character| character.is_ascii_digit() || " +-.()".contains(character))
        && identity::normalise_phone(customer).is_ok()
}

/// `event` with its card and address replaced by their keyed fingerprints.
pub fn fingerprint_event(
    privacy: Option<&Privacy>,
    event: &mut Event,
) -> Result<(), FingerprintError> {
    if is_phone_number(&event.customer) {
        return Err(FingerprintError::CustomerIsPhoneNumber);
    }
    if let Some(card) = &event.card {
        event.card = Some(keys(privacy)?.card_fingerprint(card));
    }
    if let Some(address) = &event.address {
        event.address = Some(
            keys(privacy)?
                .address_fingerprint(address)
                .ok_or(FingerprintError::BlankAddress)?,
        );
    }
    Ok(())
}

/// A list entry's value as the engine matches it: the fingerprint for a card or an address
/// (what events carry), the value itself for the other fields.
pub fn fingerprint_list_value(
    privacy: Option<&Privacy>,
    field: EntityField,
    value: &str,
) -> Result<String, FingerprintError> {
    match field {
        EntityField::Card => Ok(keys(privacy)?.card_fingerprint(value)),
        EntityField::Address => keys(privacy)?
            .address_fingerprint(value)
            .ok_or(FingerprintError::BlankAddress),
        EntityField::Customer if is_phone_number(value) => {
            Err(FingerprintError::CustomerIsPhoneNumber)
        }
        _ => Ok(value.to_string()),
    }
}

/// Attempts at one row that changes between reading and writing it.
const ATTEMPTS_MAX: usize = 3;

/// Who the walk marks as having removed a list entry made a duplicate by fingerprinting.
pub const BACKFILL_ACTOR: &str = "tally privacy fingerprint-events";

/// What a fingerprint walk did (also its progress, reported after each page).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackfillReport {
    pub list_entries: u64,
    pub list_entries_rewritten: u64,
    /// Live entries that became the fingerprint of another live entry, marked removed.
    pub list_entries_merged: u64,
    pub events: u64,
    pub events_rewritten: u64,
    /// Events whose customer reads as a phone number: left as they are (the lender acts on
    /// its customer reference), counted so that they can be looked at.
    pub events_with_phone_customer: u64,
    /// The last event walked: a walk given it as `after` goes on from there.
    pub last_sequence: i64,
}

/// Why a walk stopped. Rows before the one named are done; running again resumes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("risk event {sequence} cannot be read: {message}")]
    UnreadableEvent { sequence: i64, message: String },
    #[error("list entry {0} has an unknown field")]
    UnknownListField(String),
    #[error("{0} changed on every one of {ATTEMPTS_MAX} attempts to rewrite it")]
    KeptChanging(String),
}

impl BackfillError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            BackfillError::Store(_) => "storage_error",
            BackfillError::UnreadableEvent { .. } => "risk_event_unreadable",
            BackfillError::UnknownListField(_) => "risk_list_field_unknown",
            BackfillError::KeptChanging(_) => "row_kept_changing",
        }
    }
}

/// `body` with its card and address fingerprinted, or `None` when nothing is left to change
/// (already fingerprinted, or neither is carried). A blank address carries nothing personal
/// and is kept.
fn fingerprinted_body(
    privacy: &Privacy,
    sequence: i64,
    body: &str,
) -> Result<(Option<String>, bool), BackfillError> {
    let mut event = Event::from_json(body).map_err(|error| BackfillError::UnreadableEvent {
        sequence,
        message: error.to_string(),
    })?;
    let phone_customer = is_phone_number(&event.customer);
    let card = event
        .card
        .as_deref()
        .map(|card| privacy.card_fingerprint(card));
    let address = event.address.as_deref().map(|address| {
        privacy
            .address_fingerprint(address)
            .unwrap_or(address.to_string())
    });
    if card == event.card && address == event.address {
        return Ok((None, phone_customer));
    }
    event.card = card;
    event.address = address;
    Ok((Some(event.to_json()), phone_customer))
}

/// Rewrites every card and address list entry, then the events after sequence `after`
/// (`0` from the first), `page` at a time, at most `pages` pages of events (`None`: to the
/// end), to the fingerprints the edge gives them now. Each row is written only if it still
/// holds what was read, so the walk is safe beside a running service and another walk, and
/// what is done is skipped when it runs again. `progress` is told after each page.
///
/// A running risk service keeps what it loaded at start in memory; restarting it after the
/// walk makes its velocity features count old events under their fingerprints too.
pub async fn backfill(
    database: &Database,
    privacy: &Privacy,
    after: i64,
    page: i64,
    pages: Option<u64>,
    now: Timestamp,
    mut progress: impl FnMut(&BackfillReport),
) -> Result<BackfillReport, BackfillError> {
    let page = page.max(1);
    let mut report = BackfillReport {
        last_sequence: after,
        ..BackfillReport::default()
    };
    let mut after_entry = String::new();
    loop {
        let entries = database
            .card_and_address_list_entries_after(&after_entry, page)
            .await?;
        let Some(last) = entries.last() else {
            break;
        };
        after_entry = last.id.clone();
        for entry in entries {
            report.list_entries += 1;
            backfill_list_entry(database, privacy, entry, now, &mut report).await?;
        }
        progress(&report);
    }
    let mut walked_pages = 0;
    while pages.is_none_or(|pages| walked_pages < pages) {
        let events = database
            .risk_event_bodies_after(report.last_sequence, page)
            .await?;
        if events.is_empty() {
            break;
        }
        walked_pages += 1;
        for (sequence, body) in events {
            report.events += 1;
            report.last_sequence = sequence;
            let mut body = body;
            let mut attempts = 0;
            loop {
                let (new, phone_customer) = fingerprinted_body(privacy, sequence, &body)?;
                let Some(new) = new else {
                    report.events_with_phone_customer += u64::from(phone_customer);
                    break;
                };
                if database
                    .rewrite_risk_event_body(sequence, &body, &new)
                    .await?
                {
                    report.events_rewritten += 1;
                    report.events_with_phone_customer += u64::from(phone_customer);
                    break;
                }
                attempts += 1;
                if attempts == ATTEMPTS_MAX {
                    return Err(BackfillError::KeptChanging(format!(
                        "risk event {sequence}"
                    )));
                }
                // Rewritten meanwhile (another walk): read it again.
                match database
                    .risk_event_bodies_after(sequence - 1, 1)
                    .await?
                    .pop()
                {
                    Some((found, again)) if found == sequence => body = again,
                    _ => break,
                }
            }
        }
        progress(&report);
    }
    Ok(report)
}

async fn backfill_list_entry(
    database: &Database,
    privacy: &Privacy,
    mut entry: ListValueRow,
    now: Timestamp,
    report: &mut BackfillReport,
) -> Result<(), BackfillError> {
    let field = EntityField::parse(&entry.field)
        .ok_or_else(|| BackfillError::UnknownListField(entry.id.clone()))?;
    for _ in 0..ATTEMPTS_MAX {
        let new = match field {
            EntityField::Card => privacy.card_fingerprint(&entry.value),
            // A blank address carries nothing personal.
            _ => match privacy.address_fingerprint(&entry.value) {
                Some(fingerprint) => fingerprint,
                None => return Ok(()),
            },
        };
        if new == entry.value {
            return Ok(());
        }
        match database
            .rewrite_list_entry_value(&entry, &new, now.as_microsecond(), BACKFILL_ACTOR)
            .await?
        {
            Some(merged) => {
                report.list_entries_rewritten += 1;
                report.list_entries_merged += u64::from(merged);
                return Ok(());
            }
            // Rewritten meanwhile (another walk): read it again.
            None => match database.card_or_address_list_entry(&entry.id).await? {
                Some(again) => entry = again,
                None => return Ok(()),
            },
        }
    }
    Err(BackfillError::KeptChanging(format!(
        "list entry {}",
        entry.id
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::merchants::testing::test_privacy as privacy;
    use tally_risk::EventKind;

    fn event(customer: &str) -> Event {
        let mut event = Event::new(
            "e1",
            EventKind::Login,
            "2026-06-01T00:00:00Z".parse().unwrap(),
            customer,
        );
        event.card = Some("4111 1111 1111 1111".into());
        event.address = Some(" 88 Jianguo Road ".into());
        event
    }

    #[test]
    fn cards_and_addresses_leave_as_the_fingerprints_lists_match() {
        let privacy = privacy();
        let mut sent = event("lender-customer-1");
        fingerprint_event(Some(&privacy), &mut sent).unwrap();
        let card = sent.card.clone().unwrap();
        let address = sent.address.clone().unwrap();
        assert!(!card.contains("4111") && !address.contains("jianguo"));
        assert_eq!(
            fingerprint_list_value(Some(&privacy), EntityField::Card, "4111-1111-1111-1111"),
            Ok(card.clone())
        );
        assert_eq!(
            fingerprint_list_value(Some(&privacy), EntityField::Address, "88 JIANGUO ROAD"),
            Ok(address)
        );
        // A fingerprint copied from an evidence package is kept as it is.
        assert_eq!(
            fingerprint_list_value(Some(&privacy), EntityField::Card, &card),
            Ok(card)
        );
        assert_eq!(
            fingerprint_list_value(Some(&privacy), EntityField::Device, "d-1"),
            Ok("d-1".into())
        );
    }

    #[test]
    fn refusals_have_their_codes() {
        let mut sent = event("lender-customer-1");
        let error = fingerprint_event(None, &mut sent).unwrap_err();
        assert_eq!(error.code(), "privacy_keys_not_configured");
        assert_eq!(sent.card.as_deref(), Some("4111 1111 1111 1111"));
        let mut phone = event("+86 138 0013 8000");
        let error = fingerprint_event(Some(&privacy()), &mut phone).unwrap_err();
        assert_eq!(error.code(), "risk_customer_is_phone_number");
        let mut blank = event("c");
        blank.address = Some("  ".into());
        assert_eq!(
            fingerprint_event(Some(&privacy()), &mut blank)
                .unwrap_err()
                .code(),
            "risk_invalid_event"
        );
        // Without a card or an address, no keys are needed.
        let mut plain = event("019de0e2-0000-7000-8000-000000000000");
        plain.card = None;
        plain.address = None;
        assert!(fingerprint_event(None, &mut plain).is_ok());
    }
}
