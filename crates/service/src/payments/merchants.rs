//! Merchants as the payment service keeps them: onboarding (legal name, licence number and
//! settlement bank account sealed like customers' personal data, the licence number also
//! blind-indexed so one business is onboarded once), status changes with their history,
//! the fee schedule and settlement terms, and the check every checkout makes (the merchant
//! exists, is active and settles in the payment's currency).
//!
//! Sealed fields carry `merchant.{field}:{id}` as associated data, as customers' carry
//! `customer.{field}:{id}`: a value copied to another field or merchant does not open.
//! Reads show them masked; nothing here opens them in clear for a client.

use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_core::Currency;
use tally_payments::merchant::{check_category_code, check_merchant_id, MerchantError};
use tally_payments::{FeeSchedule, MerchantStatus, SettlementTerms};
use tally_privacy::Privacy;
use tally_store::merchants::{MerchantInsert, MerchantRow};
use tally_store::StoreError;
use utoipa::ToSchema;

/// Blind index domain of licence numbers.
const LICENCE_INDEX: &str = "merchant.licence_number";
/// Longest legal name, licence number or bank account, in characters.
pub const TEXT_LENGTH_MAX: usize = 200;
/// Longest status-change reason, in characters.
pub const REASON_LENGTH_MAX: usize = 500;

/// Associated data of a merchant's sealed field.
pub fn sealed_merchant_field(field: &str, id: &str) -> String {
    format!("merchant.{field}:{id}")
}

/// A merchant to onboard, its fee schedule and terms already parsed.
#[derive(Debug, Clone)]
pub struct NewMerchant {
    pub id: String,
    pub legal_name: String,
    pub licence_number: String,
    pub bank_account: String,
    /// ISO 18245 merchant category code.
    pub category_code: String,
    /// IANA zone name (`Asia/Shanghai`): its days are the merchant's business days.
    pub time_zone: String,
    /// The currency the merchant is paid in; its payments must be in it.
    pub currency: Currency,
    pub fees: FeeSchedule,
    pub settlement: SettlementTerms,
}

/// A status a merchant had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusChangeView {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub reason: String,
    /// `active`, `suspended` or `closed`.
    pub status: String,
}

/// A merchant as shown: sealed fields masked. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MerchantView {
    /// The last four characters.
    pub bank_account: String,
    pub category_code: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// ISO 4217 code of the currency the merchant is paid in.
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    /// `{currency, rounding, fees: {method: {rate, fixed, minimum, maximum}}}`.
    #[schema(value_type = Object)]
    pub fees: FeeSchedule,
    /// Every status it has had, oldest first.
    pub history: Vec<StatusChangeView>,
    pub id: String,
    /// The first character, the rest starred.
    pub legal_name: String,
    /// The last four characters.
    pub licence_number: String,
    /// `{delay_days, holidays, reserve_basis_points, reserve_hold_days}`.
    #[schema(value_type = Object)]
    pub settlement: SettlementTerms,
    /// `active`, `suspended` or `closed`.
    #[schema(value_type = String, example = "active")]
    pub status: MerchantStatus,
    pub time_zone: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A merchant's terms as a payment or a settlement run uses them.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: String,
    pub status: MerchantStatus,
    pub currency: Currency,
    pub time_zone: TimeZone,
    pub fees: FeeSchedule,
    pub settlement: SettlementTerms,
    pub version: i64,
}

fn corrupt(id: &str, what: &str, error: impl std::fmt::Display) -> PaymentServiceError {
    StoreError::Corrupt(format!("merchant {id}: {what}: {error}")).into()
}

/// The zone of an IANA name, refused (naming `field`) when the name is not one.
pub fn parse_time_zone(field: &str, name: &str) -> Result<TimeZone, MerchantError> {
    let plain = name
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || "/_-+".contains(character));
    if name.is_empty()
        || name.len() > 64
        || !plain
        || name.contains("..")
        || name.starts_with(['+', '-', '/'])
    {
        return Err(MerchantError::InvalidField {
            field: field.into(),
            reason: format!("{name:?} is not an IANA time-zone name such as Asia/Shanghai"),
        });
    }
    TimeZone::get(name).map_err(|_| MerchantError::InvalidField {
        field: field.into(),
        reason: format!("{name:?} is not an IANA time-zone name such as Asia/Shanghai"),
    })
}

fn check_text(field: &str, text: &str) -> Result<(), MerchantError> {
    let length = text.chars().count();
    if text.trim().is_empty() || length > TEXT_LENGTH_MAX || text.chars().any(char::is_control) {
        return Err(MerchantError::InvalidField {
            field: field.into(),
            reason: format!(
                "must be 1 to {TEXT_LENGTH_MAX} characters of text without control characters"
            ),
        });
    }
    Ok(())
}

/// The licence number as indexed: spaces and dashes dropped, letters upper case, so
/// that one licence written two ways is still one business.
fn normalised_licence(licence: &str) -> String {
    licence
        .chars()
        .filter(|character| !character.is_whitespace() && *character != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

fn last_four(value: &str) -> String {
    let characters: Vec<char> = value.chars().collect();
    let keep = characters.len().min(4);
    let hidden = characters.len() - keep;
    let mut masked = "*".repeat(hidden);
    masked.extend(&characters[hidden..]);
    masked
}

fn first_one(value: &str) -> String {
    let mut characters = value.chars();
    match characters.next() {
        Some(first) => {
            let mut masked = first.to_string();
            masked.push_str(&"*".repeat(characters.count()));
            masked
        }
        None => String::new(),
    }
}

impl Merchant {
    pub fn from_row(row: &MerchantRow) -> Result<Merchant, PaymentServiceError> {
        let status = MerchantStatus::parse(&row.status)
            .ok_or_else(|| corrupt(&row.id, "status", &row.status))?;
        let currency = Currency::from_code(&row.currency)
            .map_err(|error| corrupt(&row.id, "currency", error))?;
        let time_zone =
            TimeZone::get(&row.time_zone).map_err(|error| corrupt(&row.id, "time zone", error))?;
        let fees: FeeSchedule = serde_json::from_str(&row.fee_schedule)
            .map_err(|error| corrupt(&row.id, "fee schedule", error))?;
        let settlement: SettlementTerms = serde_json::from_str(&row.settlement_terms)
            .map_err(|error| corrupt(&row.id, "settlement terms", error))?;
        Ok(Merchant {
            id: row.id.clone(),
            status,
            currency,
            time_zone,
            fees,
            settlement,
            version: row.version,
        })
    }
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, PaymentServiceError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::Corrupt(format!("{what}: {error}")).into())
}

fn stored_now(now: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

fn timestamp(id: &str, micros: i64) -> Result<Timestamp, PaymentServiceError> {
    Timestamp::from_microsecond(micros).map_err(|error| corrupt(id, "time", error))
}

impl PaymentService {
    /// Onboards a merchant, active. Refused when the id or the licence number (by its blind
    /// index) is onboarded already: onboarding is not retried by key, a client whose answer
    /// was lost reads the merchant back.
    pub async fn onboard_merchant(
        &self,
        privacy: Option<&Privacy>,
        merchant: NewMerchant,
        api_key_id: Option<&str>,
        now: Timestamp,
    ) -> Result<MerchantView, PaymentServiceError> {
        check_merchant_id(&merchant.id)?;
        check_text("legal_name", &merchant.legal_name)?;
        check_text("licence_number", &merchant.licence_number)?;
        check_text("bank_account", &merchant.bank_account)?;
        check_category_code(&merchant.category_code)?;
        parse_time_zone("time_zone", &merchant.time_zone)?;
        if merchant.fees.currency != merchant.currency {
            return Err(MerchantError::InvalidField {
                field: "fees.currency".into(),
                reason: format!(
                    "the schedule is in {}, the merchant is paid in {}",
                    merchant.fees.currency, merchant.currency
                ),
            }
            .into());
        }
        let privacy = privacy.ok_or(PaymentServiceError::PrivacyKeysNotConfigured)?;
        let now = stored_now(now);
        let id = merchant.id.clone();
        let seal = |field: &str, value: &str| {
            privacy
                .cipher
                .encrypt(&sealed_merchant_field(field, &id), value)
                .map_err(|error| corrupt(&id, field, error))
        };
        let licence = normalised_licence(&merchant.licence_number);
        let row = MerchantRow {
            id: id.clone(),
            status: MerchantStatus::Active.as_str().into(),
            currency: merchant.currency.code().into(),
            category_code: merchant.category_code.clone(),
            time_zone: merchant.time_zone.clone(),
            legal_name: seal("legal_name", merchant.legal_name.trim())?,
            licence_number: seal("licence_number", &licence)?,
            licence_number_index: privacy.blind_index.compute(LICENCE_INDEX, &licence),
            bank_account: seal("bank_account", merchant.bank_account.trim())?,
            fee_schedule: encode(&merchant.fees, "fee schedule")?,
            settlement_terms: encode(&merchant.settlement, "settlement terms")?,
            version: 1,
            created_at: now.as_microsecond(),
            updated_at: now.as_microsecond(),
        };
        match self.database().insert_merchant(&row, api_key_id).await? {
            MerchantInsert::Inserted => {}
            MerchantInsert::IdTaken => return Err(PaymentServiceError::MerchantExists(id)),
            MerchantInsert::LicenceTaken => return Err(PaymentServiceError::MerchantLicenceTaken),
        }
        // The merchant's accounts in its currency exist from the start.
        self.accounts()
            .merchant(self.database(), self.writer(), &id, merchant.currency)
            .await?;
        self.merchant_view(privacy, &id).await
    }

    /// A merchant, masked, with its status history.
    pub async fn merchant_view(
        &self,
        privacy: &Privacy,
        id: &str,
    ) -> Result<MerchantView, PaymentServiceError> {
        let row = self
            .database()
            .merchant(id)
            .await?
            .ok_or_else(|| PaymentServiceError::MerchantNotFound(id.to_string()))?;
        let merchant = Merchant::from_row(&row)?;
        let open = |field: &str, value: &str| {
            privacy
                .cipher
                .decrypt(&sealed_merchant_field(field, id), value)
                .map(|secret| secret.expose().clone())
                .map_err(|error| corrupt(id, field, error))
        };
        let history = self
            .database()
            .merchant_status_changes(id)
            .await?
            .into_iter()
            .map(|change| {
                Ok(StatusChangeView {
                    status: change.status,
                    reason: change.reason,
                    at: timestamp(id, change.changed_at)?,
                })
            })
            .collect::<Result<Vec<_>, PaymentServiceError>>()?;
        Ok(MerchantView {
            id: row.id.clone(),
            status: merchant.status,
            currency: merchant.currency,
            category_code: row.category_code.clone(),
            time_zone: row.time_zone.clone(),
            legal_name: first_one(&open("legal_name", &row.legal_name)?),
            licence_number: last_four(&open("licence_number", &row.licence_number)?),
            bank_account: last_four(&open("bank_account", &row.bank_account)?),
            fees: merchant.fees,
            settlement: merchant.settlement,
            history,
            created_at: timestamp(id, row.created_at)?,
            updated_at: timestamp(id, row.updated_at)?,
        })
    }

    /// A merchant's terms.
    pub async fn merchant(&self, id: &str) -> Result<Merchant, PaymentServiceError> {
        let row = self
            .database()
            .merchant(id)
            .await?
            .ok_or_else(|| PaymentServiceError::MerchantNotFound(id.to_string()))?;
        Merchant::from_row(&row)
    }

    /// The merchant a new payment pays: it must exist, be active, and settle in the
    /// payment's currency.
    pub(crate) async fn merchant_for_payment(
        &self,
        id: &str,
        currency: Currency,
    ) -> Result<Merchant, PaymentServiceError> {
        let merchant = match self.merchant(id).await {
            Err(PaymentServiceError::MerchantNotFound(id)) => {
                return Err(PaymentServiceError::MerchantUnknown(id))
            }
            other => other?,
        };
        if !merchant.status.takes_payments() {
            return Err(PaymentServiceError::MerchantNotActive {
                id: id.to_string(),
                status: merchant.status.as_str(),
            });
        }
        if merchant.currency != currency {
            return Err(PaymentServiceError::MerchantCurrencyMismatch {
                id: id.to_string(),
                merchant: merchant.currency.code().to_string(),
                payment: currency.code().to_string(),
            });
        }
        Ok(merchant)
    }

    /// Moves a merchant to `to` (see [`MerchantStatus::change_to`]), with why.
    pub async fn change_merchant_status(
        &self,
        privacy: Option<&Privacy>,
        id: &str,
        to: MerchantStatus,
        reason: &str,
        api_key_id: Option<&str>,
        now: Timestamp,
    ) -> Result<MerchantView, PaymentServiceError> {
        let reason = reason.trim();
        if reason.is_empty()
            || reason.chars().count() > REASON_LENGTH_MAX
            || reason.chars().any(char::is_control)
        {
            return Err(MerchantError::InvalidField {
                field: "reason".into(),
                reason: format!(
                    "must be 1 to {REASON_LENGTH_MAX} characters without control characters"
                ),
            }
            .into());
        }
        let privacy = privacy.ok_or(PaymentServiceError::PrivacyKeysNotConfigured)?;
        let merchant = self.merchant(id).await?;
        let to = merchant.status.change_to(to)?;
        let changed = self
            .database()
            .update_merchant_status(
                id,
                merchant.version,
                to.as_str(),
                reason,
                api_key_id,
                stored_now(now),
            )
            .await?;
        if !changed {
            return Err(PaymentServiceError::Contended(id.to_string()));
        }
        self.merchant_view(privacy, id).await
    }

    /// Replaces a merchant's fee schedule and settlement terms. Payments created before
    /// keep the schedule they were created under; settlement runs use the terms in force
    /// when they run.
    pub async fn set_merchant_terms(
        &self,
        privacy: Option<&Privacy>,
        id: &str,
        fees: FeeSchedule,
        settlement: SettlementTerms,
        now: Timestamp,
    ) -> Result<MerchantView, PaymentServiceError> {
        let privacy = privacy.ok_or(PaymentServiceError::PrivacyKeysNotConfigured)?;
        let merchant = self.merchant(id).await?;
        if fees.currency != merchant.currency {
            return Err(MerchantError::InvalidField {
                field: "currency".into(),
                reason: format!(
                    "the schedule is in {}, the merchant is paid in {}",
                    fees.currency, merchant.currency
                ),
            }
            .into());
        }
        let changed = self
            .database()
            .update_merchant_terms(
                id,
                merchant.version,
                &encode(&fees, "fee schedule")?,
                &encode(&settlement, "settlement terms")?,
                stored_now(now),
            )
            .await?;
        if !changed {
            return Err(PaymentServiceError::Contended(id.to_string()));
        }
        self.merchant_view(privacy, id).await
    }
}

/// Merchants for tests and benchmarks: onboard the merchants a harness's payments name
/// before it creates them.
pub mod testing {
    use super::*;
    use std::collections::BTreeMap;
    use tally_core::Secret;

    /// Personal-data keys for tests: encryption key `a` (32 bytes of 7) and a blind index
    /// key of 32 bytes of 9, the keys of the server tests' `privacy()`.
    pub fn test_privacy() -> Privacy {
        let keys = BTreeMap::from([(
            "a".to_string(),
            Secret::new("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".to_string()),
        )]);
        let blind_index = Secret::new("CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=".to_string());
        match Privacy::new(&keys, "a", &blind_index) {
            Ok(privacy) => privacy,
            Err(error) => unreachable!("the test keys are 32 bytes of base64: {error}"),
        }
    }

    /// A merchant paid in `currency` with no fees, T+1 in UTC, no reserve.
    pub fn test_merchant(id: &str, currency: Currency) -> NewMerchant {
        NewMerchant {
            id: id.to_string(),
            legal_name: format!("Test merchant {id}"),
            licence_number: format!("LICENCE-{id}"),
            bank_account: "6222020000000000".to_string(),
            category_code: "5411".to_string(),
            time_zone: "UTC".to_string(),
            currency,
            fees: FeeSchedule::free(currency),
            settlement: SettlementTerms::default(),
        }
    }

    /// Onboards each of `ids` as [`test_merchant`], leaving one onboarded already as it is.
    pub async fn onboard_test_merchants(
        payments: &PaymentService,
        ids: &[&str],
        currency: Currency,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let privacy = test_privacy();
        for id in ids {
            match payments
                .onboard_merchant(Some(&privacy), test_merchant(id, currency), None, now)
                .await
            {
                Ok(_) | Err(PaymentServiceError::MerchantExists(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_licence_normalisation() {
        assert_eq!(last_four("6222021234567890"), "************7890");
        assert_eq!(last_four("12"), "12");
        assert_eq!(first_one("Acme Trading"), "A***********");
        assert_eq!(
            normalised_licence("91310000-mA1fl 4xq3"),
            "91310000MA1FL4XQ3"
        );
    }

    #[test]
    fn time_zones_must_be_iana_names() {
        assert!(parse_time_zone("time_zone", "Asia/Shanghai").is_ok());
        assert!(parse_time_zone("time_zone", "UTC").is_ok());
        for wrong in ["", "Mars/Olympus", "+08:00", "../etc/passwd"] {
            let refused = parse_time_zone("time_zone", wrong).unwrap_err();
            assert_eq!(refused.field(), Some("time_zone"));
        }
    }
}
