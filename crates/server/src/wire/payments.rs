//! Wire types of the payment routes: what a merchant sends to create, capture and refund a
//! payment. Answers are the payment service's `PaymentView`.

use crate::error::ApiError;
#[allow(unused_imports)]
use crate::wire::{AmountInput, PositiveAmount};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_core::Amount;
use tally_payments::{CaptureMethod, Funding, RefundPolicy, Share, Source};
use tally_service::payments::{CreatePayment, PaymentView};
use utoipa::ToSchema;

/// One source of a payment and its share: a fixed `amount`, or the rest of the order when
/// `amount` is absent (one source at most may take the rest).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FundingRequest {
    /// The customer's wallet balance.
    Wallet {
        #[schema(value_type = Option<PositiveAmount>)]
        amount: Option<AmountInput>,
    },
    /// The customer's vault (stored-value fund); paying is an instant redemption.
    Vault {
        #[schema(value_type = Option<PositiveAmount>)]
        amount: Option<AmountInput>,
    },
    /// The customer's credit account, repaid in `term` monthly installments.
    CreditLine {
        #[schema(value_type = Option<PositiveAmount>)]
        amount: Option<AmountInput>,
        #[schema(minimum = 1)]
        credit_account_id: i64,
        /// 1, 3, 6, 12 or 24.
        #[schema(minimum = 1, maximum = 24)]
        term: u32,
    },
    /// A card the customer saved, by the channel's token.
    Card {
        #[schema(value_type = Option<PositiveAmount>)]
        amount: Option<AmountInput>,
        card_token: String,
    },
}

impl FundingRequest {
    fn parse(&self) -> Result<Funding, ApiError> {
        let (source, amount) = match self {
            FundingRequest::Wallet { amount } => (Source::Wallet, amount),
            FundingRequest::Vault { amount } => (Source::Vault, amount),
            FundingRequest::CreditLine {
                amount,
                credit_account_id,
                term,
            } => (
                Source::CreditLine {
                    account: *credit_account_id,
                    term: *term,
                },
                amount,
            ),
            FundingRequest::Card { amount, card_token } => (
                Source::Card {
                    token: card_token.clone(),
                },
                amount,
            ),
        };
        let share = match amount {
            Some(amount) => Share::Fixed(amount.parse()?),
            None => Share::Rest,
        };
        Ok(Funding { source, share })
    }
}

/// When a payment is captured.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethodRequest {
    /// As soon as every source is reserved.
    Automatic,
    /// When the merchant asks (`POST /v1/payments/{id}/capture`), within 7 days.
    Manual,
}

/// A merchant's order and the sources that pay for it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    pub merchant_id: String,
    pub order_reference: String,
    /// The paying customer (1 to 64 ASCII letters, digits, `-`, `_`, `.`).
    pub customer: String,
    #[schema(value_type = PositiveAmount)]
    pub amount: AmountInput,
    /// Until when the shopper may complete it (RFC 3339); 30 minutes from now by default,
    /// at most 24 hours ahead.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// `automatic` by default.
    #[serde(default)]
    pub capture_method: Option<CaptureMethodRequest>,
    /// The sources in the shopper's order: 1 to 4, each kind once.
    #[schema(min_items = 1, max_items = 4)]
    pub fundings: Vec<FundingRequest>,
}

impl CreatePaymentRequest {
    pub fn parse(&self) -> Result<CreatePayment, ApiError> {
        Ok(CreatePayment {
            merchant_id: self.merchant_id.clone(),
            order_reference: self.order_reference.clone(),
            customer: self.customer.clone(),
            amount: self.amount.parse()?,
            expires_at: self.expires_at,
            capture_method: match self.capture_method {
                Some(CaptureMethodRequest::Manual) => CaptureMethod::Manual,
                _ => CaptureMethod::Automatic,
            },
            fundings: self
                .fundings
                .iter()
                .map(FundingRequest::parse)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// How much to capture: the whole payment when `amount` is absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapturePaymentRequest {
    #[serde(default)]
    #[schema(value_type = Option<PositiveAmount>)]
    pub amount: Option<AmountInput>,
}

impl CapturePaymentRequest {
    pub fn parse(&self) -> Result<Option<Amount>, ApiError> {
        self.amount.as_ref().map(AmountInput::parse).transpose()
    }
}

/// Where a refund goes back to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundPolicyRequest {
    /// The last source listed first (the default).
    ReverseFunding,
    /// In proportion to what each source can still get back.
    ProRata,
    /// Tally's own sources first, the card last.
    CardLast,
}

/// A refund of a captured payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundPaymentRequest {
    #[schema(value_type = PositiveAmount)]
    pub amount: AmountInput,
    #[serde(default)]
    pub policy: Option<RefundPolicyRequest>,
}

impl RefundPaymentRequest {
    pub fn parse(&self) -> Result<(Amount, RefundPolicy), ApiError> {
        let policy = match self.policy {
            None | Some(RefundPolicyRequest::ReverseFunding) => RefundPolicy::ReverseFunding,
            Some(RefundPolicyRequest::ProRata) => RefundPolicy::ProRata,
            Some(RefundPolicyRequest::CardLast) => RefundPolicy::CardLast,
        };
        Ok((self.amount.parse()?, policy))
    }
}

/// A declined payment: why, and the payment as it ended (every source released).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeclinedBody {
    pub error: crate::error::ErrorDetail,
    pub payment: PaymentView,
}

/// A card to save: the token the channel gave when the shopper entered the card there.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveCardRequest {
    pub customer: String,
    /// The channel's token, never the card number (12 to 19 digits are refused).
    pub card_token: String,
}

/// Whose cards to list.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CardsQuery {
    pub customer: String,
}

/// A customer's saved cards.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardList {
    pub cards: Vec<tally_service::payments::cards::CardView>,
}

/// Which currency's balances to show.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalancesQuery {
    /// ISO 4217 code; `CNY` by default.
    #[serde(default)]
    pub currency: Option<String>,
}

impl BalancesQuery {
    pub fn currency(&self) -> Result<tally_core::Currency, ApiError> {
        super::parse_currency(self.currency.as_deref().unwrap_or("CNY"))
    }
}

/// Money between the wallet and a saved card.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardMovementRequest {
    pub card_token: String,
    #[schema(value_type = PositiveAmount)]
    pub amount: AmountInput,
}

/// Money from the wallet to a saved card (a payout to the customer), decided by the risk
/// engine first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletWithdrawalRequest {
    pub card_token: String,
    #[schema(value_type = PositiveAmount)]
    pub amount: AmountInput,
    /// The device the customer withdraws from (the lender's device id), for the risk engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The customer's IP address, for the risk engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// Money between the wallet and the vault.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VaultMovementRequest {
    #[schema(value_type = PositiveAmount)]
    pub amount: AmountInput,
}

/// A wallet operation that failed: why, and the operation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WalletDeclinedBody {
    pub error: crate::error::ErrorDetail,
    pub operation: tally_service::payments::wallets::WalletOperationView,
}

/// What the shopper's device adds to a confirm.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The device's identifier, for risk control.
    #[serde(default)]
    pub device: Option<String>,
    /// The shopper's IP address, for risk control.
    #[serde(default)]
    pub ip: Option<String>,
    /// The one-time code sent to the shopper, when the payment is in `requires_action`.
    #[serde(default)]
    pub code: Option<String>,
}

impl ConfirmRequest {
    pub fn into_input(self) -> tally_service::payments::ConfirmInput {
        tally_service::payments::ConfirmInput {
            device: self.device,
            ip: self.ip,
            code: self.code,
        }
    }
}

/// An analyst's decision on a payment under review.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Approve,
    Reject,
}

/// An analyst's decision on a payment under review.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub decision: ReviewDecision,
}

/// The last day to accrue the vault's yield for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VaultYieldRequest {
    #[schema(value_type = String, format = Date)]
    pub date: jiff::civil::Date,
}

/// A merchant's webhook endpoint: where the events of its payments go, and which.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpointRequest {
    /// The merchant whose payments' events the endpoint gets (a payment's `merchant_id`).
    pub merchant_id: String,
    /// An absolute `http` or `https` URL; events are POSTed to it.
    pub url: String,
    /// The event types it wants: `payment.created`, `payment.authorized`,
    /// `payment.captured`, `payment.refunded`, `refund.succeeded`, … (see the tag).
    pub events: Vec<String>,
}

impl CreateWebhookEndpointRequest {
    pub fn parse(self) -> tally_service::payments::webhooks::NewWebhookEndpoint {
        tally_service::payments::webhooks::NewWebhookEndpoint {
            merchant_id: self.merchant_id,
            url: self.url,
            events: self.events,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WebhookEndpointsQuery {
    /// Only this merchant's endpoints.
    pub merchant_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WebhookDeliveriesQuery {
    /// The deliveries to this endpoint, newest event first.
    pub endpoint: Option<String>,
    /// The deliveries of this event.
    pub event: Option<String>,
}
