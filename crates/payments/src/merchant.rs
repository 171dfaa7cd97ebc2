//! Merchants: who a payment pays, the states a merchant may be in and the moves between
//! them, and the checks on what onboarding records in clear (category code, time-zone name).
//!
//! ```text
//!   active ⇄ suspended
//!     │          │
//!     └──► closed ◄┘      (closed is final)
//! ```
//!
//! Only an active merchant takes new payments. A suspended one keeps what it was paid
//! (captures and refunds of earlier payments still move its balance, and settlement still
//! runs for it) but no checkout is accepted; a closed one likewise, for good.

use serde::{Deserialize, Serialize};

/// Longest merchant id, in bytes (the payments' `merchant_id`).
pub const MERCHANT_ID_LENGTH_MAX: usize = 64;

/// Why a merchant rule refused something. Each kind has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerchantError {
    /// A field of a merchant or of its fee schedule or settlement terms is wrong; `field`
    /// is its path in the request (`fees.card.rate`).
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("a {from} merchant cannot become {to}")]
    InvalidStatusChange {
        from: &'static str,
        to: &'static str,
    },
}

impl MerchantError {
    pub fn code(&self) -> &'static str {
        match self {
            MerchantError::InvalidField { .. } => "invalid_merchant_field",
            MerchantError::InvalidStatusChange { .. } => "merchant_status_conflict",
        }
    }

    /// The field a refusal names, if it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            MerchantError::InvalidField { field, .. } => Some(field),
            MerchantError::InvalidStatusChange { .. } => None,
        }
    }

    pub(crate) fn field_error(field: impl Into<String>, reason: impl Into<String>) -> Self {
        MerchantError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A merchant's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MerchantStatus {
    Active,
    Suspended,
    Closed,
}

impl MerchantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MerchantStatus::Active => "active",
            MerchantStatus::Suspended => "suspended",
            MerchantStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(MerchantStatus::Active),
            "suspended" => Some(MerchantStatus::Suspended),
            "closed" => Some(MerchantStatus::Closed),
            _ => None,
        }
    }

    /// Whether the merchant may take a new payment.
    pub fn takes_payments(&self) -> bool {
        *self == MerchantStatus::Active
    }

    /// Checks the move to `to`: active and suspended go either way, both may close, and a
    /// closed merchant stays closed (its id is never reused for another business). Moving
    /// to the status it has is refused too, so that a request that changes nothing says so.
    pub fn change_to(self, to: MerchantStatus) -> Result<MerchantStatus, MerchantError> {
        use MerchantStatus::{Active, Closed, Suspended};
        match (self, to) {
            (Active, Suspended) | (Suspended, Active) | (Active | Suspended, Closed) => Ok(to),
            _ => Err(MerchantError::InvalidStatusChange {
                from: self.as_str(),
                to: to.as_str(),
            }),
        }
    }
}

/// Checks a merchant id: 1 to 64 ASCII letters, digits and `-_.`, so that it can name the
/// merchant's ledger accounts (`payments-merchant-{id}-pending-CNY`).
pub fn check_merchant_id(id: &str) -> Result<(), MerchantError> {
    let fits = !id.is_empty()
        && id.len() <= MERCHANT_ID_LENGTH_MAX
        && id
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character));
    if fits {
        Ok(())
    } else {
        Err(MerchantError::field_error(
            "id",
            format!("must be 1 to {MERCHANT_ID_LENGTH_MAX} ASCII letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// Checks a merchant category code: four digits (ISO 18245).
pub fn check_category_code(code: &str) -> Result<(), MerchantError> {
    if code.len() == 4 && code.bytes().all(|byte| byte.is_ascii_digit()) {
        Ok(())
    } else {
        Err(MerchantError::field_error(
            "category_code",
            "must be four digits (ISO 18245 merchant category code)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MerchantStatus::{Active, Closed, Suspended};

    #[test]
    fn status_moves_allowed_and_refused() {
        assert_eq!(Active.change_to(Suspended), Ok(Suspended));
        assert_eq!(Suspended.change_to(Active), Ok(Active));
        assert_eq!(Active.change_to(Closed), Ok(Closed));
        assert_eq!(Suspended.change_to(Closed), Ok(Closed));
        for to in [Active, Suspended, Closed] {
            let refused = Closed.change_to(to).unwrap_err();
            assert_eq!(refused.code(), "merchant_status_conflict");
        }
        assert!(Active.change_to(Active).is_err());
        assert!(Suspended.change_to(Suspended).is_err());
        assert!(Active.takes_payments());
        assert!(!Suspended.takes_payments());
        assert!(!Closed.takes_payments());
    }

    #[test]
    fn status_text_round_trips() {
        for status in [Active, Suspended, Closed] {
            assert_eq!(MerchantStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(MerchantStatus::parse("Active"), None);
    }

    #[test]
    fn ids_and_category_codes() {
        assert!(check_merchant_id("shop-1_a.b").is_ok());
        assert!(check_merchant_id("").is_err());
        assert!(check_merchant_id("shop 1").is_err());
        assert!(check_merchant_id(&"a".repeat(65)).is_err());
        assert_eq!(check_merchant_id("x/y").unwrap_err().field(), Some("id"));
        assert!(check_category_code("5411").is_ok());
        for wrong in ["541", "54111", "54a1", ""] {
            assert_eq!(
                check_category_code(wrong).unwrap_err().field(),
                Some("category_code")
            );
        }
    }
}
