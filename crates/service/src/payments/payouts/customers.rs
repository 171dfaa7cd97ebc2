//! Customers' credit-balance payouts: a credit account's credit balance paid back to its
//! customer, to the bank card bound to them, through the same batches and bank files as
//! merchants' payouts.
//!
//! The credit operation `pay_out_credit_balance` moves the amount from the customer's credit
//! balance to the payable to the customer (`credit-payout-payable-{CUR}`); then a batch of
//! one is written under the same key (`credit-balance:{key}`), its payout already funded
//! (the credit operation was its funding). A retry with the same key replays the credit
//! operation's answer and writes the batch if a crash left it unwritten. The bank's answers
//! move the money as for merchants, with the credit business's accounts in the roles:
//!
//! - paid: payable to the credit business's bank account (`credit-bank-{CUR}`), posted as
//!   the credit service under `credit-payout:{id}:paid`;
//! - failed, or returned before it was paid: the credit operation
//!   `return_credit_balance_payout` (key `credit-payout:{id}:return`) takes the payable back
//!   into the credit balance;
//! - returned after it was paid: the bank account gives the amount back to the payable
//!   (`credit-payout:{id}:back`), then the same credit operation.
//!
//! Every move is under a key of its own, so a return file read twice moves nothing twice,
//! and the payable clears whatever the bank answers.

use super::{
    batch_id, corrupt, payout_id, row_amount, stored_now, PayoutBatchView, PayoutServiceError,
    PayoutView, PAYEE_CUSTOMER,
};
use crate::credit::commands::CreditCommand;
use crate::credit::decision::CreditService;
use crate::credit::ledger_accounts::{credit_ledger_accounts, CREDIT_SERVICE};
use crate::credit::operations::{request_hash as credit_request_hash, Answer};
use crate::credit::sweep::credit_bank_account;
use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use jiff::Timestamp;
use serde_json::json;
use tally_core::{AccountId, Amount, Currency};
use tally_credit::LedgerRole;
use tally_ledger::Command;
use tally_payments::payout::{movement, MoneyAt};
use tally_payments::PayoutState;
use tally_store::credit::CreditAccountId;
use tally_store::payouts::{PayoutBatchRow, PayoutRow};
use tally_store::WriteError;

/// A credit-balance payout's source.
pub const SOURCE_CREDIT_BALANCE: &str = "credit_balance";

/// A credit-balance payout made: the credit operation's answer and the payout.
#[derive(Debug, Clone)]
pub struct CreditBalancePayout {
    pub answer: Answer,
    pub payout: PayoutView,
}

/// The key of a credit-balance payout's batch, from the request's key.
fn batch_key(key: &str) -> String {
    format!("credit-balance:{key}")
}

impl PaymentService {
    fn credit_service(&self) -> Result<&CreditService, PayoutServiceError> {
        self.credit()
            .ok_or(PaymentServiceError::CreditUnavailable.into())
    }

    /// Checks a credit-balance payout of account `account`, moving nothing: the account
    /// exists, has a customer, and the customer has a bank card bound to pay to. Answers the
    /// customer. (The credit rules check the amount when the payout is made.)
    pub async fn check_credit_balance_payout(
        &self,
        account: CreditAccountId,
    ) -> Result<String, PayoutServiceError> {
        let credit = self.credit_service()?;
        let customer = credit
            .operations
            .customer_of(account)
            .await?
            .ok_or_else(|| PayoutServiceError::Invalid {
                code: "payout_no_customer",
                message: format!(
                    "credit account {account} has no Tally customer: there is no one to pay"
                ),
            })?;
        let bound = self
            .database()
            .customer_sealed_profile(&customer)
            .await?
            .and_then(|profile| profile.bank_card);
        if bound.is_none() {
            return Err(PayoutServiceError::Invalid {
                code: "payout_no_bank_card",
                message: format!(
                    "customer {customer} has no bank card bound: bind one before paying the credit balance out"
                ),
            });
        }
        Ok(customer)
    }

    /// Whether a credit-balance payout was made under `key`.
    pub async fn credit_balance_payout_made(&self, key: &str) -> Result<bool, PayoutServiceError> {
        Ok(self
            .database()
            .payout_batch(&batch_id(&batch_key(key)))
            .await?
            .is_some())
    }

    /// Pays `amount` of credit account `account`'s credit balance out to its customer under
    /// `key` (see the module); `request_hash` is the credit request's. Gated by whoever
    /// calls this (`RiskGate::pay_out_credit_balance`).
    pub async fn pay_out_credit_balance(
        &self,
        key: &str,
        account: CreditAccountId,
        amount: Amount,
        request_hash: &str,
        now: Timestamp,
    ) -> Result<CreditBalancePayout, PayoutServiceError> {
        let credit = self.credit_service()?;
        let customer = self.check_credit_balance_payout(account).await?;
        let date = now.to_zoned(credit.time_zone.clone()).date();
        let answer = credit
            .operations
            .execute(
                key,
                account,
                &CreditCommand::PayOutCreditBalance { amount },
                request_hash,
                date,
                now,
            )
            .await?;
        let id = batch_id(&batch_key(key));
        if self.database().payout_batch(&id).await?.is_none() {
            let stored = stored_now(now).as_microsecond();
            let batch = PayoutBatchRow {
                id: id.clone(),
                kind: "manual".into(),
                currency: amount.currency().code().to_string(),
                value_date: now.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
                request_hash: request_hash.to_string(),
                status: "open".into(),
                created_at: stored,
                updated_at: stored,
            };
            let payout = PayoutRow {
                id: payout_id(&id, 1),
                batch_id: id.clone(),
                sequence: 1,
                payee_kind: PAYEE_CUSTOMER.into(),
                merchant_id: None,
                customer_id: Some(customer),
                source: SOURCE_CREDIT_BALANCE.into(),
                source_account: Some(account.to_string()),
                currency: amount.currency().code().to_string(),
                amount_minor: amount.minor(),
                state: PayoutState::Created.as_str().into(),
                // The credit operation above was its funding.
                funding: "posted".into(),
                created_at: stored,
                updated_at: stored,
            };
            self.database()
                .insert_payout_batch(
                    &batch,
                    std::slice::from_ref(&payout),
                    &format!("the credit balance of credit account {account} paid out"),
                )
                .await?;
        }
        let batch: PayoutBatchView = self.payout_batch(&id).await?;
        let payout = batch
            .payouts
            .into_iter()
            .next()
            .ok_or_else(|| corrupt("payout batch", "a batch of one without its payout"))?;
        Ok(CreditBalancePayout { answer, payout })
    }

    /// The ledger moves of a customer's payout going from `from` to `to` (see the module).
    pub(super) async fn move_customer_payout(
        &self,
        payout: &PayoutRow,
        from: PayoutState,
        to: PayoutState,
        cause: &str,
        now: Timestamp,
    ) -> Result<(), PayoutServiceError> {
        let Some((before, after)) = movement(from, to) else {
            return Ok(());
        };
        let amount = row_amount(payout)?;
        let currency = amount.currency();
        let (payable, bank) = self.credit_payout_accounts(currency).await?;
        match (before, after) {
            (MoneyAt::InFlight, MoneyAt::Bank) => {
                self.post_credit_payout_entry(
                    &format!("credit-payout:{}:paid", payout.id),
                    super::entry(payable, bank, amount, &payout.id, cause),
                )
                .await
            }
            (MoneyAt::InFlight, MoneyAt::Source) => self.recredit(payout, amount, now).await,
            (MoneyAt::Bank, MoneyAt::Source) => {
                self.post_credit_payout_entry(
                    &format!("credit-payout:{}:back", payout.id),
                    super::entry(bank, payable, amount, &payout.id, cause),
                )
                .await?;
                self.recredit(payout, amount, now).await
            }
            _ => Err(corrupt(
                "payout",
                format!("no move of a customer's payout from {from:?} to {to:?}"),
            )),
        }
    }

    /// The payable to customers and the credit business's bank account in `currency`.
    async fn credit_payout_accounts(
        &self,
        currency: Currency,
    ) -> Result<(AccountId, AccountId), PayoutServiceError> {
        let ledger_error = |message: String| {
            PayoutServiceError::Payment(PaymentServiceError::LedgerRefused {
                key: "credit-ledger-account".into(),
                message,
            })
        };
        let accounts = credit_ledger_accounts(self.database(), self.writer(), currency)
            .await
            .map_err(|error| ledger_error(error.to_string()))?;
        let bank = credit_bank_account(self.database(), self.writer(), currency)
            .await
            .map_err(ledger_error)?;
        Ok((accounts.account_of(LedgerRole::CustomerPayoutPayable), bank))
    }

    /// Takes a customer's failed or returned payout back into the credit balance it came
    /// from, through the credit operation (once: its key is the payout's).
    async fn recredit(
        &self,
        payout: &PayoutRow,
        amount: Amount,
        now: Timestamp,
    ) -> Result<(), PayoutServiceError> {
        let credit = self.credit_service()?;
        let account: CreditAccountId = payout
            .source_account
            .as_deref()
            .and_then(|account| account.parse().ok())
            .ok_or_else(|| corrupt("payout", "a credit-balance payout without its account"))?;
        let command = CreditCommand::ReturnCreditBalancePayout {
            payout: payout.id.clone(),
            amount,
        };
        let body = json!({ "payout": payout.id, "amount": amount.to_string() });
        let hash = credit_request_hash(command.kind(), account, &body);
        let date = now.to_zoned(credit.time_zone.clone()).date();
        credit
            .operations
            .execute(
                &format!("credit-payout:{}:return", payout.id),
                account,
                &command,
                &hash,
                date,
                now,
            )
            .await?;
        Ok(())
    }

    /// Posts a customer payout's entry as the credit service (its accounts are the credit
    /// business's); the ledger replays a key it has applied.
    async fn post_credit_payout_entry(
        &self,
        key: &str,
        entry: tally_ledger::NewEntry,
    ) -> Result<(), PayoutServiceError> {
        match self
            .writer()
            .submit_as(CREDIT_SERVICE, key.to_string(), Command::PostEntry(entry))
            .await
        {
            Ok(_) => Ok(()),
            Err(WriteError::Ledger(error)) => Err(PaymentServiceError::LedgerRefused {
                key: key.to_string(),
                message: error.to_string(),
            }
            .into()),
            Err(error) => Err(PaymentServiceError::InFlight {
                payment: key.to_string(),
                reason: error.to_string(),
            }
            .into()),
        }
    }
}
