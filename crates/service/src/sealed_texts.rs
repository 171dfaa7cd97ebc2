//! Free text people type beside an operation, sealed with the personal-data keys where it is
//! stored since it may name people, phones and addresses: a list entry's reason, a
//! collections call's note, the reason given for reading personal data in clear or for an
//! erasure, and a rule set activation's note. Each is opened for the readers of its rows
//! (the API route with its scope, the console, evidence packages), and `tally privacy
//! reseal` seals them again under the active key ([`reseal_texts`]).
//!
//! A text's associated data names its column and the row it belongs to, except a list
//! entry's reason: the engine copies it into the list hits of the decisions it makes, which
//! are stored and answered without the entry's id, so it is sealed for its column only.

use crate::key_rotation::{ResealError, ResealReport};
use tally_privacy::{key_id_of, Privacy, PrivacyError};
use tally_store::sealed_texts::TextColumn;
use tally_store::Database;

/// Attempts at one text whose row changes between reading and writing it.
const ATTEMPTS_MAX: usize = 3;

/// The associated data of `column`'s text of the row `owner`.
pub fn text_context(column: TextColumn, owner: &str) -> String {
    match column {
        TextColumn::ListEntryReason => column.as_str().to_string(),
        _ => format!("{}.{owner}", column.as_str()),
    }
}

/// `text` sealed for `column`'s row `owner`; as written without keys or when empty.
pub fn seal_text(
    privacy: Option<&Privacy>,
    column: TextColumn,
    owner: &str,
    text: &str,
) -> Result<String, PrivacyError> {
    match privacy {
        Some(privacy) if !text.is_empty() => {
            privacy.cipher.encrypt(&text_context(column, owner), text)
        }
        _ => Ok(text.to_string()),
    }
}

/// A stored text opened: sealed text with the keys, as stored otherwise (written before it
/// was sealed, or by Tally itself); a placeholder for text sealed under a key no longer
/// configured, so the rest of the row still reads.
pub fn open_text(
    privacy: Option<&Privacy>,
    column: TextColumn,
    owner: &str,
    stored: &str,
) -> String {
    let Some(key) = key_id_of(stored) else {
        return stored.to_string();
    };
    match privacy {
        Some(privacy) => match privacy.cipher.decrypt(&text_context(column, owner), stored) {
            Ok(text) => text.expose().clone(),
            Err(_) => format!("(sealed under key {key}, which cannot open it)"),
        },
        None => format!("(sealed under key {key}; no personal-data keys configured)"),
    }
}

/// The reasons of a stored decision's list hits (`list_hits[].reason`) opened in place.
pub fn open_list_hits(privacy: Option<&Privacy>, decision: &mut serde_json::Value) {
    let Some(hits) = decision
        .get_mut("list_hits")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for hit in hits {
        if let Some(reason) = hit.get("reason").and_then(serde_json::Value::as_str) {
            let opened = open_text(privacy, TextColumn::ListEntryReason, "", reason);
            hit["reason"] = serde_json::Value::String(opened);
        }
    }
}

/// `stored` (a stored decision's JSON) with its list hits' reasons opened; as stored when it
/// is not JSON.
pub fn opened_decision(privacy: Option<&Privacy>, stored: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(stored) {
        Ok(mut decision) => {
            open_list_hits(privacy, &mut decision);
            decision.to_string()
        }
        Err(_) => stored.to_string(),
    }
}

/// `stored` sealed under the active key, or `None` when it already is (or is empty). Text
/// written in clear before it was sealed is sealed now.
fn resealed(
    privacy: &Privacy,
    column: TextColumn,
    owner: &str,
    stored: &str,
) -> Result<Option<String>, PrivacyError> {
    if stored.is_empty() {
        return Ok(None);
    }
    let context = text_context(column, owner);
    if key_id_of(stored).is_none() {
        return privacy.cipher.encrypt(&context, stored).map(Some);
    }
    privacy.cipher.reseal(&context, stored)
}

/// Walks every sealed free text column, `page` rows at a time, and seals again under the
/// active key what another key sealed (or what is still in clear), each row compare and
/// set, so the walk is safe beside a running service and a second walk changes nothing.
pub async fn reseal_texts(
    database: &Database,
    privacy: &Privacy,
    page: i64,
    report: &mut ResealReport,
) -> Result<(), ResealError> {
    for column in TextColumn::ALL {
        let mut after = String::new();
        loop {
            let texts = database.texts_after(column, &after, page.max(1)).await?;
            let Some(last) = texts.last() else {
                break;
            };
            after = last.id.clone();
            for text in texts {
                *report.texts.entry(column.as_str().to_string()).or_default() += 1;
                let mut stored = text.text;
                let mut attempts = 0;
                loop {
                    let sealed =
                        resealed(privacy, column, &text.owner, &stored).map_err(|error| {
                            ResealError::Unopenable {
                                customer: format!("{} {}", column.as_str(), text.id),
                                field: column.as_str(),
                                error,
                            }
                        })?;
                    let Some(sealed) = sealed else {
                        break;
                    };
                    if database
                        .rewrite_text(column, &text.id, &stored, &sealed)
                        .await?
                    {
                        report.texts_resealed += 1;
                        break;
                    }
                    attempts += 1;
                    if attempts == ATTEMPTS_MAX {
                        return Err(ResealError::KeptChanging(format!(
                            "{} {}",
                            column.as_str(),
                            text.id
                        )));
                    }
                    // Changed meanwhile (another walk sealed it): read it again.
                    match database.text_of(column, &text.id).await? {
                        Some(again) => stored = again,
                        None => break,
                    }
                }
            }
        }
    }
    Ok(())
}
