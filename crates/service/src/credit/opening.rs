//! Opening a credit account through the credit decision: the customer's date of birth opened
//! for the age (a read in clear, so on the `pii_reads` audit log first), the risk block list,
//! the decision ([`DecisionModels::decide`](crate::credit::decision::DecisionModels::decide)),
//! and the account opened when it is approved. The decision is stored with the operation
//! under the application's idempotency key, approved or declined: a retry gets the same
//! answer, whatever the models or the block list say by then.

use crate::caller::Caller;
use crate::credit::decision::{age_on, CreditDecision, CreditService};
use crate::credit::operations::{Answer, AnswerKind, OperationError};
use crate::credit::views::AccountView;
use crate::customers::date_of_birth;
use jiff::civil::Date;
use jiff::Timestamp;
use serde_json::Value;
use tally_core::{Amount, CustomerId};
use tally_credit::{Account, Cycle};
use tally_privacy::Privacy;
use tally_store::customers::PiiRead;
use tally_store::risk::RiskStore;
use tally_store::StoreError;
use uuid::Uuid;

/// An application for a credit account, under its idempotency key.
#[derive(Debug, Clone)]
pub struct Application<'a> {
    /// The operation's idempotency key, and the hash of the request a retry must repeat.
    pub key: &'a str,
    pub request_hash: &'a str,
    pub customer_id: CustomerId,
    /// Day of the month statements are cut, and days from statement to due date.
    pub statement_day: i8,
    pub due_days: i32,
    pub monthly_income: Amount,
    pub monthly_debt_payments: Amount,
    /// The scorecard's attributes (a JSON object).
    pub attributes: Value,
}

/// Why an application was neither decided nor replayed; [`OpeningError::code`] is its
/// stable code. A declined application is not an error: it is an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpeningError {
    /// The operation refused it (a reused key, an invalid cycle, storage unavailable, ...).
    #[error(transparent)]
    Operation(#[from] OperationError),
    #[error("monthly income and debt payments must be in one currency")]
    CurrencyMismatch,
    /// The customer's date of birth cannot be opened without personal-data keys.
    #[error("opening an account needs the customer's date of birth, and no personal-data keys are configured")]
    PrivacyKeysNotConfigured,
    #[error("customer {0} does not exist")]
    CustomerNotFound(CustomerId),
    /// The decision models could not decide this application (its attributes, or currencies
    /// the models do not price).
    #[error("{0}")]
    DecisionRefused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broken invariant (a stored date of birth that does not open or parse).
    #[error("{0}")]
    Internal(String),
}

impl OpeningError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            OpeningError::Operation(error) => error.code(),
            OpeningError::CurrencyMismatch => "currency_mismatch",
            OpeningError::PrivacyKeysNotConfigured => "privacy_keys_not_configured",
            OpeningError::CustomerNotFound(_) => "customer_not_found",
            OpeningError::DecisionRefused(_) => "credit_decision_refused",
            OpeningError::Store(_) | OpeningError::Internal(_) => "internal",
        }
    }
}

/// An application decided by the credit decision: the account to open when it is approved.
#[derive(Debug, Clone)]
pub struct DecidedApplication {
    pub customer_id: String,
    /// `None` when the application was declined.
    pub account: Option<Account>,
    pub decision: CreditDecision,
}

impl CreditService {
    /// Decides `application` for `caller` on business date `today`, and opens the account
    /// when it is approved (answered as created) or records the declined application
    /// (answered as done). `answer` gives the body stored with the operation from the new
    /// account and the decision. A known key answers as it did the first time.
    pub async fn open_account(
        &self,
        privacy: Option<&Privacy>,
        caller: &Caller,
        application: &Application<'_>,
        today: Date,
        now: Timestamp,
        answer: impl Fn(Option<AccountView>, &CreditDecision) -> Value,
    ) -> Result<Answer, OpeningError> {
        if let Some(answer) = self
            .operations
            .replayed(application.key, application.request_hash)
            .await?
        {
            return Ok(answer);
        }
        let decided = self
            .decide_application(privacy, caller, application, today, now)
            .await?;
        self.open_decided(application, &decided, today, now, answer)
            .await
    }

    /// The credit decision on `application`, nothing stored but the audited read of the date
    /// of birth: the account to open when it is approved.
    pub async fn decide_application(
        &self,
        privacy: Option<&Privacy>,
        caller: &Caller,
        application: &Application<'_>,
        today: Date,
        now: Timestamp,
    ) -> Result<DecidedApplication, OpeningError> {
        let cycle = Cycle::new(application.statement_day, application.due_days)
            .map_err(OperationError::from)?;
        if application.monthly_income.currency() != application.monthly_debt_payments.currency() {
            return Err(OpeningError::CurrencyMismatch);
        }
        // The age comes from the date of birth sealed with the customer (read in clear for
        // the decision, and audited as such).
        let privacy = privacy.ok_or(OpeningError::PrivacyKeysNotConfigured)?;
        let database = self.operations.database();
        let customer_id = application.customer_id.to_string();
        let stored = database
            .customer(&customer_id)
            .await?
            .ok_or(OpeningError::CustomerNotFound(application.customer_id))?;
        // An erased customer has no date of birth to decide on: no such customer any more.
        if stored.is_erased() {
            return Err(OpeningError::CustomerNotFound(application.customer_id));
        }
        let birth = date_of_birth(privacy, &stored)
            .map_err(|error| OpeningError::Internal(error.to_string()))?;
        // The reason names the operation only, but every read's reason is sealed alike.
        let read_id = Uuid::now_v7().to_string();
        let reason = crate::sealed_texts::seal_text(
            Some(privacy),
            tally_store::sealed_texts::TextColumn::PiiReadReason,
            &read_id,
            &format!("credit decision (operation {})", application.key),
        )
        .map_err(|error| OpeningError::Internal(format!("sealing: {error}")))?;
        database
            .record_pii_reads(&[PiiRead {
                id: read_id,
                at: now,
                api_key_id: caller.key_id.clone(),
                principal: caller.name.clone(),
                customer_id: customer_id.clone(),
                field: "date_of_birth".into(),
                reason,
            }])
            .await?;
        let block_listed = RiskStore::new(database.clone())
            .customer_blocked(&customer_id, now.as_microsecond())
            .await?;
        let decision = self
            .decision
            .decide(
                &application.attributes,
                age_on(birth, today),
                application.monthly_income,
                application.monthly_debt_payments,
                block_listed,
            )
            .map_err(OpeningError::DecisionRefused)?;
        let account = match decision.limit {
            Some(limit) => {
                let mut account = Account::open(limit, cycle).map_err(OperationError::from)?;
                account.pricing_tier = decision.pricing_tier.clone();
                Some(account)
            }
            None => None,
        };
        Ok(DecidedApplication {
            customer_id,
            account,
            decision,
        })
    }

    /// Opens the account of `decided` (or records the declined application) under the
    /// application's idempotency key.
    pub async fn open_decided(
        &self,
        application: &Application<'_>,
        decided: &DecidedApplication,
        today: Date,
        now: Timestamp,
        answer: impl Fn(Option<AccountView>, &CreditDecision) -> Value,
    ) -> Result<Answer, OpeningError> {
        let customer_id = &decided.customer_id;
        let account = &decided.account;
        let decision = &decided.decision;
        let opened = self
            .operations
            .open(
                application.key,
                application.request_hash,
                Some(customer_id),
                account.as_ref(),
                now,
                |id| {
                    let (kind, account) = match (id, account) {
                        (Some(id), Some(account)) => (
                            AnswerKind::Created,
                            Some(AccountView::new(id, Some(customer_id), account, today)),
                        ),
                        _ => (AnswerKind::Done, None),
                    };
                    Answer {
                        kind,
                        body: answer(account, decision),
                    }
                },
            )
            .await?;
        Ok(opened)
    }
}
