//! The customer's wallet and vault: balances, top-ups from a card and withdrawals to a card
//! through the channel, and moves between wallet and vault (an instant redemption from the
//! vault is limited per day).
//!
//! Each operation is written as pending before its first step, under an id derived from its
//! scoped idempotency key, and every step acts once however often it is taken (the channel
//! reference and the ledger key are derived from that id). A retry, or recovery at start and
//! every few seconds, takes the remaining steps: a top-up whose card was charged is always
//! credited to the wallet, and a withdrawal's held amount is always either paid out or
//! given back.

use crate::credit::views::AmountView;
use crate::intent::{intent_key, step_key, submit, Unsent};
use crate::payments::accounts::{check_customer, Balance, PAYMENTS_SERVICE};
use crate::payments::checkout::{key_taken, transfer, PaymentService};
use crate::payments::error::PaymentServiceError;
use crate::payments::record::Failure;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tally_channel::{
    AuthorizationStatus, AuthorizeRequest, CaptureRequest, CardToken, ChannelError, ChannelId,
    Operation, PayoutRequest, PayoutStatus, Reference, VoidRequest,
};
use tally_core::{AccountId, Amount, Currency, HoldId};
use tally_ledger::{Command, LedgerError, NewHold, Outcome};
use tally_payments::vault::check_instant_redemption;
use tally_store::payments::NewWalletOperation;
use tally_store::StoreError;
use utoipa::ToSchema;

/// What kind of wallet operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalletOperationKind {
    /// From a card to the wallet.
    TopUp,
    /// From the wallet to a card (a payout).
    Withdrawal,
    /// From the wallet to the vault.
    Subscription,
    /// From the vault to the wallet, at once (limited per day).
    Redemption,
}

impl WalletOperationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            WalletOperationKind::TopUp => "top_up",
            WalletOperationKind::Withdrawal => "withdrawal",
            WalletOperationKind::Subscription => "subscription",
            WalletOperationKind::Redemption => "redemption",
        }
    }
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalletOperationStatus {
    Pending,
    Succeeded,
    Failed,
}

impl WalletOperationStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            WalletOperationStatus::Pending => "pending",
            WalletOperationStatus::Succeeded => "succeeded",
            WalletOperationStatus::Failed => "failed",
        }
    }
}

/// An operation as stored (JSON in `wallet_operations.state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct WalletOperation {
    id: String,
    kind: WalletOperationKind,
    customer: String,
    amount: Amount,
    card_token: Option<String>,
    status: WalletOperationStatus,
    /// The card authorisation of a top-up, once the bank gave one.
    authorization: Option<String>,
    /// A top-up's capture went through at the bank.
    captured: bool,
    /// A withdrawal's hold on the wallet.
    hold: Option<HoldId>,
    failure: Option<Failure>,
    created_at: Timestamp,
}

/// An operation as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletOperationView {
    pub amount: AmountView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_token: Option<String>,
    pub created_at: String,
    pub customer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::payments::views::FailureView>,
    pub id: String,
    /// `top_up`, `withdrawal`, `subscription` or `redemption`.
    pub kind: String,
    /// `pending` (a step's outcome is not known yet, or the bank has not paid out yet),
    /// `succeeded` or `failed`.
    pub status: String,
}

fn view(operation: &WalletOperation) -> WalletOperationView {
    WalletOperationView {
        amount: operation.amount.into(),
        card_token: operation.card_token.clone(),
        created_at: operation.created_at.to_string(),
        customer: operation.customer.clone(),
        failure: operation
            .failure
            .as_ref()
            .map(|failure| crate::payments::views::FailureView {
                code: failure.code.clone(),
                leg: None,
                message: failure.message.clone(),
            }),
        id: operation.id.clone(),
        kind: operation.kind.as_str().to_string(),
        status: operation.status.as_str().to_string(),
    }
}

/// One balance as shown: what is in it and what of that is held by payments in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceView {
    /// What may be spent now: the balance less what is held.
    pub available: AmountView,
    pub balance: AmountView,
    pub held: AmountView,
}

/// A customer's wallet and vault in one currency (zero where none was opened yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalancesView {
    pub customer: String,
    pub vault: BalanceView,
    pub wallet: BalanceView,
}

/// The limit on instant redemptions from the vault per customer and day, in major units of
/// any currency (10,000, as China's money-market funds apply).
pub const INSTANT_REDEMPTION_DAILY_LIMIT: &str = "10000";

fn operation_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("wop_{}", &hex::encode(digest)[..32])
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> PaymentServiceError {
    PaymentServiceError::Store(StoreError::Corrupt(format!("{what}: {error}")))
}

fn reference(id: &str, step: &str) -> Result<Reference, PaymentServiceError> {
    Reference::new(step_key(id, step)).map_err(|error| corrupt("channel reference", error))
}

fn unknown(id: &str, error: impl std::fmt::Display) -> PaymentServiceError {
    PaymentServiceError::InFlight {
        payment: id.to_string(),
        reason: error.to_string(),
    }
}

impl PaymentService {
    /// The wallet and vault of `customer` in `currency`.
    pub async fn balances(
        &self,
        customer: &str,
        currency: Currency,
    ) -> Result<BalancesView, PaymentServiceError> {
        check_customer(customer).map_err(PaymentServiceError::Invalid)?;
        Ok(BalancesView {
            customer: customer.to_string(),
            vault: self
                .balance_view(Balance::Vault, customer, currency)
                .await?,
            wallet: self
                .balance_view(Balance::Wallet, customer, currency)
                .await?,
        })
    }

    async fn balance_view(
        &self,
        balance: Balance,
        customer: &str,
        currency: Currency,
    ) -> Result<BalanceView, PaymentServiceError> {
        let account = self
            .accounts()
            .balance(
                self.database(),
                self.writer(),
                balance,
                customer,
                currency,
                false,
            )
            .await?;
        let (posted, held) = match account {
            Some(id) => {
                let state = self
                    .database()
                    .account(id)
                    .await?
                    .ok_or_else(|| corrupt("wallet", format!("account {id} vanished")))?;
                let balance = state.balance;
                (
                    balance.credits_posted - balance.debits_posted,
                    balance.debits_pending,
                )
            }
            None => (0, 0),
        };
        Ok(BalanceView {
            available: Amount::new(posted - held, currency).into(),
            balance: Amount::new(posted, currency).into(),
            held: Amount::new(held, currency).into(),
        })
    }

    /// Moves `amount` from the card `card_token` to the customer's wallet.
    pub async fn top_up(
        &self,
        key: &str,
        customer: &str,
        card_token: &str,
        amount: Amount,
        now: Timestamp,
    ) -> Result<WalletOperationView, PaymentServiceError> {
        self.wallet_operation(
            key,
            WalletOperationKind::TopUp,
            customer,
            Some(card_token),
            amount,
            now,
        )
        .await
    }

    /// Moves `amount` from the customer's wallet to the card `card_token` (a payout).
    pub async fn withdraw(
        &self,
        key: &str,
        customer: &str,
        card_token: &str,
        amount: Amount,
        now: Timestamp,
    ) -> Result<WalletOperationView, PaymentServiceError> {
        self.wallet_operation(
            key,
            WalletOperationKind::Withdrawal,
            customer,
            Some(card_token),
            amount,
            now,
        )
        .await
    }

    /// Moves `amount` from the wallet to the vault.
    pub async fn subscribe_to_vault(
        &self,
        key: &str,
        customer: &str,
        amount: Amount,
        now: Timestamp,
    ) -> Result<WalletOperationView, PaymentServiceError> {
        self.wallet_operation(
            key,
            WalletOperationKind::Subscription,
            customer,
            None,
            amount,
            now,
        )
        .await
    }

    /// Moves `amount` from the vault to the wallet at once, within the daily limit.
    pub async fn redeem_from_vault(
        &self,
        key: &str,
        customer: &str,
        amount: Amount,
        now: Timestamp,
    ) -> Result<WalletOperationView, PaymentServiceError> {
        self.wallet_operation(
            key,
            WalletOperationKind::Redemption,
            customer,
            None,
            amount,
            now,
        )
        .await
    }

    async fn wallet_operation(
        &self,
        key: &str,
        kind: WalletOperationKind,
        customer: &str,
        card_token: Option<&str>,
        amount: Amount,
        now: Timestamp,
    ) -> Result<WalletOperationView, PaymentServiceError> {
        let id = operation_id(key);
        let hash = hex::encode(Sha256::digest(
            serde_json::json!({
                "kind": kind.as_str(),
                "customer": customer,
                "card_token": card_token,
                "amount": amount.to_string(),
            })
            .to_string()
            .as_bytes(),
        ));
        if let Some(stored) = self.database().wallet_operation(&id).await? {
            if stored.request_hash != hash {
                return Err(PaymentServiceError::KeyReused(key.to_string()));
            }
            return self.continue_wallet_operation(&id, now).await;
        }
        self.check_wallet_operation(kind, customer, card_token, amount, now)
            .await?;
        let operation = WalletOperation {
            id: id.clone(),
            kind,
            customer: customer.to_string(),
            amount,
            card_token: card_token.map(str::to_string),
            status: WalletOperationStatus::Pending,
            authorization: None,
            captured: false,
            hold: None,
            failure: None,
            created_at: now,
        };
        let state =
            serde_json::to_string(&operation).map_err(|error| corrupt("operation", error))?;
        let inserted = self
            .database()
            .insert_wallet_operation(NewWalletOperation {
                id: &id,
                kind: kind.as_str(),
                customer,
                currency: amount.currency().code(),
                amount_minor: amount.minor(),
                request_hash: &hash,
                state: &state,
                created_at: now,
            })
            .await?;
        if !inserted {
            let stored = self.database().wallet_operation(&id).await?;
            if stored.is_some_and(|stored| stored.request_hash != hash) {
                return Err(PaymentServiceError::KeyReused(key.to_string()));
            }
        }
        self.continue_wallet_operation(&id, now).await
    }

    /// Whether a wallet operation was made under `key` (a retry continues it).
    pub async fn wallet_operation_made(&self, key: &str) -> Result<bool, PaymentServiceError> {
        Ok(self
            .database()
            .wallet_operation(&operation_id(key))
            .await?
            .is_some())
    }

    /// Checks a withdrawal as [`PaymentService::withdraw`] would, moving nothing; the
    /// card's fingerprint.
    pub async fn check_withdrawal(
        &self,
        customer: &str,
        card_token: &str,
        amount: Amount,
        now: Timestamp,
    ) -> Result<Option<String>, PaymentServiceError> {
        self.check_wallet_operation(
            WalletOperationKind::Withdrawal,
            customer,
            Some(card_token),
            amount,
            now,
        )
        .await
    }

    /// Checks an operation before it is written: the customer, the amount, the card (saved
    /// by this customer; its fingerprint is answered) and the daily redemption limit.
    async fn check_wallet_operation(
        &self,
        kind: WalletOperationKind,
        customer: &str,
        card_token: Option<&str>,
        amount: Amount,
        now: Timestamp,
    ) -> Result<Option<String>, PaymentServiceError> {
        check_customer(customer).map_err(PaymentServiceError::Invalid)?;
        let mut card_fingerprint = None;
        if !amount.is_positive() {
            return Err(tally_payments::PaymentError::AmountNotPositive(amount.to_string()).into());
        }
        if let Some(token) = card_token {
            tally_payments::funding::check_card_token(token)?;
            let card = self
                .database()
                .card(token)
                .await?
                .ok_or_else(|| PaymentServiceError::CardNotFound(token.to_string()))?;
            if card.customer != customer {
                return Err(PaymentServiceError::ForeignSource {
                    source_name: "card",
                    reference: token.to_string(),
                });
            }
            self.channel()?;
            card_fingerprint = Some(card.fingerprint);
        }
        if kind == WalletOperationKind::Redemption {
            let limit = Amount::parse(INSTANT_REDEMPTION_DAILY_LIMIT, amount.currency())
                .map_err(tally_payments::PaymentError::from)?;
            let day_start = now
                .to_zoned(jiff::tz::TimeZone::UTC)
                .start_of_day()
                .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?
                .timestamp();
            let redeemed = self
                .database()
                .wallet_operations_total_since(
                    customer,
                    kind.as_str(),
                    amount.currency().code(),
                    day_start,
                )
                .await?;
            check_instant_redemption(amount, Amount::new(redeemed, amount.currency()), limit)?;
        }
        Ok(card_fingerprint)
    }

    /// Takes the remaining steps of operation `id`, under its customer's lock.
    pub(crate) async fn continue_wallet_operation(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<WalletOperationView, PaymentServiceError> {
        let _guard = self.lock(id).await;
        let stored = self
            .database()
            .wallet_operation(id)
            .await?
            .ok_or_else(|| corrupt("wallet operation", format!("{id} vanished")))?;
        let mut operation: WalletOperation =
            serde_json::from_str(&stored.state).map_err(|error| corrupt(id, error))?;
        let result = self.drive_wallet_operation(&mut operation, now).await;
        let state =
            serde_json::to_string(&operation).map_err(|error| corrupt("operation", error))?;
        self.database()
            .update_wallet_operation(id, &state, operation.status.as_str(), now)
            .await?;
        result?;
        match (&operation.status, &operation.failure) {
            (WalletOperationStatus::Failed, Some(failure)) => {
                Err(PaymentServiceError::WalletDeclined {
                    code: failure.code.clone(),
                    message: failure.message.clone(),
                    operation: Box::new(view(&operation)),
                })
            }
            _ => Ok(view(&operation)),
        }
    }

    /// Finishes pending wallet operations (a crash or a lost answer left them), up to
    /// `limit`; returns how many are still pending.
    pub async fn recover_wallet_operations(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<usize, PaymentServiceError> {
        let mut still_pending = 0;
        for id in self.database().pending_wallet_operations(limit).await? {
            match self.continue_wallet_operation(&id, now).await {
                Ok(view) if view.status == "pending" => still_pending += 1,
                Ok(_) | Err(PaymentServiceError::WalletDeclined { .. }) => {}
                Err(error) => {
                    tracing::warn!(operation = %id, code = error.code(), %error, "wallet operation still in flight");
                    still_pending += 1;
                }
            }
        }
        Ok(still_pending)
    }

    async fn drive_wallet_operation(
        &self,
        operation: &mut WalletOperation,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        if operation.status != WalletOperationStatus::Pending {
            return Ok(());
        }
        let currency = operation.amount.currency();
        let accounts = self
            .accounts()
            .service(self.database(), self.writer(), currency)
            .await?;
        let wallet = self
            .accounts()
            .balance(
                self.database(),
                self.writer(),
                Balance::Wallet,
                &operation.customer,
                currency,
                true,
            )
            .await?
            .ok_or_else(|| corrupt("wallet", "not opened"))?;
        let ledger_key = intent_key("payments-wallet", &operation.id);
        match operation.kind {
            WalletOperationKind::TopUp => {
                self.drive_top_up(operation, accounts.channel_clearing, wallet, &ledger_key)
                    .await
            }
            WalletOperationKind::Withdrawal => {
                self.drive_withdrawal(
                    operation,
                    accounts.channel_clearing,
                    wallet,
                    &ledger_key,
                    now,
                )
                .await
            }
            WalletOperationKind::Subscription | WalletOperationKind::Redemption => {
                let vault = self
                    .accounts()
                    .balance(
                        self.database(),
                        self.writer(),
                        Balance::Vault,
                        &operation.customer,
                        currency,
                        true,
                    )
                    .await?
                    .ok_or_else(|| corrupt("vault", "not opened"))?;
                let (from, to, from_name) = if operation.kind == WalletOperationKind::Subscription {
                    (wallet, vault, "wallet")
                } else {
                    (vault, wallet, "vault")
                };
                let entry = transfer(
                    from,
                    to,
                    operation.amount,
                    format!("{} {}", operation.kind.as_str(), operation.id),
                    &operation.id,
                );
                match self
                    .submit_ledger(&ledger_key, Command::PostEntry(entry))
                    .await?
                {
                    Ok(_) => operation.status = WalletOperationStatus::Succeeded,
                    Err(LedgerError::ExceedsCredits(_)) => {
                        fail(
                            operation,
                            "insufficient_balance",
                            format!("the {from_name} holds less than {}", operation.amount),
                        );
                    }
                    Err(error) => fail(operation, error.code(), error.to_string()),
                }
                Ok(())
            }
        }
    }

    async fn drive_top_up(
        &self,
        operation: &mut WalletOperation,
        channel_clearing: AccountId,
        wallet: AccountId,
        ledger_key: &str,
    ) -> Result<(), PaymentServiceError> {
        let channel = self.channel()?.clone();
        let token = card_token(operation)?;
        if operation.authorization.is_none() {
            let answer = channel
                .authorize(&AuthorizeRequest {
                    reference: reference(&operation.id, "authorize")?,
                    token,
                    amount: operation.amount,
                })
                .await;
            match answer {
                Ok(authorization) => match authorization.status {
                    AuthorizationStatus::Authorized => {
                        operation.authorization =
                            Some(authorization.channel_id.as_str().to_string());
                    }
                    AuthorizationStatus::Declined { code, message } => {
                        fail(
                            operation,
                            "card_declined",
                            format!("the bank declined the card: {message} ({code})"),
                        );
                        return Ok(());
                    }
                },
                Err(ChannelError::Refused { code, message }) => {
                    fail(
                        operation,
                        "card_declined",
                        format!("the bank refused the card: {message} ({code})"),
                    );
                    return Ok(());
                }
                Err(error) => return Err(unknown(&operation.id, error)),
            }
        }
        let authorization = channel_id(operation.authorization.as_deref())?;
        if !operation.captured {
            let answer = channel
                .capture(&CaptureRequest {
                    reference: reference(&operation.id, "capture")?,
                    channel_id: authorization.clone(),
                    amount: operation.amount,
                })
                .await;
            match answer {
                Ok(_) => operation.captured = true,
                Err(ChannelError::Refused { code, message }) => {
                    // Nothing was taken: give the hold on the card back.
                    let _ = channel
                        .void(&VoidRequest {
                            reference: reference(&operation.id, "void")?,
                            channel_id: authorization,
                        })
                        .await;
                    fail(
                        operation,
                        "card_capture_refused",
                        format!("the bank refused the capture: {message} ({code})"),
                    );
                    return Ok(());
                }
                Err(error) => return Err(unknown(&operation.id, error)),
            }
        }
        let entry = transfer(
            channel_clearing,
            wallet,
            operation.amount,
            format!("top-up {} from card", operation.id),
            &operation.id,
        );
        match self
            .submit_ledger(ledger_key, Command::PostEntry(entry))
            .await?
        {
            Ok(_) => {
                operation.status = WalletOperationStatus::Succeeded;
                Ok(())
            }
            Err(error) => Err(PaymentServiceError::LedgerRefused {
                key: ledger_key.to_string(),
                message: error.to_string(),
            }),
        }
    }

    async fn drive_withdrawal(
        &self,
        operation: &mut WalletOperation,
        channel_clearing: AccountId,
        wallet: AccountId,
        ledger_key: &str,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let channel = self.channel()?.clone();
        let token = card_token(operation)?;
        let hold_key = step_key(ledger_key, "hold");
        let hold_id = match operation.hold {
            Some(hold) => hold,
            None => {
                let expires_at = now
                    .checked_add(SignedDuration::from_hours(24 * 30))
                    .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
                let hold = Command::CreateHold(NewHold {
                    debit_account_id: wallet,
                    credit_account_id: channel_clearing,
                    amount: operation.amount,
                    expires_at,
                    description: format!("withdrawal {} to card", operation.id),
                    metadata: BTreeMap::from([(
                        "wallet_operation".to_string(),
                        operation.id.clone(),
                    )]),
                });
                match self.submit_ledger(&hold_key, hold).await? {
                    Ok(Outcome::Hold(hold)) => {
                        operation.hold = Some(hold.id);
                        hold.id
                    }
                    Ok(other) => return Err(corrupt(&hold_key, format!("{other:?}"))),
                    Err(LedgerError::ExceedsCredits(_)) => {
                        fail(
                            operation,
                            "insufficient_balance",
                            format!("the wallet holds less than {}", operation.amount),
                        );
                        return Ok(());
                    }
                    Err(error) => {
                        fail(operation, error.code(), error.to_string());
                        return Ok(());
                    }
                }
            }
        };
        let payout_reference = reference(&operation.id, "payout")?;
        // A payout asked before may still be settling at the bank: ask first, pay once.
        let known = match channel.status(&payout_reference).await {
            Ok(Some(status)) => match status.operation {
                Operation::Payout(payout) => Some(payout.status),
                _ => None,
            },
            Ok(None) => None,
            Err(error) => return Err(unknown(&operation.id, error)),
        };
        let status = match known {
            Some(status) => status,
            None => match channel
                .payout(&PayoutRequest {
                    reference: payout_reference,
                    token,
                    amount: operation.amount,
                })
                .await
            {
                Ok(payout) => payout.status,
                Err(ChannelError::Refused { code, message }) => PayoutStatus::Returned {
                    code: format!("{code}: {message}"),
                },
                Err(error) => return Err(unknown(&operation.id, error)),
            },
        };
        match status {
            PayoutStatus::Pending => Ok(()),
            PayoutStatus::Paid => {
                let post = Command::PostHold {
                    hold_id,
                    amount: None,
                };
                match self
                    .submit_ledger(&step_key(ledger_key, "post"), post)
                    .await?
                {
                    Ok(_) => {
                        operation.status = WalletOperationStatus::Succeeded;
                        Ok(())
                    }
                    Err(error) => Err(PaymentServiceError::LedgerRefused {
                        key: ledger_key.to_string(),
                        message: error.to_string(),
                    }),
                }
            }
            PayoutStatus::Returned { code } => {
                match self
                    .submit_ledger(&step_key(ledger_key, "void"), Command::VoidHold { hold_id })
                    .await?
                {
                    Ok(_) | Err(LedgerError::HoldNotPending { .. }) => {}
                    Err(error) => {
                        return Err(PaymentServiceError::LedgerRefused {
                            key: ledger_key.to_string(),
                            message: error.to_string(),
                        })
                    }
                }
                fail(
                    operation,
                    "payout_returned",
                    format!(
                        "the bank returned the payout ({code}); the amount is back in the wallet"
                    ),
                );
                Ok(())
            }
        }
    }

    /// Sends a ledger command as the payment service; `Ok(Err(..))` is the ledger's refusal.
    async fn submit_ledger(
        &self,
        key: &str,
        command: Command,
    ) -> Result<Result<Outcome, LedgerError>, PaymentServiceError> {
        submit(self.writer(), PAYMENTS_SERVICE, key, command)
            .await
            .map_err(|unsent| match unsent {
                Unsent::KeyTaken(key) => key_taken(&key),
                Unsent::Unavailable(reason) => unknown(key, reason),
            })
    }
}

fn fail(operation: &mut WalletOperation, code: &str, message: String) {
    operation.status = WalletOperationStatus::Failed;
    operation.failure = Some(Failure {
        code: code.to_string(),
        message,
        leg: None,
    });
}

fn card_token(operation: &WalletOperation) -> Result<CardToken, PaymentServiceError> {
    let token = operation
        .card_token
        .as_deref()
        .ok_or_else(|| corrupt(&operation.id, "a card operation without a card"))?;
    CardToken::new(token).map_err(|error| corrupt("card token", error))
}

fn channel_id(text: Option<&str>) -> Result<ChannelId, PaymentServiceError> {
    let text = text.ok_or_else(|| corrupt("top-up", "no authorisation"))?;
    ChannelId::new(text).map_err(|error| corrupt("channel id", error))
}
