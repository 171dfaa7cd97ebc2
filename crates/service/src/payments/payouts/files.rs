//! A batch's bank file and the bank's return file (format: `tally_channel::payout_file`).
//!
//! Taking the file is sending it: every funded payout of the batch becomes `submitted`, and
//! the same file comes back every time it is taken (the same rows, in the same order, under
//! the payouts' ids as references, which the bank pays once). Payouts that failed their
//! funding are not in it. The return file is checked whole before anything moves: its
//! batch, every reference one of the batch's payouts that was sent, every amount the
//! payout's, every change one the states allow; then each row moves its payout.

use super::{corrupt, row_amount, row_state, PayoutBatchView, PayoutServiceError, PAYEE_CUSTOMER};
use crate::customers::sealed_field;
use crate::payments::checkout::PaymentService;
use crate::payments::merchants::sealed_merchant_field;
use jiff::Timestamp;
use std::collections::HashMap;
use tally_channel::payout_file::{
    FileEncoding, PayoutFile, PayoutFileRow, ReturnFile, ReturnStatus,
};
use tally_core::Currency;
use tally_payments::payout::transition;
use tally_payments::PayoutState;
use tally_privacy::Privacy;
use tally_store::payouts::PayoutRow;

fn file_error(error: impl std::fmt::Display) -> PayoutServiceError {
    PayoutServiceError::File {
        code: "invalid_payout_file",
        message: error.to_string(),
    }
}

fn mismatch(message: String) -> PayoutServiceError {
    PayoutServiceError::File {
        code: "return_file_mismatch",
        message,
    }
}

/// A payout's payee: its kind and id.
fn payee_of(payout: &PayoutRow) -> Result<(String, String), PayoutServiceError> {
    let id = if payout.payee_kind == PAYEE_CUSTOMER {
        payout.customer_id.clone()
    } else {
        payout.merchant_id.clone()
    };
    let id = id.ok_or_else(|| corrupt("payout", format!("payout {} names no payee", payout.id)))?;
    Ok((payout.payee_kind.clone(), id))
}

impl PaymentService {
    /// The account number and name a payee is paid to, opened: a merchant's settlement
    /// bank account and legal name, a customer's bound bank card and name (`None` when the
    /// customer has no card bound).
    async fn payee_account(
        &self,
        privacy: &Privacy,
        (kind, id): &(String, String),
    ) -> Result<Option<(String, String)>, PayoutServiceError> {
        if kind == PAYEE_CUSTOMER {
            let open = |field: &str, value: &str| {
                privacy
                    .cipher
                    .decrypt(&sealed_field(field, id), value)
                    .map(|secret| secret.expose().clone())
                    .map_err(|error| corrupt(&format!("customer {id}"), error))
            };
            let Some(card) = self
                .database()
                .customer_sealed_profile(id)
                .await?
                .and_then(|profile| profile.bank_card)
            else {
                return Ok(None);
            };
            let customer = self
                .database()
                .customer(id)
                .await?
                .ok_or_else(|| corrupt("payout customer", id))?;
            return Ok(Some((
                open("bank_card", &card)?,
                open("name", &customer.name)?,
            )));
        }
        let merchant = self
            .database()
            .merchant(id)
            .await?
            .ok_or_else(|| corrupt("payout merchant", id))?;
        let open = |field: &str, value: &str| {
            privacy
                .cipher
                .decrypt(&sealed_merchant_field(field, &merchant.id), value)
                .map(|secret| secret.expose().clone())
                .map_err(|error| corrupt(&format!("merchant {}", merchant.id), error))
        };
        Ok(Some((
            open("bank_account", &merchant.bank_account)?,
            open("legal_name", &merchant.legal_name)?,
        )))
    }

    /// The bank file of batch `id` in `encoding`; its funded payouts become `submitted`.
    /// The merchants' bank accounts and legal names are opened for it (the file is for the
    /// bank, which pays to them).
    pub async fn payout_batch_file(
        &self,
        privacy: Option<&Privacy>,
        id: &str,
        encoding: FileEncoding,
        now: Timestamp,
    ) -> Result<Vec<u8>, PayoutServiceError> {
        let batch = self
            .database()
            .payout_batch(id)
            .await?
            .ok_or_else(|| PayoutServiceError::BatchNotFound(id.to_string()))?;
        let privacy =
            privacy.ok_or(crate::payments::error::PaymentServiceError::PrivacyKeysNotConfigured)?;
        self.fund_batch(id, now).await?;
        let currency = Currency::from_code(&batch.currency)
            .map_err(|error| corrupt("batch currency", error))?;
        let mut rows = Vec::new();
        let mut sent = Vec::new();
        let mut names: HashMap<(String, String), Option<(String, String)>> = HashMap::new();
        for payout in self.database().payouts_of_batch(id).await? {
            if payout.funding != "posted" {
                continue;
            }
            let payee = payee_of(&payout)?;
            if !names.contains_key(&payee) {
                let opened = self.payee_account(privacy, &payee).await?;
                names.insert(payee.clone(), opened);
            }
            let Some((account_number, account_name)) = names.get(&payee).cloned().flatten() else {
                // A customer with no bank card bound any more (unbound or erased since):
                // nothing to pay to, so the payout fails and its money goes back.
                if row_state(&payout)? == PayoutState::Created {
                    self.move_payout(
                        &payout,
                        PayoutState::Failed,
                        "the customer has no bank card bound to pay to",
                        now,
                    )
                    .await?;
                }
                continue;
            };
            rows.push(PayoutFileRow {
                sequence: rows.len() as u64 + 1,
                reference: payout.id.clone(),
                account_number,
                account_name,
                amount: row_amount(&payout)?,
            });
            sent.push(payout);
        }
        let file = PayoutFile {
            batch: batch.id.clone(),
            value_date: batch
                .value_date
                .parse()
                .map_err(|error| corrupt("batch value date", error))?,
            currency,
            rows,
        };
        // Encoded before anything is marked: a name GBK cannot write refuses the file whole.
        let bytes = file.to_bytes(encoding).map_err(file_error)?;
        for payout in &sent {
            if row_state(payout)? == PayoutState::Created {
                self.move_payout(
                    payout,
                    PayoutState::Submitted,
                    &format!("sent to the bank in the file of batch {id}"),
                    now,
                )
                .await?;
            }
        }
        if batch.status == "open" {
            self.database()
                .set_payout_batch_status(id, "submitted", now)
                .await?;
        }
        Ok(bytes)
    }

    /// Reads the bank's return file for batch `id` and moves each payout it answers.
    pub async fn read_payout_return_file(
        &self,
        id: &str,
        bytes: &[u8],
        encoding: FileEncoding,
        now: Timestamp,
    ) -> Result<PayoutBatchView, PayoutServiceError> {
        let batch = self
            .database()
            .payout_batch(id)
            .await?
            .ok_or_else(|| PayoutServiceError::BatchNotFound(id.to_string()))?;
        let file = ReturnFile::parse(bytes, encoding).map_err(file_error)?;
        if file.batch != batch.id {
            return Err(mismatch(format!(
                "the return file answers batch {:?}, not {id}",
                file.batch
            )));
        }
        let payouts: HashMap<String, _> = self
            .database()
            .payouts_of_batch(id)
            .await?
            .into_iter()
            .map(|payout| (payout.id.clone(), payout))
            .collect();
        let mut moves = Vec::new();
        for row in &file.rows {
            let payout = payouts.get(&row.reference).ok_or_else(|| {
                mismatch(format!(
                    "row {}: reference {:?} is not a payout of batch {id}",
                    row.sequence, row.reference
                ))
            })?;
            let amount = row_amount(payout)?;
            if row.amount != amount {
                return Err(mismatch(format!(
                    "row {}: payout {} is {amount}, the bank answers {}",
                    row.sequence, payout.id, row.amount
                )));
            }
            let from = row_state(payout)?;
            if from == PayoutState::Created || payout.funding != "posted" {
                return Err(PayoutServiceError::NotSubmitted(payout.id.clone()));
            }
            let (to, cause) = match &row.status {
                ReturnStatus::Paid => (PayoutState::Paid, "the bank paid it".to_string()),
                ReturnStatus::Failed { reason } => (
                    PayoutState::Failed,
                    format!("the bank did not send it: {reason}"),
                ),
                ReturnStatus::Returned { reason } => (
                    PayoutState::Returned,
                    format!("the receiving bank sent it back: {reason}"),
                ),
            };
            if from != to {
                transition(from, to).map_err(|error| PayoutServiceError::Item {
                    index: row.sequence as usize - 1,
                    error: Box::new(error.into()),
                })?;
            }
            moves.push((payout.clone(), to, cause));
        }
        for (payout, to, cause) in moves {
            self.move_payout(&payout, to, &cause, now).await?;
        }
        self.database()
            .set_payout_batch_status(id, "answered", now)
            .await?;
        self.payout_batch(id).await
    }
}
