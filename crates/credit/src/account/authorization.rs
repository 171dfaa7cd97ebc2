//! Authorisations: credit reserved for a purchase until it is captured into a plan, voided
//! or expires at the end of its last day. Apart from plans because an authorisation only
//! holds credit (the account's `held`); capture is where it becomes a plan.

use super::{add, Account, AccountStatus, DayOutcome};
use crate::error::CreditError;
use crate::posting::{LedgerRole, Posting};
use crate::product::Product;
use crate::schedule::Schedule;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_core::Amount;

/// Credit reserved for a purchase being authorised, until it is captured, voided or expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub id: u32,
    pub amount: Amount,
    pub authorized_on: Date,
    /// Last day it can be captured; end of day after it releases the credit.
    pub expires_on: Date,
    /// The caller's reference (the store keeps the operation that made its ledger hold).
    pub reference: String,
    /// When the purchase was authorised, where the service said: a stolen-account claim
    /// writes off the purchases made from its compromise time on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_at: Option<Timestamp>,
}

impl Authorization {
    /// Whether it has expired by the end of `date`: its last day has come.
    fn expired_by(&self, date: Date) -> bool {
        self.expires_on <= date
    }

    /// What capturing `value` of it on `date` releases: the rest of the authorised amount.
    /// After its last day it is gone (`credit_authorization_not_found`); more than was
    /// authorised is refused.
    fn released_by_capture(&self, date: Date, value: Amount) -> Result<Amount, CreditError> {
        if date > self.expires_on {
            return Err(CreditError::AuthorizationNotFound(self.id));
        }
        if value.minor() > self.amount.minor() {
            return Err(CreditError::CaptureExceedsAuthorization {
                requested: value.to_string(),
                authorized: self.amount.to_string(),
            });
        }
        Ok(self.amount.checked_sub(value)?)
    }
}

impl Account {
    /// Reserves `value` of available credit for a purchase being authorised.
    pub fn authorize(&mut self, date: Date, value: Amount) -> Result<(), CreditError> {
        self.check_positive(value)?;
        match self.status {
            AccountStatus::Open => {}
            AccountStatus::Frozen => return Err(CreditError::AccountFrozen),
            AccountStatus::ChargedOff | AccountStatus::Closed => {
                return Err(CreditError::AccountClosed)
            }
        }
        let available = self.checked_available_credit(date)?;
        if value.minor() > available.minor() {
            return Err(CreditError::InsufficientCredit {
                requested: value.to_string(),
                available: available.to_string(),
            });
        }
        self.held = add(self.held, value)?;
        Ok(())
    }

    /// Releases an authorisation that will not be captured.
    pub fn void(&mut self, value: Amount) -> Result<(), CreditError> {
        self.check_positive(value)?;
        if value.minor() > self.held.minor() {
            return Err(CreditError::InvalidConfiguration(format!(
                "cannot release {value}: {} is held",
                self.held
            )));
        }
        self.held = self.held.checked_sub(value)?;
        Ok(())
    }

    /// Authorises a purchase of `value`: reserves it (as [`Account::authorize`]) and records
    /// it under a new id until `expires_on`, so it can be captured or voided by id.
    pub fn authorize_purchase(
        &mut self,
        date: Date,
        value: Amount,
        expires_on: Date,
        reference: String,
    ) -> Result<u32, CreditError> {
        if expires_on < date {
            return Err(CreditError::InvalidConfiguration(format!(
                "an authorisation cannot expire ({expires_on}) before it is made ({date})"
            )));
        }
        self.authorize(date, value)?;
        let id = self.next_authorization_id;
        self.next_authorization_id += 1;
        self.authorizations.push(Authorization {
            id,
            amount: value,
            authorized_on: date,
            expires_on,
            reference,
            authorized_at: None,
        });
        Ok(id)
    }

    /// Authorises a purchase as [`Account::authorize_purchase`] does, made at `at`: the
    /// plan it is captured into keeps that time as its purchase time.
    pub fn authorize_purchase_at(
        &mut self,
        at: Timestamp,
        date: Date,
        value: Amount,
        expires_on: Date,
        reference: String,
    ) -> Result<u32, CreditError> {
        let id = self.authorize_purchase(date, value, expires_on, reference)?;
        if let Some(made) = self.authorizations.iter_mut().find(|made| made.id == id) {
            made.authorized_at = Some(at);
        }
        Ok(id)
    }

    pub fn authorization(&self, id: u32) -> Result<&Authorization, CreditError> {
        self.authorizations
            .iter()
            .find(|authorization| authorization.id == id)
            .ok_or(CreditError::AuthorizationNotFound(id))
    }

    /// Captures `value` (at most the authorised amount; the rest is released) of
    /// authorisation `id` into a plan of `product` over `periods`, on or before its last day.
    pub fn capture_authorization(
        &mut self,
        date: Date,
        id: u32,
        value: Amount,
        product: &Product,
        periods: u32,
    ) -> Result<(Authorization, u32, Posting), CreditError> {
        let authorization = self.authorization(id)?.clone();
        if let Some(claim) = self.open_stolen_account_claim() {
            return Err(CreditError::StolenAccountClaimOpen(claim.case_id.clone()));
        }
        self.check_positive(value)?;
        let released = authorization.released_by_capture(date, value)?;
        let before = self.clone();
        if released.is_positive() {
            self.void(released)?;
        }
        match self.capture(date, value, product, periods) {
            Ok((plan_id, posting)) => {
                self.authorizations.retain(|kept| kept.id != id);
                if let Some(plan) = self.plans.iter_mut().find(|plan| plan.id == plan_id) {
                    plan.purchased_at = authorization.authorized_at;
                }
                Ok((authorization, plan_id, posting))
            }
            Err(error) => {
                // A refused capture changes nothing.
                *self = before;
                Err(error)
            }
        }
    }

    /// Voids authorisation `id`: its credit is released.
    pub fn void_authorization(&mut self, id: u32) -> Result<Authorization, CreditError> {
        let authorization = self.authorization(id)?.clone();
        self.void(authorization.amount)?;
        self.authorizations.retain(|kept| kept.id != id);
        Ok(authorization)
    }

    /// Captures an authorised amount into a plan of `product` over `periods`, priced at the
    /// account's pricing tier's rate when the term lists one.
    pub fn capture(
        &mut self,
        date: Date,
        value: Amount,
        product: &Product,
        periods: u32,
    ) -> Result<(u32, Posting), CreditError> {
        self.void(value)?;
        let prepared = self.price_capture(date, value, product, periods);
        let (schedule, purchases, to_merchant) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                // Put the hold back: a refused capture changes nothing.
                self.held = add(self.held, value)?;
                return Err(error);
            }
        };
        let merchant_discount = schedule.merchant_discount;
        let id = self.add_plan(product, schedule, product.fees_refundable);
        let posting = Posting::new(format!("purchase on credit, plan {id}"))
            .debit(LedgerRole::CustomerReceivable, value)
            .credit(LedgerRole::MerchantPayable, to_merchant)
            .credit(LedgerRole::MerchantDiscountIncome, merchant_discount);
        self.activity.purchases = purchases;
        Ok((id, posting))
    }

    /// Everything a capture of `value` computes before it changes the account: the plan's
    /// schedule, the cycle's purchases with it, and what the merchant is owed.
    fn price_capture(
        &self,
        date: Date,
        value: Amount,
        product: &Product,
        periods: u32,
    ) -> Result<(Schedule, Amount, Amount), CreditError> {
        let schedule = Schedule::build_for_tier(
            product,
            self.pricing_tier.as_deref(),
            value,
            periods,
            date,
            self.cycle,
        )?;
        // Everything the account could come to owe with this plan must fit in an amount,
        // so that end of day can always sum it.
        let fits = self
            .checked_total_owed()
            .and_then(|owed| add(owed, schedule.total()?));
        if fits.is_err() {
            return Err(CreditError::AmountTooLarge(format!(
                "with a plan of {value}, what the account could owe does not fit in an amount"
            )));
        }
        let purchases = add(self.activity.purchases, value)?;
        let to_merchant = value.checked_sub(schedule.merchant_discount)?;
        Ok((schedule, purchases, to_merchant))
    }

    /// Releases the credit of authorisations whose last day `date` is (or was), at the end
    /// of it: they are reported in `outcome` and can no longer be captured.
    pub(super) fn expire_authorizations(
        &mut self,
        date: Date,
        outcome: &mut DayOutcome,
    ) -> Result<(), CreditError> {
        if !self.authorizations.iter().any(|held| held.expired_by(date)) {
            return Ok(());
        }
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.authorizations)
            .into_iter()
            .partition(|held| held.expired_by(date));
        self.authorizations = kept;
        for authorization in expired {
            self.held = self.held.checked_sub(authorization.amount)?;
            outcome.expired_authorizations.push(authorization);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::account::{AccountPolicy, Bucket};
    use crate::product::EarlyPayoffRule;
    use crate::schedule::Cycle;
    use jiff::civil::date;
    use rust_decimal::Decimal;
    use tally_core::Currency;

    #[test]
    fn authorisations_capture_in_part_void_and_expire() {
        let mut account = Account::open(cny("1000.00"), Cycle::new(20, 9).unwrap()).unwrap();
        let day = date(2026, 1, 10);
        let first = account
            .authorize_purchase(day, cny("300.00"), date(2026, 1, 12), "a".into())
            .unwrap();
        let second = account
            .authorize_purchase(day, cny("200.00"), date(2026, 1, 11), "b".into())
            .unwrap();
        assert_eq!(account.available_credit(day), cny("500.00"));
        // More than the rest of the limit is refused, and changes nothing.
        let before = account.clone();
        assert!(matches!(
            account.authorize_purchase(day, cny("500.01"), day, "c".into()),
            Err(CreditError::InsufficientCredit { .. })
        ));
        assert_eq!(account, before);
        // Capturing more than authorised is refused; 250 of 300 releases the other 50.
        assert!(matches!(
            account.capture_authorization(
                day,
                first,
                cny("300.01"),
                &flat(EarlyPayoffRule::PrincipalOnly),
                6
            ),
            Err(CreditError::CaptureExceedsAuthorization { .. })
        ));
        let (_, plan, posting) = account
            .capture_authorization(
                day,
                first,
                cny("250.00"),
                &flat(EarlyPayoffRule::PrincipalOnly),
                6,
            )
            .unwrap();
        assert_eq!(posting.imbalance(), 0);
        assert_eq!(account.plans[0].id, plan);
        assert_eq!(account.held, cny("200.00"));
        assert_eq!(account.available_credit(day), cny("550.00"));
        // A captured authorisation is gone.
        assert!(matches!(
            account.void_authorization(first),
            Err(CreditError::AuthorizationNotFound(_))
        ));
        // The second expires at the end of its last day, releasing its credit.
        let mut outcome = DayOutcome::default();
        account
            .end_of_day(date(2026, 1, 10), &AccountPolicy::default(), &mut outcome)
            .unwrap();
        assert!(outcome.expired_authorizations.is_empty());
        account
            .end_of_day(date(2026, 1, 11), &AccountPolicy::default(), &mut outcome)
            .unwrap();
        assert_eq!(outcome.expired_authorizations.len(), 1);
        assert_eq!(outcome.expired_authorizations[0].id, second);
        assert_eq!(account.held, cny("0.00"));
        assert!(account.authorizations.is_empty());
        // Voiding releases; an authorisation cannot outlive its last day.
        let third = account
            .authorize_purchase(
                date(2026, 1, 12),
                cny("100.00"),
                date(2026, 1, 12),
                "d".into(),
            )
            .unwrap();
        assert_eq!(
            account.void_authorization(third).unwrap().amount,
            cny("100.00")
        );
        assert_eq!(account.held, cny("0.00"));
        assert!(account
            .authorize_purchase(
                date(2026, 1, 12),
                cny("1.00"),
                date(2026, 1, 11),
                "e".into()
            )
            .is_err());
    }

    #[test]
    fn plans_are_priced_at_the_accounts_tier_rate_when_the_term_lists_it() {
        let mut product = flat(EarlyPayoffRule::PrincipalOnly);
        product.terms[1].tier_rates = [
            ("A".to_owned(), Decimal::new(4, 3)),
            ("B".to_owned(), Decimal::new(5, 3)),
        ]
        .into();
        // Tier A has its own rate, tier Z is not listed, and an account may have no tier.
        for (tier, fee, pricing_tier) in [
            (Some("A"), "4.00", Some("A")),
            (Some("Z"), "6.00", None),
            (None, "6.00", None),
        ] {
            let mut account = Account::open(cny("5000.00"), Cycle::new(20, 9).unwrap()).unwrap();
            account.pricing_tier = tier.map(str::to_owned);
            account
                .authorize(date(2026, 1, 10), cny("1000.00"))
                .unwrap();
            let (id, _) = account
                .capture(date(2026, 1, 10), cny("1000.00"), &product, 6)
                .unwrap();
            let plan = &account.plans[account.plan_index(id).unwrap()];
            assert!(
                plan.schedule
                    .installments
                    .iter()
                    .all(|installment| installment.fee == cny(fee)),
                "{tier:?}"
            );
            let pricing = plan.schedule.pricing.clone().unwrap();
            assert_eq!(pricing.tier.as_deref(), pricing_tier, "{tier:?}");
            // 1,000.00 is 100,000 minor units: the fee is the recorded rate times that.
            assert_eq!(
                Decimal::from(cny(fee).minor()),
                pricing.rate * Decimal::from(100_000)
            );
        }
    }

    // ----- Review findings: each test failed before its fix. -----

    #[test]
    fn a_purchase_whose_totals_do_not_fit_in_an_amount_is_refused_at_capture() {
        let huge = Amount::new(9_000_000_000_000_000_000, Currency::CNY);
        let mut account = Account::open(
            Amount::new(i64::MAX, Currency::CNY),
            Cycle::new(20, 9).unwrap(),
        )
        .unwrap();
        let day = date(2026, 1, 10);
        account.authorize(day, huge).unwrap();
        let before = account.clone();
        // Six fees of 0.6% on top of the principal pass i64::MAX.
        let error = account
            .capture(day, huge, &flat(EarlyPayoffRule::PrincipalOnly), 6)
            .unwrap_err();
        assert_eq!(error.code(), "credit_amount_too_large");
        assert_eq!(account, before);
        // Without a fee it fits; then a second plan that fits alone but not beside it is
        // refused too.
        let (_, posting) = account
            .capture(day, huge, &flat(EarlyPayoffRule::PrincipalOnly), 1)
            .unwrap();
        assert_eq!(posting.imbalance(), 0);
        account
            .set_limit(Amount::new(i64::MAX, Currency::CNY))
            .unwrap();
        let rest = Amount::new(220_000_000_000_000_000, Currency::CNY);
        account.authorize(day, rest).unwrap();
        let before = account.clone();
        let error = account
            .capture(day, rest, &flat(EarlyPayoffRule::PrincipalOnly), 6)
            .unwrap_err();
        assert_eq!(error.code(), "credit_amount_too_large");
        assert_eq!(account, before);
        // End of day keeps working on what was captured.
        run(
            &mut account,
            &AccountPolicy::default(),
            day,
            date(2026, 2, 5),
        );
        assert_eq!(account.bucket, Bucket::M1);
    }
}
