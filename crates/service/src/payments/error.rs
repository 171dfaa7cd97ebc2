//! Why the payment service refused or could not finish a request. Each kind has a stable
//! code; the HTTP layer maps kinds to statuses.

use crate::payments::views::PaymentView;
use crate::service_accounts::ServiceAccountError;
use tally_payments::PaymentError;
use tally_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The payment rules refused it; nothing changed.
    #[error(transparent)]
    Rules(#[from] PaymentError),
    #[error("payment {0} does not exist")]
    PaymentNotFound(String),
    #[error("idempotency key {0:?} was already used for a different request")]
    KeyReused(String),
    #[error("{0}")]
    Invalid(String),
    #[error("customer {customer} has no {balance} in {currency}")]
    BalanceNotFound {
        customer: String,
        balance: &'static str,
        currency: String,
    },
    #[error("credit account {0} does not exist")]
    CreditAccountNotFound(i64),
    #[error("{source_name} {reference} belongs to another customer")]
    ForeignSource {
        source_name: &'static str,
        reference: String,
    },
    #[error("card {0} is not saved; save it first with POST /v1/cards")]
    CardNotFound(String),
    /// Credit lines need the credit service, which this process does not run.
    #[error("the credit service is not running in this process")]
    CreditUnavailable,
    /// Cards need a channel, which is not configured.
    #[error("no payment channel is configured ([payments] channel_url)")]
    ChannelNotConfigured,
    /// A source refused its part: the payment failed, and every part already reserved was
    /// released before this answer.
    #[error("payment {} declined: {message} ({code})", payment.id)]
    Declined {
        code: String,
        message: String,
        payment: Box<PaymentView>,
    },
    /// The bank refused a wallet operation's card step, or the wallet or vault holds too
    /// little: the operation failed and nothing stayed moved.
    #[error("wallet operation {} failed: {message} ({code})", operation.id)]
    WalletDeclined {
        code: String,
        message: String,
        operation: Box<crate::payments::wallets::WalletOperationView>,
    },
    /// A step's outcome is unknown (the ledger or the channel did not answer): it stays in
    /// the intent log, and a retry with the same key, or recovery, finishes it.
    #[error("payment {payment} is in flight: {reason}; retry with the same idempotency key")]
    InFlight { payment: String, reason: String },
    /// Risk control asked for a one-time code, and the confirm carried none.
    #[error("payment {0} waits for the one-time code sent to the shopper; confirm with it")]
    StepUpRequired(String),
    #[error("wrong one-time code for payment {payment}; {attempts_left} attempts left")]
    StepUpCodeWrong { payment: String, attempts_left: u32 },
    /// Another process changed the payment meanwhile; retry.
    #[error("payment {0} changed under this request; retry")]
    Contended(String),
    #[error("{0}")]
    LedgerConflict(String),
    /// The ledger refused a movement the payment rules produced: a bug or a hand-made change
    /// to the payment service's accounts.
    #[error("the ledger refused {key}: {message}")]
    LedgerRefused { key: String, message: String },
    /// The channel refused a step that cannot be refused in a consistent state (a void of
    /// an authorisation it holds): an operator must look at the card's operations.
    #[error("the channel refused {action}: {message} ({code})")]
    ChannelRefused {
        action: &'static str,
        code: String,
        message: String,
    },
    #[error("webhook endpoint {0} does not exist")]
    WebhookEndpointNotFound(String),
    #[error("webhook event {0} does not exist")]
    WebhookEventNotFound(String),
    #[error("invalid webhook URL {0}")]
    InvalidWebhookUrl(String),
    #[error("invalid webhook events: {0}")]
    InvalidWebhookEvents(String),
    /// A merchant rule refused it (a field that does not parse, a status move not allowed).
    #[error(transparent)]
    Merchant(#[from] tally_payments::MerchantError),
    #[error("merchant {0} does not exist; onboard it first with POST /v1/merchants")]
    MerchantNotFound(String),
    /// A payment names a merchant that was never onboarded.
    #[error("merchant {0} is not onboarded; onboard it first with POST /v1/merchants")]
    MerchantUnknown(String),
    #[error("merchant {id} is {status} and takes no payments")]
    MerchantNotActive { id: String, status: &'static str },
    #[error("merchant {id} settles in {merchant}, the payment is in {payment}")]
    MerchantCurrencyMismatch {
        id: String,
        merchant: String,
        payment: String,
    },
    #[error("merchant {0} exists already")]
    MerchantExists(String),
    #[error("a merchant with this licence number exists already")]
    MerchantLicenceTaken,
    /// Merchants' sealed fields need the personal-data keys.
    #[error("merchants need personal-data keys, and none are configured")]
    PrivacyKeysNotConfigured,
    /// The run's date is not over yet somewhere a merchant could be paid on it.
    #[error("business date {date} is not closed yet: {reason}")]
    SettlementDateNotClosed { date: String, reason: String },
    #[error("settlement run {0} does not exist")]
    SettlementRunNotFound(String),
    #[error("dispute {0} does not exist")]
    DisputeNotFound(String),
    /// A dispute rule refused it (evidence after the deadline, a closed dispute, …).
    #[error(transparent)]
    Dispute(#[from] tally_payments::DisputeError),
}

impl PaymentServiceError {
    /// The stable error code.
    pub fn code(&self) -> &str {
        match self {
            PaymentServiceError::Store(_) => "storage_unavailable",
            PaymentServiceError::Rules(error) => error.code(),
            PaymentServiceError::PaymentNotFound(_) => "payment_not_found",
            PaymentServiceError::KeyReused(_) => "idempotency_key_reused",
            PaymentServiceError::Invalid(_) => "invalid_request",
            PaymentServiceError::BalanceNotFound { .. } => "balance_not_found",
            PaymentServiceError::CreditAccountNotFound(_) => "credit_account_not_found",
            PaymentServiceError::ForeignSource { .. } => "funding_foreign_source",
            PaymentServiceError::CardNotFound(_) => "card_not_found",
            PaymentServiceError::CreditUnavailable => "credit_unavailable",
            PaymentServiceError::ChannelNotConfigured => "channel_not_configured",
            PaymentServiceError::Declined { code, .. } => code,
            PaymentServiceError::WalletDeclined { code, .. } => code,
            PaymentServiceError::InFlight { .. } => "payment_in_flight",
            PaymentServiceError::StepUpRequired(_) => "step_up_code_required",
            PaymentServiceError::StepUpCodeWrong { .. } => "step_up_code_wrong",
            PaymentServiceError::Contended(_) => "payment_contended",
            PaymentServiceError::LedgerConflict(_) => "payments_ledger_conflict",
            PaymentServiceError::LedgerRefused { .. } => "payments_ledger_refused",
            PaymentServiceError::ChannelRefused { .. } => "channel_refused",
            PaymentServiceError::WebhookEndpointNotFound(_) => "webhook_endpoint_not_found",
            PaymentServiceError::WebhookEventNotFound(_) => "webhook_event_not_found",
            PaymentServiceError::InvalidWebhookUrl(_) => "invalid_webhook_url",
            PaymentServiceError::InvalidWebhookEvents(_) => "invalid_webhook_events",
            PaymentServiceError::Merchant(error) => error.code(),
            PaymentServiceError::MerchantNotFound(_) => "merchant_not_found",
            PaymentServiceError::MerchantUnknown(_) => "merchant_unknown",
            PaymentServiceError::MerchantNotActive { .. } => "merchant_not_active",
            PaymentServiceError::MerchantCurrencyMismatch { .. } => "merchant_currency_mismatch",
            PaymentServiceError::MerchantExists(_) => "merchant_exists",
            PaymentServiceError::MerchantLicenceTaken => "merchant_licence_taken",
            PaymentServiceError::PrivacyKeysNotConfigured => "privacy_keys_not_configured",
            PaymentServiceError::SettlementDateNotClosed { .. } => "settlement_date_not_closed",
            PaymentServiceError::SettlementRunNotFound(_) => "settlement_run_not_found",
            PaymentServiceError::DisputeNotFound(_) => "dispute_not_found",
            PaymentServiceError::Dispute(error) => error.code(),
        }
    }
}

impl From<ServiceAccountError> for PaymentServiceError {
    fn from(error: ServiceAccountError) -> Self {
        match error {
            ServiceAccountError::Store(error) => PaymentServiceError::Store(error),
            ServiceAccountError::Conflict(message) => PaymentServiceError::LedgerConflict(message),
            ServiceAccountError::Posting { key, error } => PaymentServiceError::LedgerRefused {
                key,
                message: error.to_string(),
            },
        }
    }
}
