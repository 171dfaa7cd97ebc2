//! Re-sealing customers' personal data under the active encryption key (`tally privacy
//! reseal`), so that an old key can be retired.
//!
//! A stored value names the key that sealed it, and the service opens a value with whichever
//! configured key that is; so rotating is: add the new key, make it active (new values are
//! sealed under it), run this, then remove the old key from the configuration. Each
//! customer's four original fields, then its delivery address and bound bank card (set by
//! the profile routes), are opened and sealed again in memory and written back only if the
//! row still holds what was read (compare and set), so the walk is safe beside a running
//! service and another walk, and running it twice changes nothing the second time; then
//! every merchant's sealed webhook signing secret the same way, then the sealed free text
//! (`crate::sealed_texts`: list entries' reasons, collections call notes, the reasons for
//! reads in clear and for erasures, activation notes), which it also seals where it was
//! written in clear before. A value that does not open
//! stops the walk with the customer (or endpoint) and the field named: it is never re-sealed
//! as if it were genuine. The blind indexes are untouched (their key is another).
//!
//! The blind index key rotates the same way (`tally privacy rotate-blind-index`,
//! [`rotate_blind_index`]): the new key becomes `blind_index_key` and the old one
//! `previous_blind_index_key`; new indexes are computed under the new key, lookups try the new
//! index then the old one, and the walk opens each customer's phone and national id and
//! writes their indexes (and the creation's keyed request hash) under the new key, compare
//! and set, a page at a time. Stopped, it is run again: customers done are skipped. Then the
//! previous key is removed. Erased customers have no index to recompute. Risk fingerprints
//! keep their own key (`risk_fingerprint_key`): their values were never stored, so they
//! cannot be recomputed, and a new key would make every card and address new to the engine.

use crate::customers::{request_text, sealed_field, NATIONAL_ID_INDEX, PHONE_INDEX, REQUEST_HASH};
use crate::payments::webhooks::sealed_secret_field;
use std::collections::BTreeMap;
use tally_privacy::{key_id_of, Privacy, PrivacyError};
use tally_store::blind_indexes::Rekeyed;
use tally_store::customers::StoredCustomer;
use tally_store::erasure::ERASED;
use tally_store::{Database, StoreError};

/// Attempts at one customer whose row changes between reading and writing it.
const ATTEMPTS_MAX: usize = 3;

/// What a walk did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResealReport {
    /// The key everything is sealed under now.
    pub active_key: String,
    pub customers: u64,
    pub customers_resealed: u64,
    pub values_resealed: u64,
    /// Values by the key that had sealed them when the walk read them.
    pub values_by_key_before: BTreeMap<String, u64>,
    /// Merchants' webhook signing secrets walked, and re-sealed.
    pub webhook_secrets: u64,
    pub webhook_secrets_resealed: u64,
    /// Sealed free text walked by column (list entries' reasons, call notes, reasons for
    /// reads in clear and erasures, activation notes), and re-sealed (or sealed, if written
    /// in clear before).
    pub texts: BTreeMap<String, u64>,
    pub texts_resealed: u64,
}

/// Why a walk stopped. Customers before the one named are done; running again resumes.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("customer {customer}, field {field}: {error}")]
    Unopenable {
        customer: String,
        field: &'static str,
        error: PrivacyError,
    },
    #[error("customer {0} changed on every one of {ATTEMPTS_MAX} attempts to re-seal it")]
    KeptChanging(String),
}

/// `stored` with every field sealed under the active key, or `None` if all already are.
fn resealed(
    privacy: &Privacy,
    stored: &StoredCustomer,
) -> Result<Option<(StoredCustomer, u64)>, ResealError> {
    let mut new = stored.clone();
    let mut changed = 0;
    // Each sealed field by its name, which is part of the value's associated data.
    for (field, slot) in [
        ("name", &mut new.name),
        ("phone", &mut new.phone),
        ("national_id", &mut new.national_id),
        ("date_of_birth", &mut new.date_of_birth),
    ] {
        let sealed = privacy
            .cipher
            .reseal(&sealed_field(field, &stored.id), slot)
            .map_err(|error| ResealError::Unopenable {
                customer: stored.id.clone(),
                field,
                error,
            })?;
        if let Some(sealed) = sealed {
            *slot = sealed;
            changed += 1;
        }
    }
    Ok((changed > 0).then_some((new, changed)))
}

/// Walks every customer in id order, `page` at a time, and re-seals what another key sealed.
pub async fn reseal_customers(
    database: &Database,
    privacy: &Privacy,
    page: i64,
) -> Result<ResealReport, ResealError> {
    let mut report = ResealReport {
        active_key: privacy.cipher.active_key_id().to_owned(),
        ..ResealReport::default()
    };
    let mut after = String::new();
    loop {
        let customers = database.customers_after(&after, page.max(1)).await?;
        let Some(last) = customers.last() else {
            break;
        };
        after = last.id.clone();
        for stored in customers {
            report.customers += 1;
            // An erased customer has nothing sealed left.
            if stored.is_erased() {
                continue;
            }
            for value in [
                &stored.name,
                &stored.phone,
                &stored.national_id,
                &stored.date_of_birth,
            ] {
                let key = key_id_of(value).unwrap_or("(malformed)").to_owned();
                *report.values_by_key_before.entry(key).or_default() += 1;
            }
            let id = stored.id.clone();
            let profile_values = reseal_profile(database, privacy, &id, &mut report).await?;
            let mut current = stored;
            let mut attempts = 0;
            let mut resealed_now = profile_values > 0;
            while let Some((new, values)) = resealed(privacy, &current)? {
                if database.reseal_customer(&current, &new).await? {
                    resealed_now = true;
                    report.values_resealed += values;
                    break;
                }
                attempts += 1;
                if attempts == ATTEMPTS_MAX {
                    return Err(ResealError::KeptChanging(current.id));
                }
                // Changed meanwhile (another walk re-sealed it): read it again.
                match database.customer(&current.id).await? {
                    // Erased meanwhile: nothing sealed is left.
                    Some(again) if again.is_erased() => break,
                    Some(again) => current = again,
                    None => break,
                }
            }
            report.customers_resealed += u64::from(resealed_now);
        }
    }
    reseal_webhook_secrets(database, privacy, page, &mut report).await?;
    crate::sealed_texts::reseal_texts(database, privacy, page, &mut report).await?;
    Ok(report)
}

/// Re-seals customer `id`'s delivery address and bank card (when set) under the active key,
/// each compare and set; the number of values re-sealed.
async fn reseal_profile(
    database: &Database,
    privacy: &Privacy,
    id: &str,
    report: &mut ResealReport,
) -> Result<u64, ResealError> {
    let mut resealed = 0;
    for attempt in 0..ATTEMPTS_MAX {
        let Some(profile) = database.customer_sealed_profile(id).await? else {
            return Ok(resealed);
        };
        let mut changed_meanwhile = false;
        for (field, value) in [
            ("address", &profile.address),
            ("bank_card", &profile.bank_card),
        ] {
            // Unset, or overwritten by an erasure: nothing sealed.
            let Some(value) = value.as_deref().filter(|value| *value != ERASED) else {
                continue;
            };
            if attempt == 0 {
                let key = key_id_of(value).unwrap_or("(malformed)").to_owned();
                *report.values_by_key_before.entry(key).or_default() += 1;
            }
            let sealed = privacy
                .cipher
                .reseal(&sealed_field(field, id), value)
                .map_err(|error| ResealError::Unopenable {
                    customer: id.to_string(),
                    field,
                    error,
                })?;
            if let Some(sealed) = sealed {
                if database
                    .reseal_customer_profile_field(id, field, value, &sealed)
                    .await?
                {
                    resealed += 1;
                    report.values_resealed += 1;
                } else {
                    changed_meanwhile = true;
                }
            }
        }
        if !changed_meanwhile {
            return Ok(resealed);
        }
    }
    Err(ResealError::KeptChanging(id.to_string()))
}

/// Re-seals every merchant's sealed webhook signing secret under the active key, `page` at a
/// time, each compare and set (a secret still in clear is sealed by `tally serve` at start).
async fn reseal_webhook_secrets(
    database: &Database,
    privacy: &Privacy,
    page: i64,
    report: &mut ResealReport,
) -> Result<(), ResealError> {
    let mut after = String::new();
    loop {
        let endpoints = database
            .sealed_webhook_endpoints_after(&after, page.max(1))
            .await?;
        let Some(last) = endpoints.last() else {
            return Ok(());
        };
        after = last.id.clone();
        for endpoint in endpoints {
            report.webhook_secrets += 1;
            let field = sealed_secret_field(&endpoint.id);
            let mut secret = endpoint.secret;
            let mut attempts = 0;
            loop {
                let sealed = privacy.cipher.reseal(&field, &secret).map_err(|error| {
                    ResealError::Unopenable {
                        customer: format!("webhook endpoint {}", endpoint.id),
                        field: "secret",
                        error,
                    }
                })?;
                let Some(sealed) = sealed else {
                    break;
                };
                if database
                    .reseal_webhook_secret(&endpoint.id, &secret, &sealed)
                    .await?
                {
                    report.webhook_secrets_resealed += 1;
                    break;
                }
                attempts += 1;
                if attempts == ATTEMPTS_MAX {
                    return Err(ResealError::KeptChanging(endpoint.id));
                }
                match database.webhook_endpoint(&endpoint.id).await? {
                    Some(again) => secret = again.secret,
                    None => break,
                }
            }
        }
    }
}

/// What a blind index walk did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RotationReport {
    pub customers: u64,
    /// Customers whose indexes were written under the current key by this walk.
    pub customers_rekeyed: u64,
    /// Customers already under the current key (done by an earlier walk, or created since).
    pub customers_current: u64,
    pub customers_erased: u64,
    /// The last customer walked: a walk given it as `after` goes on from there.
    pub last_customer: Option<String>,
}

/// `stored`'s indexes under the current key, or `None` when they already are.
fn rekeyed(privacy: &Privacy, stored: &StoredCustomer) -> Result<Option<Rekeyed>, ResealError> {
    let open = |field: &'static str, value: &str| {
        privacy
            .cipher
            .decrypt(&sealed_field(field, &stored.id), value)
            .map_err(|error| ResealError::Unopenable {
                customer: stored.id.clone(),
                field,
                error,
            })
    };
    let phone = open("phone", &stored.phone)?;
    let national_id = open("national_id", &stored.national_id)?;
    let new_phone_index = privacy.blind_index.compute(PHONE_INDEX, phone.expose());
    let new_national_id_index = privacy
        .blind_index
        .compute(NATIONAL_ID_INDEX, national_id.expose());
    if new_phone_index == stored.phone_index && new_national_id_index == stored.national_id_index {
        return Ok(None);
    }
    let name = open("name", &stored.name)?;
    let request = request_text(name.expose(), phone.expose(), national_id.expose());
    Ok(Some(Rekeyed {
        customer_id: stored.id.clone(),
        old_phone_index: stored.phone_index.clone(),
        old_national_id_index: stored.national_id_index.clone(),
        new_phone_index,
        new_national_id_index,
        // Only a creation whose values are still the customer's has a hash to move.
        request_hash: privacy
            .blind_index
            .compute_previous(REQUEST_HASH, &request)
            .map(|old| (old, privacy.blind_index.compute(REQUEST_HASH, &request))),
    }))
}

/// Walks the customers after `after` (`""` from the first) in id order, `page` at a time,
/// at most `pages` pages (`None`: to the end), and writes every blind index that is not under
/// the current key yet. Safe beside a running service; run again, it skips what is done.
pub async fn rotate_blind_index(
    database: &Database,
    privacy: &Privacy,
    after: &str,
    page: i64,
    pages: Option<u64>,
) -> Result<RotationReport, ResealError> {
    let mut report = RotationReport::default();
    let mut after = after.to_string();
    let mut walked_pages = 0;
    while pages.is_none_or(|pages| walked_pages < pages) {
        let customers = database.customers_after(&after, page.max(1)).await?;
        let Some(last) = customers.last() else {
            break;
        };
        after = last.id.clone();
        walked_pages += 1;
        for stored in customers {
            report.customers += 1;
            report.last_customer = Some(stored.id.clone());
            if stored.is_erased() {
                report.customers_erased += 1;
                continue;
            }
            let mut current = stored;
            let mut attempts = 0;
            loop {
                let Some(new) = rekeyed(privacy, &current)? else {
                    report.customers_current += 1;
                    break;
                };
                if database.rekey_customer(&new).await? {
                    report.customers_rekeyed += 1;
                    break;
                }
                attempts += 1;
                if attempts == ATTEMPTS_MAX {
                    return Err(ResealError::KeptChanging(current.id));
                }
                // Changed meanwhile (a new phone, another walk): read it again.
                match database.customer(&current.id).await? {
                    Some(again) if again.is_erased() => {
                        report.customers_erased += 1;
                        break;
                    }
                    Some(again) => current = again,
                    None => break,
                }
            }
        }
    }
    Ok(report)
}
