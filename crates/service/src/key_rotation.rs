//! Re-sealing customers' personal data under the active encryption key (`tally privacy
//! reseal`), so that an old key can be retired.
//!
//! A stored value names the key that sealed it, and the service opens a value with whichever
//! configured key that is; so rotating is: add the new key, make it active (new values are
//! sealed under it), run this, then remove the old key from the configuration. Each
//! customer's four fields are opened and sealed again in memory and written back only if the
//! row still holds what was read (compare and set), so the walk is safe beside a running
//! service and another walk, and running it twice changes nothing the second time. A value
//! that does not open stops the walk with the customer and the field named: it is never
//! re-sealed as if it were genuine. The blind indexes are untouched (their key is another).

use crate::customers::sealed_field;
use std::collections::BTreeMap;
use tally_privacy::{key_id_of, Privacy, PrivacyError};
use tally_store::customers::StoredCustomer;
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
            for value in [
                &stored.name,
                &stored.phone,
                &stored.national_id,
                &stored.date_of_birth,
            ] {
                let key = key_id_of(value).unwrap_or("(malformed)").to_owned();
                *report.values_by_key_before.entry(key).or_default() += 1;
            }
            let mut current = stored;
            let mut attempts = 0;
            while let Some((new, values)) = resealed(privacy, &current)? {
                if database.reseal_customer(&current, &new).await? {
                    report.customers_resealed += 1;
                    report.values_resealed += values;
                    break;
                }
                attempts += 1;
                if attempts == ATTEMPTS_MAX {
                    return Err(ResealError::KeptChanging(current.id));
                }
                // Changed meanwhile (another walk re-sealed it): read it again.
                match database.customer(&current.id).await? {
                    Some(again) => current = again,
                    None => break,
                }
            }
        }
    }
    Ok(report)
}
