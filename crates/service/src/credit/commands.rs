//! The credit operations as typed commands: what each changes on an account, which ledger
//! steps follow, and what it answers. `CreditOperations::execute` applies one exactly once
//! (see `operations`); the API, the CLI and the console all go through it.

use crate::credit::operations::{
    Answer, AnswerKind, Applied, Context, CreditOperations, OperationError, Step,
};
use crate::credit::views::account_view;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};
use tally_core::Amount;
use tally_credit::{Account, LedgerRole, Posting, Product};
use tally_store::credit::CreditAccountId;
use tally_store::risk::RiskStore;

/// Longest an authorisation may stay open, in days.
pub const AUTHORIZATION_DAYS_MAX: i32 = 30;
/// Days an authorisation stays open when the request does not say.
pub const AUTHORIZATION_DAYS_DEFAULT: i32 = 7;

/// Freeze, unfreeze or close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Freeze,
    Unfreeze,
    Close,
}

/// One operation on a credit account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditCommand {
    SetLimit {
        limit: Amount,
    },
    /// A limit that applies until `until` (inclusive).
    SetTemporaryLimit {
        limit: Amount,
        until: Date,
    },
    ChangeStatus(StatusChange),
    /// Reserve a purchase: the credit is held and a ledger hold is made.
    Authorize {
        amount: Amount,
        expires_on: Option<Date>,
        merchant_reference: Option<String>,
    },
    /// Turn an authorisation (all of it, or `amount`) into an installment plan.
    Capture {
        authorization: u32,
        amount: Option<Amount>,
        product: String,
        periods: u32,
    },
    Void {
        authorization: u32,
    },
    Repay {
        amount: Amount,
    },
    Refund {
        plan: u32,
        amount: Amount,
    },
    PayOff {
        plan: u32,
        amount: Amount,
    },
    /// Put the open statement's balance into installments.
    BillInstallment {
        product: String,
        periods: u32,
    },
    /// Write off a purchase made by a thief, on the evidence of risk case `case_id`.
    WriteOffStolen {
        plan: u32,
        case_id: String,
    },
    PayOutCreditBalance {
        amount: Amount,
    },
    /// Payout `payout` of the credit balance failed at the bank or came back: its amount is
    /// credit balance again (made by the payment service from the bank's return file).
    ReturnCreditBalancePayout {
        payout: String,
        amount: Amount,
    },
    /// A stolen-account claim (risk case `case_id`) is made on the account's customer: the
    /// line freezes at once and its authorisations wait.
    OpenStolenAccountClaim {
        case_id: String,
    },
    /// The claim is confirmed: every authorisation is voided and every purchase authorised
    /// from `compromised_at` on is written off, in this one operation.
    ConfirmStolenAccountClaim {
        case_id: String,
        compromised_at: Option<Timestamp>,
    },
    /// The claim is rejected, or the customer's access restored: a freeze the claim made is
    /// lifted.
    EndStolenAccountClaim {
        case_id: String,
    },
}

impl CreditCommand {
    /// The operation's stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            CreditCommand::SetLimit { .. } => "set_limit",
            CreditCommand::SetTemporaryLimit { .. } => "set_temporary_limit",
            CreditCommand::ChangeStatus(StatusChange::Freeze) => "freeze",
            CreditCommand::ChangeStatus(StatusChange::Unfreeze) => "unfreeze",
            CreditCommand::ChangeStatus(StatusChange::Close) => "close",
            CreditCommand::Authorize { .. } => "authorize",
            CreditCommand::Capture { .. } => "capture",
            CreditCommand::Void { .. } => "void",
            CreditCommand::Repay { .. } => "repay",
            CreditCommand::Refund { .. } => "refund",
            CreditCommand::PayOff { .. } => "pay_off",
            CreditCommand::BillInstallment { .. } => "bill_installment",
            CreditCommand::WriteOffStolen { .. } => "write_off_stolen",
            CreditCommand::PayOutCreditBalance { .. } => "pay_out_credit_balance",
            CreditCommand::ReturnCreditBalancePayout { .. } => "return_credit_balance_payout",
            CreditCommand::OpenStolenAccountClaim { .. } => "open_stolen_account_claim",
            CreditCommand::ConfirmStolenAccountClaim { .. } => "confirm_stolen_account_claim",
            CreditCommand::EndStolenAccountClaim { .. } => "end_stolen_account_claim",
        }
    }

    /// Applies the credit rules to `account`: the answer and the ledger steps.
    fn apply(
        &self,
        account: &mut Account,
        context: &Context<'_>,
    ) -> Result<Applied, OperationError> {
        match self {
            CreditCommand::SetLimit { limit } => {
                account.set_limit(*limit)?;
                Ok(done(account, context, json!({}), Vec::new()))
            }
            CreditCommand::SetTemporaryLimit { limit, until } => {
                if *until < context.date {
                    return Err(OperationError::Invalid(format!(
                        "a temporary limit ending {until} would already be over"
                    )));
                }
                account.set_temporary_limit(*limit, *until)?;
                Ok(done(account, context, json!({}), Vec::new()))
            }
            CreditCommand::ChangeStatus(change) => {
                match change {
                    StatusChange::Freeze => account.freeze(),
                    StatusChange::Unfreeze => account.unfreeze(),
                    StatusChange::Close => account.close()?,
                }
                Ok(done(account, context, json!({}), Vec::new()))
            }
            CreditCommand::Authorize {
                amount,
                expires_on,
                merchant_reference,
            } => {
                let latest = context
                    .date
                    .checked_add(AUTHORIZATION_DAYS_MAX.days())
                    .map_err(|error| OperationError::Invalid(error.to_string()))?;
                let expires_on = match expires_on {
                    Some(day) => *day,
                    None => context
                        .date
                        .checked_add(AUTHORIZATION_DAYS_DEFAULT.days())
                        .map_err(|error| OperationError::Invalid(error.to_string()))?,
                };
                if expires_on > latest {
                    return Err(OperationError::Invalid(format!(
                        "an authorisation may stay open {AUTHORIZATION_DAYS_MAX} days at most (until {latest})"
                    )));
                }
                let authorization = account.authorize_purchase_at(
                    context.now,
                    context.date,
                    *amount,
                    expires_on,
                    context.key.to_string(),
                )?;
                let description = match merchant_reference {
                    Some(reference) => format!(
                        "credit purchase authorised, account {}, {reference}",
                        context.id
                    ),
                    None => format!("credit purchase authorised, account {}", context.id),
                };
                let mut applied = done(
                    account,
                    context,
                    json!({ "authorization": account.authorization(authorization)? }),
                    vec![Step::Hold {
                        amount: *amount,
                        expires_on,
                        description,
                    }],
                );
                applied.kind = AnswerKind::Created;
                Ok(applied)
            }
            CreditCommand::Capture {
                authorization,
                amount,
                product: code,
                periods,
            } => {
                let product = product(context, code)?;
                let value = match amount {
                    Some(value) => *value,
                    None => account.authorization(*authorization)?.amount,
                };
                let (captured, plan_id, _posting) = account.capture_authorization(
                    context.date,
                    *authorization,
                    value,
                    product,
                    *periods,
                )?;
                let plan = account
                    .plans
                    .iter()
                    .find(|plan| plan.id == plan_id)
                    .ok_or(OperationError::Invalid("the new plan is missing".into()))?;
                let discount = plan.schedule.merchant_discount;
                // The hold moves the principal from pending to posted; the merchant discount
                // is a second entry (together: the capture posting of the credit rules).
                let mut steps = vec![Step::CaptureHold {
                    reference: captured.reference.clone(),
                    amount: value,
                    otherwise: Posting::new(format!("purchase on credit, plan {plan_id}"))
                        .debit(LedgerRole::CustomerReceivable, value)
                        .credit(LedgerRole::MerchantPayable, value),
                }];
                if discount.is_positive() {
                    steps.push(Step::Post(
                        Posting::new(format!("merchant discount of plan {plan_id}"))
                            .debit(LedgerRole::MerchantPayable, discount)
                            .credit(LedgerRole::MerchantDiscountIncome, discount),
                    ));
                }
                Ok(done(account, context, json!({ "plan_id": plan_id }), steps))
            }
            CreditCommand::Void { authorization } => {
                let voided = account.void_authorization(*authorization)?;
                Ok(done(
                    account,
                    context,
                    json!({}),
                    vec![Step::ReleaseHold {
                        reference: voided.reference,
                    }],
                ))
            }
            CreditCommand::Repay { amount } => {
                let repayment = account.repay(context.date, *amount, context.policy)?;
                Ok(done(
                    account,
                    context,
                    json!({ "applied": repayment.applied, "to_credit_balance": repayment.to_credit_balance }),
                    vec![Step::Post(repayment.posting)],
                ))
            }
            CreditCommand::Refund { plan, amount } => {
                let posting = account.refund(*plan, *amount)?;
                Ok(done(account, context, json!({}), vec![Step::Post(posting)]))
            }
            CreditCommand::PayOff { plan, amount } => {
                let posting = account.early_payoff(context.date, *plan, *amount)?;
                let steps = if posting.is_empty() {
                    Vec::new()
                } else {
                    vec![Step::Post(posting)]
                };
                Ok(done(account, context, json!({}), steps))
            }
            CreditCommand::BillInstallment {
                product: code,
                periods,
            } => {
                let product = product(context, code)?;
                let plan_id =
                    account.bill_installment(context.date, product, *periods, context.policy)?;
                Ok(done(
                    account,
                    context,
                    json!({ "plan_id": plan_id }),
                    Vec::new(),
                ))
            }
            CreditCommand::WriteOffStolen { plan, .. } => {
                let posting = account.write_off_stolen(context.date, *plan)?;
                Ok(done(account, context, json!({}), vec![Step::Post(posting)]))
            }
            CreditCommand::PayOutCreditBalance { amount } => {
                let posting = account.pay_out_credit_balance(*amount)?;
                Ok(done(
                    account,
                    context,
                    json!({ "paid_out": amount }),
                    vec![Step::Post(posting)],
                ))
            }
            CreditCommand::ReturnCreditBalancePayout { payout, amount } => {
                let posting = account.return_credit_balance_payout(*amount)?;
                Ok(done(
                    account,
                    context,
                    json!({ "payout": payout, "returned": amount }),
                    vec![Step::Post(posting)],
                ))
            }
            CreditCommand::OpenStolenAccountClaim { case_id } => {
                account.open_stolen_account_claim_for(case_id);
                Ok(done(account, context, json!({}), Vec::new()))
            }
            CreditCommand::ConfirmStolenAccountClaim {
                case_id,
                compromised_at,
            } => {
                let confirmed =
                    account.confirm_stolen_account_claim(context.date, case_id, *compromised_at)?;
                let mut steps: Vec<Step> = confirmed
                    .voided
                    .into_iter()
                    .map(|voided| Step::ReleaseHold {
                        reference: voided.reference,
                    })
                    .collect();
                steps.extend(confirmed.postings.into_iter().map(Step::Post));
                Ok(done(
                    account,
                    context,
                    json!({ "written_off": confirmed.written_off }),
                    steps,
                ))
            }
            CreditCommand::EndStolenAccountClaim { case_id } => {
                account.end_stolen_account_claim(case_id)?;
                Ok(done(account, context, json!({}), Vec::new()))
            }
        }
    }
}

/// The answer of an operation that changed an account: the account, and `extra` fields.
fn done(account: &Account, context: &Context<'_>, extra: Value, steps: Vec<Step>) -> Applied {
    let mut body =
        json!({ "account": account_view(context.id, context.customer_id, account, context.date) });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    Applied {
        kind: AnswerKind::Done,
        body,
        steps,
    }
}

fn product<'a>(context: &Context<'a>, code: &str) -> Result<&'a Product, OperationError> {
    context
        .catalog
        .product(code)
        .ok_or_else(|| OperationError::ProductNotFound(code.into()))
}

impl CreditOperations {
    /// Applies `command` to account `id` under idempotency key `key`, exactly once: a retry
    /// with the same key and request (`request_hash`) gets the first answer.
    ///
    /// Before the credit rules run, an authorisation is refused for a customer on the risk
    /// block list (a confirmed stolen account buys nothing more), and a stolen-account
    /// write-off needs an approved `stolen_account` case of the account's customer. A retry
    /// of an operation applied before answers as it did, whatever those checks say now.
    pub async fn execute(
        &self,
        key: &str,
        id: CreditAccountId,
        command: &CreditCommand,
        request_hash: &str,
        date: Date,
        now: Timestamp,
    ) -> Result<Answer, OperationError> {
        match command {
            CreditCommand::Authorize { .. } => {
                if let Some(answer) = self.replayed(key, request_hash).await? {
                    return Ok(answer);
                }
                if let Some(customer) = self.customer_of(id).await? {
                    if RiskStore::new(self.database().clone())
                        .customer_blocked(&customer, now.as_microsecond())
                        .await?
                    {
                        return Err(OperationError::CustomerBlocked(customer));
                    }
                }
            }
            CreditCommand::WriteOffStolen { case_id, .. } => {
                self.check_stolen_account_case(id, case_id).await?;
            }
            _ => {}
        }
        self.operate(
            key,
            command.kind(),
            id,
            request_hash,
            date,
            now,
            |account, context| command.apply(account, context),
        )
        .await
    }

    /// Refuses a stolen-account write-off unless `case_id` is an approved `stolen_account`
    /// case of the account's customer.
    async fn check_stolen_account_case(
        &self,
        id: CreditAccountId,
        case_id: &str,
    ) -> Result<(), OperationError> {
        let customer = self.customer_of(id).await?;
        let case = RiskStore::new(self.database().clone())
            .case(case_id)
            .await?
            .ok_or_else(|| OperationError::CaseNotFound(case_id.to_string()))?;
        if case.kind != "stolen_account" || case.status != "approved" {
            return Err(OperationError::StolenAccountNotConfirmed {
                case_id: case.id,
                kind: case.kind,
                status: case.status,
            });
        }
        if customer.as_deref() != Some(case.customer.as_str()) {
            return Err(OperationError::StolenAccountOtherCustomer(case.id));
        }
        Ok(())
    }
}
