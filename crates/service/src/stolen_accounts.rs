//! The stolen-account flow end to end, across the risk case and the customer's credit lines.
//!
//! - A claim opens a `stolen_account` case (first in the analysts' queue) and freezes every
//!   credit line of the customer at once; authorisations already made wait.
//! - Confirming it (an analyst approves the case) blocks the customer (the risk service
//!   does that with the move), then, on each line, voids every authorisation and writes off
//!   every purchase authorised from the stated compromise time on, with its fees, interest and
//!   penalties, in one credit operation per line. The written-off plans leave nothing past
//!   due on the customer's record: their dues go with them.
//! - Rejecting it lifts the freeze the claim made.
//! - The victim's access comes back only through an explicit, audited re-verification: the
//!   case's block is removed (kept in the list's history), a line is added to the case's
//!   trail, and the freeze the claim made is lifted.
//!
//! Exactly once: the case's move is the durable intent (stored with the claim); the credit
//! steps that follow it are credit operations under keys derived from the case, the step and
//! the account, so a retry applies none twice. `stolen_account_claims.followed_up` records
//! the step the credit lines have reached; [`StolenAccountClaims::finish_pending`] finishes
//! any a crash interrupted, and `tally serve` runs it at start.

use crate::caller::Caller;
use crate::credit::commands::CreditCommand;
use crate::credit::decision::CreditService;
use crate::credit::operations::{request_hash, OperationError};
use crate::risk::{case_priority, list_entry, micros, RiskRequestError, RiskService};
use jiff::Timestamp;
use serde_json::json;
use tally_store::error::StoreError;
use tally_store::risk::{CaseRow, ClaimRow};

/// Longest description of a claim, in bytes.
pub const CLAIM_TEXT_MAX: usize = 4096;
/// Longest police reference, in bytes.
pub const POLICE_REFERENCE_MAX: usize = 128;
/// How far ahead of the service's clock a compromise time may be (clock skew).
const COMPROMISE_IN_FUTURE_MAX_SECONDS: i64 = 300;

/// A customer's report that their account was stolen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClaim {
    pub customer: String,
    pub description: String,
    /// From when the thief had the account: purchases authorised from then on are written
    /// off when the claim is confirmed. Without it, the confirmation voids the
    /// authorisations and the analyst writes purchases off one by one.
    pub compromised_at: Option<Timestamp>,
    pub police_reference: Option<String>,
}

/// Why a step of the stolen-account flow was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Risk(#[from] RiskRequestError),
    #[error("{0}")]
    Invalid(String),
    #[error("case {0} is not a stolen-account claim")]
    NotAClaim(String),
    #[error(
        "claim {id} is {status}: access is restored only after the claim is confirmed (approved)"
    )]
    NotConfirmed { id: String, status: String },
    #[error("the customer of claim {0} was already re-verified")]
    AlreadyRestored(String),
    /// A credit line could not follow the case; the case stands and the step is retried.
    #[error("credit account {account} could not follow claim {case_id}: {error}")]
    Credit {
        case_id: String,
        account: i64,
        error: OperationError,
    },
}

impl ClaimError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ClaimError::Risk(error) => error.code(),
            ClaimError::Invalid(_) => "invalid_request",
            ClaimError::NotAClaim(_) => "risk_case_not_a_claim",
            ClaimError::NotConfirmed { .. } => "risk_claim_not_confirmed",
            ClaimError::AlreadyRestored(_) => "risk_claim_already_restored",
            ClaimError::Credit { error, .. } => error.code(),
        }
    }
}

impl From<StoreError> for ClaimError {
    fn from(error: StoreError) -> Self {
        ClaimError::Risk(error.into())
    }
}

/// The flow over the risk service and, where this process serves credit, the credit lines.
pub struct StolenAccountClaims<'a> {
    pub risk: &'a RiskService,
    /// `None` in a process without credit: its claims are followed up by one that has it.
    pub credit: Option<&'a CreditService>,
    /// The risk gate whose held operations a decided review completes or refuses; `None`
    /// where nothing is gated.
    pub gate: Option<&'a crate::risk_gate::RiskGate>,
}

/// The step the customer's credit lines are to reach for a claim in its case's state.
fn target_step(claim: &ClaimRow, case: &CaseRow) -> &'static str {
    if claim.restored_at.is_some() {
        return "restored";
    }
    match case.status.as_str() {
        "approved" => "confirmed",
        "rejected" => "ended",
        _ => "frozen",
    }
}

impl StolenAccountClaims<'_> {
    /// Opens the claim's case (first in the queue) with the claim, then freezes the
    /// customer's credit lines. A freeze that fails here is retried by
    /// [`StolenAccountClaims::finish_pending`]; the case stands.
    pub async fn claim(&self, new: NewClaim, caller: &Caller) -> Result<CaseRow, ClaimError> {
        if new.customer.is_empty() || new.customer.len() > 256 {
            return Err(ClaimError::Invalid(
                "customer must be 1 to 256 characters".into(),
            ));
        }
        if new.description.len() > CLAIM_TEXT_MAX {
            return Err(ClaimError::Invalid(format!(
                "description must be at most {CLAIM_TEXT_MAX} bytes"
            )));
        }
        if let Some(reference) = &new.police_reference {
            if reference.trim().is_empty() || reference.len() > POLICE_REFERENCE_MAX {
                return Err(ClaimError::Invalid(format!(
                    "police_reference must be 1 to {POLICE_REFERENCE_MAX} bytes, not blank"
                )));
            }
        }
        let now = self.risk.clock.now();
        if let Some(at) = new.compromised_at {
            if at.as_second() > now.as_second() + COMPROMISE_IN_FUTURE_MAX_SECONDS {
                return Err(ClaimError::Invalid(format!(
                    "compromised_at {at} is after the claim ({now}): purchases not yet made cannot be stolen"
                )));
            }
        }
        let mut case = RiskService::new_case(
            "stolen_account",
            case_priority("stolen_account"),
            &new.customer,
            None,
            String::new(),
            now,
        );
        // The customer's own words may name people, phones and addresses: sealed.
        case.summary = self
            .risk
            .seal_text(&crate::risk::summary_context(&case.id), &new.description)?;
        let opened = match new.compromised_at {
            Some(at) => format!("stolen-account claim; compromised from {at}"),
            None => "stolen-account claim; no compromise time stated".to_string(),
        };
        let log = RiskService::log_line(&case.id, now, &caller.name, "opened", &opened);
        let claim = ClaimRow {
            case_id: case.id.clone(),
            compromised_at: new.compromised_at.map(micros),
            police_reference: new.police_reference.clone(),
            followed_up: "none".into(),
            restored_at: None,
            restored_by: None,
        };
        self.risk.store.insert_claim(&case, &log, &claim).await?;
        self.follow_up_logged(&case.id).await;
        Ok(self.risk.opened_case(case))
    }

    /// Moves a case as [`RiskService::move_case`] does; a stolen-account case's credit lines
    /// then follow (confirmed: voids and write-offs; rejected: the freeze lifted). A
    /// follow-up that fails here is retried by [`StolenAccountClaims::finish_pending`]; the
    /// move stands.
    pub async fn move_case(
        &self,
        id: &str,
        action: &str,
        note: &str,
        caller: &Caller,
    ) -> Result<CaseRow, RiskRequestError> {
        let moved = self.risk.move_case(id, action, note, caller).await?;
        if moved.kind == "stolen_account" {
            self.follow_up_logged(id).await;
        } else if let Some(gate) = self.gate {
            // An operation the review held is completed or refused with the case. A failure
            // here (storage) leaves it held; the case stands.
            let approved = match moved.status.as_str() {
                "approved" => Some(true),
                "rejected" => Some(false),
                _ => None,
            };
            if let Some(approved) = approved {
                if let Err(error) = gate.case_decided(id, approved).await {
                    tracing::error!(%error, case_id = id, "an operation held for review could not follow its case");
                }
            }
        }
        Ok(moved)
    }

    /// The customer of confirmed claim `case_id` has proven who they are: the case's block
    /// is removed (kept in the list's history), the re-verification is added to the case's
    /// trail with `note`, and the freeze the claim made is lifted. Once per claim.
    pub async fn restore_access(
        &self,
        case_id: &str,
        note: &str,
        caller: &Caller,
    ) -> Result<CaseRow, ClaimError> {
        if note.trim().is_empty() {
            return Err(ClaimError::Invalid(
                "a re-verification needs a note saying how the customer proved who they are".into(),
            ));
        }
        let case = self.risk.case(case_id).await?;
        if case.kind != "stolen_account" {
            return Err(ClaimError::NotAClaim(case_id.to_string()));
        }
        if case.status != "approved" {
            return Err(ClaimError::NotConfirmed {
                id: case.id,
                status: case.status,
            });
        }
        if self.risk.store.claim(case_id).await?.is_none() {
            return Err(ClaimError::NotAClaim(case_id.to_string()));
        }
        let now = self.risk.clock.now();
        let log = self
            .risk
            .analyst_line(case_id, now, &caller.name, "access_restored", note)?;
        // The engine's lists change under its lock, after the rows are stored, as every
        // list change does.
        let mut state = self.risk.state.lock().await;
        let Some(removed) = self.risk.store.restore_claim(case_id, &log).await? else {
            return Err(ClaimError::AlreadyRestored(case_id.to_string()));
        };
        for row in &removed {
            let entry = list_entry(row).map_err(RiskRequestError::from)?;
            state
                .engine
                .lists_mut()
                .remove(entry.kind, entry.field, &entry.value);
        }
        drop(state);
        self.follow_up_logged(case_id).await;
        Ok(case)
    }

    /// Brings the credit lines of every claim up to its case (after a crash, or a follow-up
    /// that failed). The number of claims followed up.
    pub async fn finish_pending(&self) -> Result<usize, ClaimError> {
        if self.credit.is_none() {
            return Ok(0);
        }
        let pending = self.risk.store.claims_to_follow_up().await?;
        for claim in &pending {
            self.follow_up(&claim.case_id).await?;
        }
        Ok(pending.len())
    }

    async fn follow_up_logged(&self, case_id: &str) {
        if let Err(error) = self.follow_up(case_id).await {
            tracing::error!(%error, case_id, "a stolen-account claim's credit step failed; it is retried at the next start or move");
        }
    }

    /// Brings the customer's credit lines to the step claim `case_id` calls for now.
    pub async fn follow_up(&self, case_id: &str) -> Result<(), ClaimError> {
        let Some(credit) = self.credit else {
            return Ok(());
        };
        let Some(claim) = self.risk.store.claim(case_id).await? else {
            return Ok(());
        };
        let case = self.risk.case(case_id).await?;
        let step = target_step(&claim, &case);
        if claim.followed_up == step {
            return Ok(());
        }
        let command = match step {
            "frozen" => CreditCommand::OpenStolenAccountClaim {
                case_id: case_id.to_string(),
            },
            "confirmed" => CreditCommand::ConfirmStolenAccountClaim {
                case_id: case_id.to_string(),
                compromised_at: claim.compromised_at.map(crate::risk::timestamp),
            },
            _ => CreditCommand::EndStolenAccountClaim {
                case_id: case_id.to_string(),
            },
        };
        let now = self.risk.clock.now();
        let date = now.to_zoned(credit.time_zone.clone()).date();
        let operations = &credit.operations;
        for account in operations
            .database()
            .credit_accounts_of_customer(&case.customer)
            .await?
        {
            let key = format!("stolen-account-claim:{case_id}:{step}:{account}");
            let hash = request_hash(
                command.kind(),
                account,
                &json!({ "case_id": case_id, "step": step, "compromised_at": claim.compromised_at }),
            );
            match operations
                .execute(&key, account, &command, &hash, date, now)
                .await
            {
                Ok(_) => {}
                // A line opened after the claim was made carries none to end.
                Err(OperationError::Credit(
                    tally_credit::CreditError::StolenAccountClaimNotFound(_),
                )) => {}
                Err(error) => {
                    return Err(ClaimError::Credit {
                        case_id: case_id.to_string(),
                        account,
                        error,
                    })
                }
            }
        }
        self.risk.store.set_claim_followed_up(case_id, step).await?;
        Ok(())
    }
}
