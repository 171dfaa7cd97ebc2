//! A stolen-account claim on a credit account: made, the line freezes at once and its
//! authorisations wait; confirmed, every authorisation is voided and every purchase made from
//! the compromise time on is written off, with its fees, interest and penalties, in one step;
//! rejected, or the customer's access restored after re-verification, a freeze the claim
//! made is lifted.
//!
//! The claim remembers whether it froze the line, so that lifting it never unfreezes an
//! account that a person or a delinquency action froze for its own reasons.

use super::{Account, AccountStatus, Authorization};
use crate::error::CreditError;
use crate::posting::Posting;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The claim an account carries while its case is open, and after it is confirmed until the
/// customer's access is restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StolenAccountClaim {
    /// The risk case of the claim.
    pub case_id: String,
    /// Whether the claim froze the line (it was open when the claim was made).
    pub froze_the_line: bool,
    /// Confirmed by an analyst: the write-off is done, and the line stays frozen until the
    /// customer's access is restored.
    pub confirmed: bool,
}

/// What confirming a claim did: the authorisations voided (their ledger holds are to be
/// released) and the plans written off with their postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedClaim {
    pub voided: Vec<Authorization>,
    pub written_off: Vec<u32>,
    pub postings: Vec<Posting>,
}

impl Account {
    /// The claim whose case is still open, if any: its authorisations wait.
    pub fn open_stolen_account_claim(&self) -> Option<&StolenAccountClaim> {
        self.stolen_account_claim
            .as_ref()
            .filter(|claim| !claim.confirmed)
    }

    /// A claim of case `case_id` is made: an open line freezes at once. Made again for the
    /// same case, nothing changes; a claim of another case replaces the earlier one and keeps
    /// its freeze.
    pub fn open_stolen_account_claim_for(&mut self, case_id: &str) {
        if let Some(claim) = &self.stolen_account_claim {
            if claim.case_id == case_id {
                return;
            }
        }
        let froze_earlier = self
            .stolen_account_claim
            .as_ref()
            .is_some_and(|claim| claim.froze_the_line);
        let froze_now = self.status == AccountStatus::Open;
        self.freeze();
        self.stolen_account_claim = Some(StolenAccountClaim {
            case_id: case_id.to_string(),
            froze_the_line: froze_earlier || froze_now,
            confirmed: false,
        });
    }

    /// The claim of case `case_id` is confirmed on `date`: every authorisation is voided,
    /// and every plan purchased at or after `compromised_at` (by its authorisation time) is
    /// written off as a stolen-account write-off. Without a compromise time no plan is
    /// written off here (the analyst writes them off one by one). The line stays frozen.
    /// All or nothing: a write-off that cannot be done leaves the account unchanged.
    /// Confirming a claim already confirmed does nothing more.
    pub fn confirm_stolen_account_claim(
        &mut self,
        date: Date,
        case_id: &str,
        compromised_at: Option<Timestamp>,
    ) -> Result<ConfirmedClaim, CreditError> {
        let nothing = ConfirmedClaim {
            voided: Vec::new(),
            written_off: Vec::new(),
            postings: Vec::new(),
        };
        match &self.stolen_account_claim {
            Some(claim) if claim.case_id == case_id && claim.confirmed => return Ok(nothing),
            Some(claim) if claim.case_id == case_id => {}
            // A line opened after the claim was made, or a claim replaced: confirm all the same.
            _ => self.open_stolen_account_claim_for(case_id),
        }
        let before = self.clone();
        match self.confirm(date, compromised_at) {
            Ok(confirmed) => {
                if let Some(claim) = self.stolen_account_claim.as_mut() {
                    claim.confirmed = true;
                }
                Ok(confirmed)
            }
            Err(error) => {
                *self = before;
                Err(error)
            }
        }
    }

    fn confirm(
        &mut self,
        date: Date,
        compromised_at: Option<Timestamp>,
    ) -> Result<ConfirmedClaim, CreditError> {
        let mut voided = Vec::new();
        let ids: Vec<u32> = self.authorizations.iter().map(|made| made.id).collect();
        for id in ids {
            voided.push(self.void_authorization(id)?);
        }
        let stolen: Vec<u32> = match compromised_at {
            Some(since) => self
                .plans
                .iter()
                .filter(|plan| plan.purchased_at.is_some_and(|at| at >= since))
                .filter(|plan| {
                    matches!(
                        plan.status,
                        super::PlanStatus::Active | super::PlanStatus::Settled
                    )
                })
                .map(|plan| plan.id)
                .collect(),
            None => Vec::new(),
        };
        let mut postings = Vec::with_capacity(stolen.len());
        for plan in &stolen {
            postings.push(self.write_off_stolen(date, *plan)?);
        }
        Ok(ConfirmedClaim {
            voided,
            written_off: stolen,
            postings,
        })
    }

    /// The claim of case `case_id` ends: rejected, or the customer's access restored after
    /// re-verification. A freeze the claim made is lifted (unless a delinquency action froze
    /// the line since); any other freeze stays.
    pub fn end_stolen_account_claim(&mut self, case_id: &str) -> Result<(), CreditError> {
        let claim = match &self.stolen_account_claim {
            Some(claim) if claim.case_id == case_id => claim.clone(),
            _ => return Err(CreditError::StolenAccountClaimNotFound(case_id.to_string())),
        };
        self.stolen_account_claim = None;
        if claim.froze_the_line && !self.frozen_by_delinquency {
            self.unfreeze();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::account::PlanStatus;
    use crate::product::EarlyPayoffRule;
    use jiff::civil::date;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// An account with purchases authorised at 09:00, 11:00 and 12:00 on 10 January and
    /// captured, and one more authorised at 13:00 and not captured.
    fn purchases() -> (Account, [u32; 3], u32) {
        let mut account =
            Account::open(cny("5000.00"), crate::schedule::Cycle::new(20, 9).unwrap()).unwrap();
        let day = date(2026, 1, 10);
        let product = flat(EarlyPayoffRule::PrincipalOnly);
        let mut plans = [0; 3];
        for (index, (time, value)) in [
            ("2026-01-10T09:00:00Z", "100.00"),
            ("2026-01-10T11:00:00Z", "600.00"),
            ("2026-01-10T12:00:00Z", "1200.00"),
        ]
        .into_iter()
        .enumerate()
        {
            let id = account
                .authorize_purchase_at(
                    at(time),
                    day,
                    cny(value),
                    date(2026, 1, 17),
                    format!("a{index}"),
                )
                .unwrap();
            let (_, plan, _) = account
                .capture_authorization(day, id, cny(value), &product, 6)
                .unwrap();
            plans[index] = plan;
        }
        let pending = account
            .authorize_purchase_at(
                at("2026-01-10T13:00:00Z"),
                day,
                cny("300.00"),
                date(2026, 1, 17),
                "a3".into(),
            )
            .unwrap();
        (account, plans, pending)
    }

    #[test]
    fn a_claim_freezes_the_line_and_its_authorisations_wait() {
        let (mut account, _, pending) = purchases();
        account.open_stolen_account_claim_for("case-1");
        assert_eq!(account.status, AccountStatus::Frozen);
        let error = account
            .capture_authorization(
                date(2026, 1, 11),
                pending,
                cny("300.00"),
                &flat(EarlyPayoffRule::PrincipalOnly),
                6,
            )
            .unwrap_err();
        assert_eq!(error.code(), "credit_stolen_account_claim_open");
        let error = account
            .authorize(date(2026, 1, 11), cny("1.00"))
            .unwrap_err();
        assert_eq!(error.code(), "credit_account_frozen");
        // Made again for the same case: unchanged.
        let before = account.clone();
        account.open_stolen_account_claim_for("case-1");
        assert_eq!(account, before);
    }

    #[test]
    fn confirming_writes_off_exactly_the_purchases_from_the_compromise_time_on() {
        let (mut account, plans, pending) = purchases();
        account.open_stolen_account_claim_for("case-1");
        let held_before = account.held;
        assert_eq!(held_before, cny("300.00"));
        let confirmed = account
            .confirm_stolen_account_claim(
                date(2026, 1, 12),
                "case-1",
                Some(at("2026-01-10T10:30:00Z")),
            )
            .unwrap();
        assert_eq!(confirmed.voided.len(), 1);
        assert_eq!(confirmed.voided[0].id, pending);
        assert_eq!(confirmed.written_off, vec![plans[1], plans[2]]);
        assert_eq!(confirmed.postings.len(), 2);
        assert_eq!(account.held, cny("0.00"));
        let status = |id: u32| {
            account
                .plans
                .iter()
                .find(|plan| plan.id == id)
                .unwrap()
                .status
        };
        assert_eq!(status(plans[0]), PlanStatus::Active);
        assert_eq!(status(plans[1]), PlanStatus::WrittenOffFraud);
        assert_eq!(status(plans[2]), PlanStatus::WrittenOffFraud);
        // The line stays frozen until the customer's access is restored.
        assert_eq!(account.status, AccountStatus::Frozen);
        assert!(account.open_stolen_account_claim().is_none());
        // Confirmed again: nothing more.
        let again = account
            .confirm_stolen_account_claim(
                date(2026, 1, 12),
                "case-1",
                Some(at("2026-01-10T10:30:00Z")),
            )
            .unwrap();
        assert!(again.voided.is_empty() && again.written_off.is_empty());
        account.end_stolen_account_claim("case-1").unwrap();
        assert_eq!(account.status, AccountStatus::Open);
        assert_eq!(account.stolen_account_claim, None);
    }

    #[test]
    fn a_rejected_claim_lifts_only_its_own_freeze() {
        let (mut account, _, _) = purchases();
        account.open_stolen_account_claim_for("case-1");
        account.end_stolen_account_claim("case-1").unwrap();
        assert_eq!(account.status, AccountStatus::Open);
        // Frozen by hand first: the claim did not freeze it, so ending it keeps the freeze.
        account.freeze();
        account.open_stolen_account_claim_for("case-2");
        account.end_stolen_account_claim("case-2").unwrap();
        assert_eq!(account.status, AccountStatus::Frozen);
        let error = account.end_stolen_account_claim("case-2").unwrap_err();
        assert_eq!(error.code(), "credit_stolen_account_claim_not_found");
    }

    #[test]
    fn without_a_compromise_time_confirming_voids_and_writes_off_nothing() {
        let (mut account, plans, _) = purchases();
        let confirmed = account
            .confirm_stolen_account_claim(date(2026, 1, 12), "case-1", None)
            .unwrap();
        assert_eq!(confirmed.voided.len(), 1);
        assert!(confirmed.written_off.is_empty());
        assert!(account
            .plans
            .iter()
            .filter(|plan| plans.contains(&plan.id))
            .all(|plan| plan.status == PlanStatus::Active));
        assert_eq!(account.status, AccountStatus::Frozen);
    }
}
