//! Payouts: money leaving Tally for a merchant's bank account, one at a time or in a bank
//! batch file, and the states each one goes through.
//!
//! ```text
//!   created ──► submitted ──► paid ──► returned
//!      │            │ └──────────────► returned
//!      │            └──► failed
//!      └──► failed
//! ```
//!
//! Created moves the amount from its source (the merchant's available balance) to the
//! merchant's payable, in flight; paid moves it on to the bank; failed and returned move it
//! back to the source. A paid payout can still come back: banks return a transfer after
//! confirming it (a closed account found by the receiving bank), so paid is not final.

use crate::merchant::MerchantStatus;
use tally_core::Amount;

/// Where a payout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutState {
    /// The money is in flight (the merchant's payable); not yet with the bank.
    Created,
    /// In a batch file sent to the bank.
    Submitted,
    /// The bank paid it.
    Paid,
    /// The bank did not send it; the money is back where it came from.
    Failed,
    /// The receiving bank sent it back; the money is back where it came from.
    Returned,
}

impl PayoutState {
    pub const ALL: [PayoutState; 5] = [
        PayoutState::Created,
        PayoutState::Submitted,
        PayoutState::Paid,
        PayoutState::Failed,
        PayoutState::Returned,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PayoutState::Created => "created",
            PayoutState::Submitted => "submitted",
            PayoutState::Paid => "paid",
            PayoutState::Failed => "failed",
            PayoutState::Returned => "returned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        PayoutState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Whether a payout in this state may move to `next`.
    pub fn can_become(self, next: PayoutState) -> bool {
        use PayoutState::*;
        matches!(
            (self, next),
            (Created, Submitted)
                | (Created, Failed)
                | (Submitted, Paid)
                | (Submitted, Failed)
                | (Submitted, Returned)
                | (Paid, Returned)
        )
    }

    /// Where the money of a payout in this state is.
    pub fn holder(self) -> MoneyAt {
        match self {
            PayoutState::Created | PayoutState::Submitted => MoneyAt::InFlight,
            PayoutState::Paid => MoneyAt::Bank,
            PayoutState::Failed | PayoutState::Returned => MoneyAt::Source,
        }
    }

    /// Whether nothing can happen to it any more.
    pub fn is_final(self) -> bool {
        matches!(self, PayoutState::Failed | PayoutState::Returned)
    }
}

/// Which account holds a payout's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyAt {
    /// The account it was paid from.
    Source,
    /// The merchant's payable: on its way.
    InFlight,
    /// Gone to the bank (the channel's clearing account).
    Bank,
}

/// The move a state change makes in the ledger: from which holder to which, or none.
pub fn movement(from: PayoutState, to: PayoutState) -> Option<(MoneyAt, MoneyAt)> {
    let (before, after) = (from.holder(), to.holder());
    (before != after).then_some((before, after))
}

/// Why a payout was refused. Each kind has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayoutError {
    #[error("a payout must be a positive amount, got {0}")]
    AmountNotPositive(String),
    #[error("a payout of {requested} is above the available balance of {available}")]
    AboveAvailable {
        requested: String,
        available: String,
    },
    #[error("the payout is in {payout}, the merchant is paid in {merchant}")]
    CurrencyMismatch { payout: String, merchant: String },
    #[error("merchant {merchant} is suspended: its balance is held until it is active again")]
    MerchantSuspended { merchant: String },
    #[error("a {from} payout cannot become {to}")]
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },
}

impl PayoutError {
    pub fn code(&self) -> &'static str {
        match self {
            PayoutError::AmountNotPositive(_) => "payout_amount_not_positive",
            PayoutError::AboveAvailable { .. } => "payout_above_available_balance",
            PayoutError::CurrencyMismatch { .. } => "payout_currency_mismatch",
            PayoutError::MerchantSuspended { .. } => "merchant_suspended",
            PayoutError::InvalidTransition { .. } => "payout_state_conflict",
        }
    }
}

/// Checks a payout of `amount` from a merchant in `status` paid in `currency` whose
/// available balance is `available`. A closed merchant is still paid what it is owed (its
/// last payouts close the account); a suspended one is not, since suspension holds funds
/// while a case is open.
pub fn check_payout(
    merchant: &str,
    status: MerchantStatus,
    currency: tally_core::Currency,
    available: Amount,
    amount: Amount,
) -> Result<(), PayoutError> {
    if amount.currency() != currency {
        return Err(PayoutError::CurrencyMismatch {
            payout: amount.currency().code().to_string(),
            merchant: currency.code().to_string(),
        });
    }
    if !amount.is_positive() {
        return Err(PayoutError::AmountNotPositive(amount.to_string()));
    }
    if status == MerchantStatus::Suspended {
        return Err(PayoutError::MerchantSuspended {
            merchant: merchant.to_string(),
        });
    }
    if amount.minor() > available.minor() {
        return Err(PayoutError::AboveAvailable {
            requested: amount.to_string(),
            available: available.to_string(),
        });
    }
    Ok(())
}

/// Checks a state change.
pub fn transition(from: PayoutState, to: PayoutState) -> Result<(), PayoutError> {
    if from.can_become(to) {
        Ok(())
    } else {
        Err(PayoutError::InvalidTransition {
            from: from.as_str(),
            to: to.as_str(),
        })
    }
}

/// What a scheduled payout after a settlement run pays: the whole available balance when
/// positive; nothing when zero or negative (a negative balance is carried, not paid).
pub fn scheduled_amount(available: Amount) -> Option<Amount> {
    available.is_positive().then_some(available)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tally_core::Currency;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    #[test]
    fn refusals_have_their_codes() {
        let check = |status, available, amount| {
            check_payout("m", status, Currency::CNY, cny(available), amount)
                .map_err(|error| error.code())
        };
        assert_eq!(check(MerchantStatus::Active, 100, cny(100)), Ok(()));
        assert_eq!(check(MerchantStatus::Closed, 100, cny(100)), Ok(()));
        assert_eq!(
            check(MerchantStatus::Active, 100, cny(101)),
            Err("payout_above_available_balance")
        );
        assert_eq!(
            check(MerchantStatus::Active, -5, cny(1)),
            Err("payout_above_available_balance")
        );
        assert_eq!(
            check(MerchantStatus::Suspended, 100, cny(1)),
            Err("merchant_suspended")
        );
        assert_eq!(
            check(MerchantStatus::Active, 100, cny(0)),
            Err("payout_amount_not_positive")
        );
        assert_eq!(
            check(MerchantStatus::Active, 100, Amount::new(1, Currency::USD)),
            Err("payout_currency_mismatch")
        );
        assert_eq!(scheduled_amount(cny(0)), None);
        assert_eq!(scheduled_amount(cny(-3)), None);
        assert_eq!(scheduled_amount(cny(3)), Some(cny(3)));
    }

    #[test]
    fn states_read_back() {
        for state in PayoutState::ALL {
            assert_eq!(PayoutState::parse(state.as_str()), Some(state));
        }
        assert_eq!(PayoutState::parse("pending"), None);
    }

    fn state() -> impl Strategy<Value = PayoutState> {
        proptest::sample::select(PayoutState::ALL.to_vec())
    }

    proptest! {
        /// Along any path of allowed changes from created, the ledger moves of each step
        /// chain: each starts where the previous one left the money, so the money is in
        /// exactly one place, and a final state has it back at its source.
        #[test]
        fn allowed_paths_move_the_money_once(steps in proptest::collection::vec(state(), 0..8)) {
            let mut current = PayoutState::Created;
            let mut at = MoneyAt::InFlight;
            for next in steps {
                if transition(current, next).is_err() {
                    prop_assert!(!current.can_become(next));
                    continue;
                }
                if let Some((from, to)) = movement(current, next) {
                    prop_assert_eq!(from, at);
                    at = to;
                }
                current = next;
                prop_assert_eq!(at, current.holder());
            }
            if current.is_final() {
                prop_assert_eq!(at, MoneyAt::Source);
                prop_assert!(PayoutState::ALL.iter().all(|next| !current.can_become(*next)));
            }
        }
    }
}
