//! Payouts to merchants' bank accounts: single payouts and batches (a single payout is a
//! batch of one), scheduled payouts after a settlement run, and how the money moves.
//!
//! Every payout belongs to a batch, the unit the bank receives as one file (`files.rs`). A
//! payout is written first (`created`, its funding `unchecked`); then, under its merchant's
//! lock (held across processes until the posting is committed), the balance is checked (a
//! payout above the available balance fails, nothing moved), the decision stored
//! (`decided`), and the move from the merchant's available to its payable posted under the
//! key `payments-payout:{id}:fund` (`posted`). A crash between
//! any two steps is finished by the next call that touches the merchant's payouts: a
//! decided payout is posted again under its key, which the ledger applies once, before any
//! other balance check of that merchant. Taking the batch's file marks its payouts
//! `submitted`; the bank's return file marks each `paid` (payable to the channel's
//! clearing account), `failed` or `returned` (back to the merchant's available balance),
//! each move under a key of its own, so a return file read twice moves nothing twice.

pub mod customers;
pub mod error;
pub mod files;

use crate::credit::views::AmountView;
use crate::payments::accounts::{MerchantLedgerAccounts, PAYMENTS_SERVICE};
use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use crate::payments::merchants::Merchant;
pub use error::PayoutServiceError;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use tally_core::{AccountId, Amount, Currency};
use tally_ledger::{Command, LedgerError, NewEntry, NewLeg, Side};
use tally_payments::payout::{check_payout, movement, scheduled_amount, transition, MoneyAt};
use tally_payments::{MerchantStatus, PayoutState};
use tally_store::payouts::{PayoutBatchRow, PayoutFilter, PayoutRow};
use tally_store::{StoreError, WriteError};
use utoipa::ToSchema;

/// Most payouts in one batch (one bank file).
pub const BATCH_PAYOUTS_MAX: usize = 1_000;
/// Most payouts one list answers.
pub const LIST_LIMIT_MAX: i64 = 500;
/// A merchant's payout's source: the merchant's available balance.
pub const SOURCE_MERCHANT_AVAILABLE: &str = "merchant_available";
/// Payee kinds: a merchant, or a customer (paid to the bank card bound to them).
pub const PAYEE_MERCHANT: &str = "merchant";
pub const PAYEE_CUSTOMER: &str = "customer";

/// One payout asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayout {
    pub merchant: String,
    pub amount: Amount,
}

/// A state a payout was in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutTransitionView {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub cause: String,
    /// `created`, `submitted`, `paid`, `failed` or `returned`.
    pub state: String,
}

/// A payout as shown. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutView {
    pub amount: AmountView,
    pub batch_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The customer paid (a credit-balance payout), to the bank card bound to them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Every state it has been in, oldest first, with when and why.
    pub history: Vec<PayoutTransitionView>,
    pub id: String,
    /// The merchant paid (a merchant's payout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// `merchant` or `customer`.
    pub payee_kind: String,
    /// Where the money came from and goes back to if the payout fails or is returned:
    /// `merchant_available` (the merchant's available balance) or `credit_balance` (the
    /// credit balance of `source_account`, a credit account, re-credited by a credit
    /// operation).
    pub source: String,
    /// The credit account of a credit-balance payout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_account: Option<String>,
    /// `created` (the money in the merchant's payable, not yet with the bank), `submitted`
    /// (in a bank file), `paid`, `failed` or `returned` (the money back in the source).
    pub state: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A batch as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutBatchView {
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub id: String,
    /// `manual` or `scheduled` (after a settlement run).
    pub kind: String,
    pub payouts: Vec<PayoutView>,
    /// `open` (no file taken yet), `submitted` (its file was taken for the bank) or
    /// `answered` (the bank's return file was read).
    pub status: String,
    /// The sum of its payouts, whatever their states.
    pub total: AmountView,
    #[schema(value_type = String, format = Date)]
    pub value_date: Date,
}

/// A page of payouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutList {
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
    pub payouts: Vec<PayoutView>,
}

/// The scheduled payouts of a date: one batch per currency with a positive balance to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutRunView {
    pub batches: Vec<PayoutBatchView>,
    #[schema(value_type = String, format = Date)]
    pub business_date: Date,
}

/// Which payouts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayoutQuery {
    pub merchant: Option<String>,
    pub state: Option<String>,
    pub after: Option<String>,
    pub limit: Option<i64>,
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> PayoutServiceError {
    StoreError::Corrupt(format!("{what}: {error}")).into()
}

fn timestamp(micros: i64) -> Result<Timestamp, PayoutServiceError> {
    Timestamp::from_microsecond(micros).map_err(|error| corrupt("payout time", error))
}

pub(crate) fn stored_now(now: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A batch's id from the client's scoped idempotency key.
pub(crate) fn batch_id(key: &str) -> String {
    format!("pob_{}", &digest(key)[..32])
}

/// A payout's id from its batch and place in it.
pub(crate) fn payout_id(batch: &str, sequence: usize) -> String {
    format!("po_{}", &digest(&format!("{batch}:{sequence}"))[..32])
}

pub(crate) fn request_hash(payouts: &[NewPayout]) -> String {
    let items: Vec<_> = payouts
        .iter()
        .map(|payout| {
            serde_json::json!({"merchant": payout.merchant, "amount": payout.amount.to_string()})
        })
        .collect();
    digest(&serde_json::Value::Array(items).to_string())
}

/// What the merchant's available balance holds (a liability: credits less debits).
async fn available(
    service: &PaymentService,
    accounts: &MerchantLedgerAccounts,
    currency: Currency,
) -> Result<Amount, PayoutServiceError> {
    let state = service
        .database()
        .account(accounts.available)
        .await?
        .ok_or_else(|| corrupt("merchant available", "account vanished"))?;
    Ok(Amount::new(
        state.balance.credits_posted - state.balance.debits_posted,
        currency,
    ))
}

pub(crate) fn entry(
    debit: AccountId,
    credit: AccountId,
    amount: Amount,
    payout: &str,
    what: &str,
) -> NewEntry {
    NewEntry {
        description: format!("payout {payout}: {what}"),
        metadata: BTreeMap::from([("payout".to_string(), payout.to_string())]),
        legs: vec![
            NewLeg {
                account_id: debit,
                side: Side::Debit,
                amount,
            },
            NewLeg {
                account_id: credit,
                side: Side::Credit,
                amount,
            },
        ],
    }
}

impl PaymentService {
    /// Pays `payout` out of its merchant's available balance: a batch of one, keyed by `key`.
    pub async fn create_payout(
        &self,
        key: &str,
        payout: NewPayout,
        now: Timestamp,
    ) -> Result<PayoutView, PayoutServiceError> {
        let batch = self
            .create_payout_batch(key, vec![payout], now)
            .await
            .map_err(|error| match error {
                PayoutServiceError::Item { error, .. } => *error,
                other => other,
            })?;
        batch
            .payouts
            .into_iter()
            .next()
            .ok_or_else(|| corrupt("payout batch", "a batch of one without its payout"))
    }

    /// Makes a batch of payouts keyed by `key`: every item checked first (any refusal
    /// refuses the whole batch, naming the item), then written and funded. A retry with the
    /// same key and items answers the batch as it is now.
    pub async fn create_payout_batch(
        &self,
        key: &str,
        payouts: Vec<NewPayout>,
        now: Timestamp,
    ) -> Result<PayoutBatchView, PayoutServiceError> {
        let id = batch_id(key);
        let hash = request_hash(&payouts);
        if let Some(batch) = self.database().payout_batch(&id).await? {
            if batch.request_hash != hash {
                return Err(PaymentServiceError::KeyReused(key.to_string()).into());
            }
            self.fund_batch(&id, now).await?;
            return self.payout_batch(&id).await;
        }
        let currency = self.check_payout_batch(&payouts).await?;
        let value_date = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        self.write_batch(&id, "manual", currency, value_date, &hash, &payouts, now)
            .await?;
        self.fund_batch(&id, now).await?;
        self.payout_batch(&id).await
    }

    /// Whether a payout batch was made under `key` (a retry answers it as it stands).
    pub async fn payout_batch_made(&self, key: &str) -> Result<bool, PayoutServiceError> {
        Ok(self
            .database()
            .payout_batch(&batch_id(key))
            .await?
            .is_some())
    }

    /// Checks one payout as [`PaymentService::create_payout`] would, moving nothing: the
    /// merchant, its status and currency, its available balance.
    pub async fn check_payout(&self, payout: &NewPayout) -> Result<(), PayoutServiceError> {
        self.check_payout_batch(std::slice::from_ref(payout))
            .await
            .map(|_| ())
            .map_err(|error| match error {
                PayoutServiceError::Item { error, .. } => *error,
                other => other,
            })
    }

    /// Checks every item of a batch, moving nothing: its currency.
    pub(crate) async fn check_payout_batch(
        &self,
        payouts: &[NewPayout],
    ) -> Result<Currency, PayoutServiceError> {
        if payouts.is_empty() {
            return Err(PayoutServiceError::Invalid {
                code: "payout_batch_empty",
                message: "a batch needs at least one payout".into(),
            });
        }
        if payouts.len() > BATCH_PAYOUTS_MAX {
            return Err(PayoutServiceError::Invalid {
                code: "payout_batch_too_large",
                message: format!(
                    "a batch holds at most {BATCH_PAYOUTS_MAX} payouts, got {}",
                    payouts.len()
                ),
            });
        }
        let currency = payouts[0].amount.currency();
        // Each merchant's items together must fit its balance, as they will be funded.
        let mut asked: HashMap<String, Amount> = HashMap::new();
        for (index, payout) in payouts.iter().enumerate() {
            let item = |error: PayoutServiceError| PayoutServiceError::Item {
                index,
                error: Box::new(error),
            };
            let merchant = self
                .merchant(&payout.merchant)
                .await
                .map_err(|error| item(error.into()))?;
            if payout.amount.currency() != currency && payout.amount.currency() == merchant.currency
            {
                return Err(item(PayoutServiceError::Invalid {
                    code: "payout_batch_currency_mixed",
                    message: format!(
                        "the batch is in {currency} (its first payout's), this payout in {}",
                        payout.amount.currency()
                    ),
                }));
            }
            let accounts = self.merchant_accounts(&merchant).await?;
            let before = asked
                .get(&merchant.id)
                .copied()
                .unwrap_or(Amount::zero(merchant.currency));
            let balance = available(self, &accounts, merchant.currency).await?;
            let left = balance
                .checked_sub(before)
                .map_err(|error| corrupt("balance", error))?;
            check_payout(
                &merchant.id,
                merchant.status,
                merchant.currency,
                left,
                payout.amount,
            )
            .map_err(|error| item(error.into()))?;
            asked.insert(
                merchant.id.clone(),
                before
                    .checked_add(payout.amount)
                    .map_err(|error| corrupt("batch sum", error))?,
            );
        }
        Ok(currency)
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_batch(
        &self,
        id: &str,
        kind: &str,
        currency: Currency,
        value_date: Date,
        hash: &str,
        payouts: &[NewPayout],
        now: Timestamp,
    ) -> Result<bool, PayoutServiceError> {
        let now = stored_now(now).as_microsecond();
        let batch = PayoutBatchRow {
            id: id.to_string(),
            kind: kind.to_string(),
            currency: currency.code().to_string(),
            value_date: value_date.to_string(),
            request_hash: hash.to_string(),
            status: "open".into(),
            created_at: now,
            updated_at: now,
        };
        let rows: Vec<PayoutRow> = payouts
            .iter()
            .enumerate()
            .map(|(index, payout)| PayoutRow {
                id: payout_id(id, index + 1),
                batch_id: id.to_string(),
                sequence: index as i64 + 1,
                payee_kind: PAYEE_MERCHANT.into(),
                merchant_id: Some(payout.merchant.clone()),
                customer_id: None,
                source: SOURCE_MERCHANT_AVAILABLE.into(),
                source_account: None,
                currency: payout.amount.currency().code().to_string(),
                amount_minor: payout.amount.minor(),
                state: PayoutState::Created.as_str().into(),
                funding: "unchecked".into(),
                created_at: now,
                updated_at: now,
            })
            .collect();
        let cause = match kind {
            "scheduled" => format!("scheduled after the settlement run of {value_date}"),
            _ => "asked for through the API".to_string(),
        };
        Ok(self
            .database()
            .insert_payout_batch(&batch, &rows, &cause)
            .await?)
    }

    async fn merchant_accounts(
        &self,
        merchant: &Merchant,
    ) -> Result<MerchantLedgerAccounts, PayoutServiceError> {
        self.accounts()
            .merchant(
                self.database(),
                self.writer(),
                &merchant.id,
                merchant.currency,
            )
            .await
            .map_err(|error| PayoutServiceError::Payment(error.into()))
    }

    /// Funds every payout of batch `id` not funded yet.
    async fn fund_batch(&self, id: &str, now: Timestamp) -> Result<(), PayoutServiceError> {
        let mut merchants: Vec<String> = self
            .database()
            .payouts_of_batch(id)
            .await?
            .into_iter()
            .filter(|payout| payout.funding == "unchecked" || payout.funding == "decided")
            .filter_map(|payout| payout.merchant_id)
            .collect();
        merchants.sort();
        merchants.dedup();
        for merchant in merchants {
            self.fund_merchant_payouts(&merchant, now).await?;
        }
        Ok(())
    }

    /// Finishes the funding of a merchant's payouts, under its lock (in this process and
    /// across processes, `tally_store::funding_lock`): decided ones are posted (again: the
    /// key makes it once), then unchecked ones checked against the balance one after the
    /// other and funded or failed.
    pub(crate) async fn fund_merchant_payouts(
        &self,
        merchant_id: &str,
        now: Timestamp,
    ) -> Result<(), PayoutServiceError> {
        let _guard = self.lock(&format!("payouts-merchant:{merchant_id}")).await;
        // Across processes too: the balance read below must see every funding another
        // process allowed, posted before it let the lock go.
        let across_processes = self.database().lock_payout_funding(merchant_id).await?;
        self.fund_merchant_payouts_locked(merchant_id, now).await?;
        across_processes.release().await?;
        Ok(())
    }

    /// [`PaymentService::fund_merchant_payouts`] once the merchant's locks are held.
    async fn fund_merchant_payouts_locked(
        &self,
        merchant_id: &str,
        now: Timestamp,
    ) -> Result<(), PayoutServiceError> {
        let merchant = self.merchant(merchant_id).await?;
        let accounts = self.merchant_accounts(&merchant).await?;
        for payout in self
            .database()
            .merchant_payouts_funding(merchant_id, "decided")
            .await?
        {
            self.post_funding(&payout, &accounts, now).await?;
        }
        for payout in self
            .database()
            .merchant_payouts_funding(merchant_id, "unchecked")
            .await?
        {
            let amount = row_amount(&payout)?;
            let balance = available(self, &accounts, merchant.currency).await?;
            match check_payout(
                &merchant.id,
                merchant.status,
                merchant.currency,
                balance,
                amount,
            ) {
                Ok(()) => {
                    self.database()
                        .set_payout_funding(&payout.id, "unchecked", "decided", now)
                        .await?;
                    self.post_funding(&payout, &accounts, now).await?;
                }
                Err(refusal) => {
                    self.database()
                        .move_payout(
                            &payout.id,
                            PayoutState::Created.as_str(),
                            PayoutState::Failed.as_str(),
                            Some("refused"),
                            &format!("{}: {refusal}", refusal.code()),
                            now,
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn post_funding(
        &self,
        payout: &PayoutRow,
        accounts: &MerchantLedgerAccounts,
        now: Timestamp,
    ) -> Result<(), PayoutServiceError> {
        let amount = row_amount(payout)?;
        let key = format!("payments-payout:{}:fund", payout.id);
        let posting = entry(
            accounts.available,
            accounts.payable,
            amount,
            &payout.id,
            "from the merchant's available balance to its payable",
        );
        self.post_payout_entry(&key, posting).await?;
        self.database()
            .set_payout_funding(&payout.id, "decided", "posted", now)
            .await?;
        Ok(())
    }

    /// Posts a payout's ledger entry as the payment service; the ledger replays a key it has
    /// applied.
    pub(crate) async fn post_payout_entry(
        &self,
        key: &str,
        entry: NewEntry,
    ) -> Result<(), PayoutServiceError> {
        match self
            .writer()
            .submit_as(PAYMENTS_SERVICE, key.to_string(), Command::PostEntry(entry))
            .await
        {
            Ok(_) => Ok(()),
            Err(WriteError::Ledger(error)) => Err(ledger_refused(key, error)),
            Err(WriteError::KeyReused(key)) => Err(PaymentServiceError::LedgerConflict(format!(
                "the ledger idempotency key {key} is taken by another command"
            ))
            .into()),
            Err(error) => Err(PaymentServiceError::InFlight {
                payment: key.to_string(),
                reason: error.to_string(),
            }
            .into()),
        }
    }

    /// Moves a payout from `from` to `to`: the ledger move the change makes (if any), under a
    /// key of its own, then the state with `cause`. A payout already in `to` is left as it is.
    pub(crate) async fn move_payout(
        &self,
        payout: &PayoutRow,
        to: PayoutState,
        cause: &str,
        now: Timestamp,
    ) -> Result<(), PayoutServiceError> {
        let _guard = self.lock(&payout.id).await;
        let current = self
            .database()
            .payout(&payout.id)
            .await?
            .ok_or_else(|| PayoutServiceError::PayoutNotFound(payout.id.clone()))?;
        let from = row_state(&current)?;
        if from == to {
            return Ok(());
        }
        transition(from, to)?;
        if current.payee_kind == PAYEE_CUSTOMER {
            self.move_customer_payout(&current, from, to, cause, now)
                .await?;
        } else if let Some((before, after)) = movement(from, to) {
            let merchant_id = current
                .merchant_id
                .as_deref()
                .ok_or_else(|| corrupt("payout", "a merchant's payout without its merchant"))?;
            let merchant = self.merchant(merchant_id).await?;
            let accounts = self.merchant_accounts(&merchant).await?;
            let service = self
                .accounts()
                .service(self.database(), self.writer(), merchant.currency)
                .await
                .map_err(|error| PayoutServiceError::Payment(error.into()))?;
            let holder = |at: MoneyAt| match at {
                MoneyAt::Source => accounts.available,
                MoneyAt::InFlight => accounts.payable,
                MoneyAt::Bank => service.channel_clearing,
            };
            let key = format!("payments-payout:{}:{}", current.id, to.as_str());
            let posting = entry(
                holder(before),
                holder(after),
                row_amount(&current)?,
                &current.id,
                cause,
            );
            self.post_payout_entry(&key, posting).await?;
        }
        self.database()
            .move_payout(&current.id, from.as_str(), to.as_str(), None, cause, now)
            .await?;
        Ok(())
    }

    /// A payout with its history.
    pub async fn payout(&self, id: &str) -> Result<PayoutView, PayoutServiceError> {
        let row = self
            .database()
            .payout(id)
            .await?
            .ok_or_else(|| PayoutServiceError::PayoutNotFound(id.to_string()))?;
        self.payout_view(&row).await
    }

    async fn payout_view(&self, row: &PayoutRow) -> Result<PayoutView, PayoutServiceError> {
        let history = self
            .database()
            .payout_transitions(&row.id)
            .await?
            .into_iter()
            .map(|change| {
                Ok(PayoutTransitionView {
                    at: timestamp(change.at)?,
                    cause: change.cause,
                    state: change.state,
                })
            })
            .collect::<Result<Vec<_>, PayoutServiceError>>()?;
        Ok(PayoutView {
            amount: row_amount(row)?.into(),
            batch_id: row.batch_id.clone(),
            created_at: timestamp(row.created_at)?,
            customer_id: row.customer_id.clone(),
            history,
            id: row.id.clone(),
            merchant_id: row.merchant_id.clone(),
            payee_kind: row.payee_kind.clone(),
            source: row.source.clone(),
            source_account: row.source_account.clone(),
            state: row.state.clone(),
            updated_at: timestamp(row.updated_at)?,
        })
    }

    /// A batch with its payouts.
    pub async fn payout_batch(&self, id: &str) -> Result<PayoutBatchView, PayoutServiceError> {
        let batch = self
            .database()
            .payout_batch(id)
            .await?
            .ok_or_else(|| PayoutServiceError::BatchNotFound(id.to_string()))?;
        let currency = Currency::from_code(&batch.currency)
            .map_err(|error| corrupt("batch currency", error))?;
        let mut payouts = Vec::new();
        let mut total = Amount::zero(currency);
        for row in self.database().payouts_of_batch(id).await? {
            total = total
                .checked_add(row_amount(&row)?)
                .map_err(|error| corrupt("batch total", error))?;
            payouts.push(self.payout_view(&row).await?);
        }
        Ok(PayoutBatchView {
            created_at: timestamp(batch.created_at)?,
            currency,
            id: batch.id.clone(),
            kind: batch.kind.clone(),
            payouts,
            status: batch.status.clone(),
            total: total.into(),
            value_date: batch
                .value_date
                .parse()
                .map_err(|error| corrupt("batch value date", error))?,
        })
    }

    /// Payouts by merchant and state, in id order.
    pub async fn payouts(&self, query: &PayoutQuery) -> Result<PayoutList, PayoutServiceError> {
        if let Some(state) = &query.state {
            if PayoutState::parse(state).is_none() {
                return Err(PayoutServiceError::Invalid {
                    code: "invalid_payout_state",
                    message: format!(
                        "state {state:?} is not created, submitted, paid, failed or returned"
                    ),
                });
            }
        }
        if let Some(merchant) = &query.merchant {
            self.merchant(merchant).await?;
        }
        let limit = query.limit.unwrap_or(100);
        if !(1..=LIST_LIMIT_MAX).contains(&limit) {
            return Err(PayoutServiceError::Invalid {
                code: "invalid_limit",
                message: format!("limit must be 1 to {LIST_LIMIT_MAX}, got {limit}"),
            });
        }
        let rows = self
            .database()
            .payouts(
                &PayoutFilter {
                    merchant: query.merchant.as_deref(),
                    state: query.state.as_deref(),
                    after: query.after.as_deref(),
                },
                limit + 1,
            )
            .await?;
        let more = rows.len() as i64 > limit;
        let mut payouts = Vec::new();
        for row in rows.iter().take(limit as usize) {
            payouts.push(self.payout_view(row).await?);
        }
        Ok(PayoutList {
            next_after: more
                .then(|| payouts.last().map(|payout| payout.id.clone()))
                .flatten(),
            payouts,
        })
    }

    /// Pays out, after the settlement run of `date`, every merchant's positive available
    /// balance: one scheduled batch per currency, made once per date (asked again, it
    /// answers the same batches and finishes any funding a crash left). Suspended merchants
    /// are left out; a zero or negative balance is not paid.
    pub async fn run_scheduled_payouts(
        &self,
        date: Date,
        now: Timestamp,
    ) -> Result<PayoutRunView, PayoutServiceError> {
        let due = self.scheduled_payouts_due(date).await?;
        self.make_scheduled_payouts(date, due, now).await
    }

    /// The payouts the scheduled run of `date` would make, moving nothing: one per merchant
    /// not suspended with a positive available balance, in a currency with no scheduled
    /// batch of the date yet. Refused before the settlement run of `date` is done.
    pub async fn scheduled_payouts_due(
        &self,
        date: Date,
    ) -> Result<Vec<NewPayout>, PayoutServiceError> {
        let run = match self.settlement_run(date).await {
            Ok(run) => run,
            Err(PaymentServiceError::SettlementRunNotFound(_)) => {
                return Err(PayoutServiceError::SettlementRunNotDone(date.to_string()))
            }
            Err(error) => return Err(error.into()),
        };
        if run.status != "done" {
            return Err(PayoutServiceError::SettlementRunNotDone(date.to_string()));
        }
        let mut due = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self
                .database()
                .merchants_after(after.as_deref(), 500)
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            for row in &rows {
                let merchant = Merchant::from_row(row)?;
                if merchant.status == MerchantStatus::Suspended {
                    continue;
                }
                let id = batch_scheduled_id(date, merchant.currency);
                if self.database().payout_batch(&id).await?.is_some() {
                    continue;
                }
                let accounts = self.merchant_accounts(&merchant).await?;
                if let Some(amount) =
                    scheduled_amount(available(self, &accounts, merchant.currency).await?)
                {
                    due.push(NewPayout {
                        merchant: merchant.id.clone(),
                        amount,
                    });
                }
            }
        }
        Ok(due)
    }

    /// Makes the scheduled payouts `due` of `date` (from
    /// [`PaymentService::scheduled_payouts_due`], less any the caller withheld): one batch
    /// per currency, and answers every scheduled batch of the date.
    pub async fn make_scheduled_payouts(
        &self,
        date: Date,
        due: Vec<NewPayout>,
        now: Timestamp,
    ) -> Result<PayoutRunView, PayoutServiceError> {
        let mut by_currency: BTreeMap<Currency, Vec<NewPayout>> = BTreeMap::new();
        for payout in due {
            by_currency
                .entry(payout.amount.currency())
                .or_default()
                .push(payout);
        }
        for (currency, payouts) in &by_currency {
            for chunk in payouts.chunks(BATCH_PAYOUTS_MAX).take(1) {
                // One file per currency and date; more merchants than a file holds wait for
                // the next date's run (their balances stay available).
                let id = batch_scheduled_id(date, *currency);
                self.write_batch(&id, "scheduled", *currency, date, "scheduled", chunk, now)
                    .await?;
            }
        }
        let mut batches = Vec::new();
        for currency in self.scheduled_currencies(date).await? {
            let id = batch_scheduled_id(date, currency);
            self.fund_batch(&id, now).await?;
            batches.push(self.payout_batch(&id).await?);
        }
        Ok(PayoutRunView {
            batches,
            business_date: date,
        })
    }

    /// The currencies with a scheduled batch of `date`.
    async fn scheduled_currencies(&self, date: Date) -> Result<Vec<Currency>, PayoutServiceError> {
        self.database()
            .scheduled_payout_batches(&date.to_string())
            .await?
            .iter()
            .map(|batch| {
                Currency::from_code(&batch.currency).map_err(|error| corrupt("currency", error))
            })
            .collect()
    }

    /// Finishes payouts a crash left unfunded or funded without their posting, up to
    /// `limit` merchants; returns how many merchants it looked at.
    pub async fn recover_payouts(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<usize, PayoutServiceError> {
        let merchants = self.database().merchants_with_undone_funding(limit).await?;
        for merchant in &merchants {
            self.fund_merchant_payouts(merchant, now).await?;
        }
        Ok(merchants.len())
    }
}

fn batch_scheduled_id(date: Date, currency: Currency) -> String {
    format!("pob_scheduled_{date}_{}", currency.code())
}

fn ledger_refused(key: &str, error: LedgerError) -> PayoutServiceError {
    PaymentServiceError::LedgerRefused {
        key: key.to_string(),
        message: error.to_string(),
    }
    .into()
}

pub(crate) fn row_amount(row: &PayoutRow) -> Result<Amount, PayoutServiceError> {
    let currency =
        Currency::from_code(&row.currency).map_err(|error| corrupt("payout currency", error))?;
    Ok(Amount::new(row.amount_minor, currency))
}

pub(crate) fn row_state(row: &PayoutRow) -> Result<PayoutState, PayoutServiceError> {
    PayoutState::parse(&row.state).ok_or_else(|| corrupt("payout state", &row.state))
}
