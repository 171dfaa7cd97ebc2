//! Wire types of the HTTP API: what clients send and receive. Amounts travel as decimal
//! strings in major units beside their currency ("1234.50" CNY), never as JSON numbers.

pub mod consortium;
pub mod credit;
pub mod disputes;
pub mod merchants;
pub mod payments;
pub mod payouts;
pub mod recon;
pub mod risk;

use crate::error::ApiError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, Currency};
use tally_ledger::{
    Account, AccountFlags, AccountKind, AccountState, Balance, Entry, Hold, LegRecord, NewAccount,
    NewEntry, NewHold, NewLeg, Side,
};
use utoipa::ToSchema;
use uuid::Uuid;

pub(crate) fn parse_currency(code: &str) -> Result<Currency, ApiError> {
    Currency::from_code(code)
        .map_err(|error| ApiError::unprocessable("unknown_currency", error.to_string()))
}

pub(crate) fn parse_amount(text: &str, currency: Currency) -> Result<Amount, ApiError> {
    Amount::parse(text, currency)
        .map_err(|error| ApiError::unprocessable("invalid_amount", error.to_string()))
}

/// An amount in a request body, `{"value": "12.50", "currency": "CNY"}`, read as text and
/// parsed by the handler ([`AmountInput::parse`]), so that a value or a currency that does
/// not parse answers `422 invalid_amount` / `unknown_currency` as the ledger routes do,
/// rather than failing the whole body with `400 invalid_request`. It serialises as the
/// parsed [`Amount`] does (so a credit request's fingerprint is that of the amount, however
/// the value was written, as before amounts were read as text), or as given when it does
/// not parse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountInput {
    value: String,
    currency: String,
}

impl AmountInput {
    pub fn parse(&self) -> Result<Amount, ApiError> {
        let currency = parse_currency(&self.currency)?;
        parse_amount(&self.value, currency)
    }
}

impl Serialize for AmountInput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct AsGiven<'a> {
            value: &'a str,
            currency: &'a str,
        }
        match self.parse() {
            Ok(amount) => amount.serialize(serializer),
            Err(_) => AsGiven {
                value: &self.value,
                currency: &self.currency,
            }
            .serialize(serializer),
        }
    }
}

// The three types below only name, in the OpenAPI document, the amounts requests carry as
// `AmountInput` by the sign they take.

/// An amount above zero, `{"value": "12.50", "currency": "CNY"}`: the value is a decimal
/// string with no more fraction digits than the currency has (none for JPY, three for
/// KWD) and at most 18 digits.
#[derive(Debug, ToSchema)]
pub struct PositiveAmount {
    #[schema(example = "12.50")]
    pub value: String,
    #[schema(example = "CNY")]
    pub currency: String,
}

/// An amount of zero or more (a limit, an income), `{"value": "1234.50", "currency":
/// "CNY"}`: digits as in `PositiveAmount`.
#[derive(Debug, ToSchema)]
pub struct NotNegativeAmount {
    #[schema(example = "1234.50")]
    pub value: String,
    #[schema(example = "CNY")]
    pub currency: String,
}

/// An amount of either sign, `{"value": "-12.50", "currency": "CNY"}`: digits as in
/// `PositiveAmount`, with an optional leading `-`.
#[derive(Debug, ToSchema)]
pub struct SignedAmount {
    #[schema(example = "-12.50")]
    pub value: String,
    #[schema(example = "CNY")]
    pub currency: String,
}

fn decimal(minor: i64, currency: Currency) -> String {
    Amount::new(minor, currency).to_decimal_string()
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FlagsBody {
    /// Posted plus pending debits may never exceed posted credits.
    pub debits_must_not_exceed_credits: bool,
    /// Posted plus pending credits may never exceed posted debits.
    pub credits_must_not_exceed_debits: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// Unique chart-of-accounts code, e.g. `1001-cash`.
    pub code: String,
    /// asset, liability, equity, income or expense.
    #[schema(example = "asset")]
    pub kind: String,
    /// ISO 4217 code.
    #[schema(example = "CNY")]
    pub currency: String,
    #[serde(default)]
    pub flags: FlagsBody,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl CreateAccountRequest {
    pub fn into_new_account(self) -> Result<NewAccount, ApiError> {
        let kind = AccountKind::parse(&self.kind).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_account_kind",
                format!(
                    "kind {:?} is not asset, liability, equity, income or expense",
                    self.kind
                ),
            )
        })?;
        Ok(NewAccount {
            code: self.code,
            kind,
            currency: parse_currency(&self.currency)?,
            flags: AccountFlags {
                debits_must_not_exceed_credits: self.flags.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits: self.flags.credits_must_not_exceed_debits,
            },
            metadata: self.metadata,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceBody {
    pub currency: String,
    #[schema(example = "1234.50")]
    pub debits_posted: String,
    pub credits_posted: String,
    pub debits_pending: String,
    pub credits_pending: String,
    /// Posted debits minus posted credits.
    pub net_debit: String,
}

impl BalanceBody {
    pub fn new(balance: &Balance, currency: Currency) -> Self {
        let net = balance.debits_posted.saturating_sub(balance.credits_posted);
        Self {
            currency: currency.code().to_string(),
            debits_posted: decimal(balance.debits_posted, currency),
            credits_posted: decimal(balance.credits_posted, currency),
            debits_pending: decimal(balance.debits_pending, currency),
            credits_pending: decimal(balance.credits_pending, currency),
            net_debit: decimal(net, currency),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountBody {
    pub id: Uuid,
    pub code: String,
    pub kind: String,
    pub currency: String,
    pub flags: FlagsBody,
    pub metadata: BTreeMap<String, String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The Tally service that opened the account and alone may move it (`credit`); absent
    /// for an account a client opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Present when the account is read; absent in the reply to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<BalanceBody>,
}

impl AccountBody {
    pub fn new(account: &Account, balance: Option<&Balance>) -> Self {
        Self {
            id: account.id.as_uuid(),
            code: account.code.clone(),
            kind: account.kind.as_str().to_string(),
            currency: account.currency.code().to_string(),
            flags: FlagsBody {
                debits_must_not_exceed_credits: account.flags.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits: account.flags.credits_must_not_exceed_debits,
            },
            metadata: account.metadata.clone(),
            created_at: account.created_at,
            owner: account.owner.clone(),
            balance: balance.map(|balance| BalanceBody::new(balance, account.currency)),
        }
    }

    pub fn from_state(state: &AccountState) -> Self {
        Self::new(&state.account, Some(&state.balance))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AsOfBalanceBody {
    pub account_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub as_of: Timestamp,
    pub balance: BalanceBody,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegBody {
    pub account_id: Uuid,
    /// debit or credit.
    #[schema(example = "debit")]
    pub side: String,
    /// Decimal string in major units, e.g. "12.50"; never a JSON number.
    #[schema(example = "12.50")]
    pub amount: String,
    #[schema(example = "CNY")]
    pub currency: String,
}

impl LegBody {
    fn into_new_leg(self) -> Result<NewLeg, ApiError> {
        let side = Side::parse(&self.side).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_side",
                format!("side {:?} is not debit or credit", self.side),
            )
        })?;
        let currency = parse_currency(&self.currency)?;
        Ok(NewLeg {
            account_id: AccountId(self.account_id),
            side,
            amount: parse_amount(&self.amount, currency)?,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostEntryRequest {
    /// Two to 128 legs that balance in each currency.
    #[schema(min_items = 2, max_items = 128)]
    pub legs: Vec<LegBody>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl PostEntryRequest {
    pub fn into_new_entry(self) -> Result<NewEntry, ApiError> {
        Ok(NewEntry {
            legs: self
                .legs
                .into_iter()
                .map(LegBody::into_new_leg)
                .collect::<Result<_, _>>()?,
            description: self.description,
            metadata: self.metadata,
        })
    }
}

/// Most entries in one `POST /v1/entries/batch`.
pub const BATCH_ENTRIES_MAX: usize = 1_000;

/// One entry of a batch, with its own idempotency key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEntryRequest {
    /// The entry's idempotency key, as the `Idempotency-Key` header of `POST /v1/entries`
    /// (the two share one key space: a key used by either answers the same entry).
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: String,
    pub entry: PostEntryRequest,
}

/// Entries applied in order, each on its own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostEntriesBatchRequest {
    /// One to 1,000 entries, each with a key no other entry of the batch uses.
    #[schema(min_items = 1, max_items = 1000)]
    pub entries: Vec<BatchEntryRequest>,
}

/// What became of one entry of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchEntryStatus {
    /// Posted now, or earlier under the same key with the same legs (a replay).
    Applied,
    /// Not posted: `error` says why, as `POST /v1/entries` would have.
    Refused,
}

/// One entry's result, at the entry's place in the batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchEntryResult {
    /// The entry, when applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryBody>,
    /// Why it was refused; `storage_unavailable` means retry with the same key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorDetail>,
    /// The HTTP status `POST /v1/entries` would have answered for this entry alone.
    pub http_status: u16,
    pub idempotency_key: String,
    pub status: BatchEntryStatus,
}

/// The results of a batch, one per entry in the batch's order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntriesBatchBody {
    /// Entries applied.
    pub applied: usize,
    /// Entries refused.
    pub refused: usize,
    pub results: Vec<BatchEntryResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryBody {
    pub id: Uuid,
    pub legs: Vec<LegBody>,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    #[schema(value_type = String, format = DateTime)]
    pub posted_at: Timestamp,
    pub hold_id: Option<Uuid>,
}

impl EntryBody {
    pub fn new(entry: &Entry) -> Self {
        Self {
            id: entry.id.as_uuid(),
            legs: entry
                .legs
                .iter()
                .map(|leg| LegBody {
                    account_id: leg.account_id.as_uuid(),
                    side: leg.side.as_str().to_string(),
                    amount: leg.amount.to_decimal_string(),
                    currency: leg.amount.currency().code().to_string(),
                })
                .collect(),
            description: entry.description.clone(),
            metadata: entry.metadata.clone(),
            posted_at: entry.posted_at,
            hold_id: entry.hold_id.map(|id| id.as_uuid()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHoldRequest {
    /// The account reserved from (debited when posted).
    pub debit_account_id: Uuid,
    /// The account reserved for (credited when posted).
    pub credit_account_id: Uuid,
    #[schema(example = "99.00")]
    pub amount: String,
    #[schema(example = "CNY")]
    pub currency: String,
    /// Deadline (RFC 3339): the hold expires and its reservation is released then.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl CreateHoldRequest {
    pub fn into_new_hold(self) -> Result<NewHold, ApiError> {
        let currency = parse_currency(&self.currency)?;
        Ok(NewHold {
            debit_account_id: AccountId(self.debit_account_id),
            credit_account_id: AccountId(self.credit_account_id),
            amount: parse_amount(&self.amount, currency)?,
            expires_at: self.expires_at,
            description: self.description,
            metadata: self.metadata,
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostHoldRequest {
    /// Amount to post; the whole hold when absent. The rest is released.
    pub amount: Option<String>,
    /// Currency of `amount`; required with it.
    pub currency: Option<String>,
}

impl PostHoldRequest {
    pub fn amount(&self) -> Result<Option<Amount>, ApiError> {
        match (&self.amount, &self.currency) {
            (None, None) => Ok(None),
            (Some(amount), Some(currency)) => {
                Ok(Some(parse_amount(amount, parse_currency(currency)?)?))
            }
            _ => Err(ApiError::unprocessable(
                "invalid_request",
                "amount and currency go together: give both or neither",
            )),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldBody {
    pub id: Uuid,
    pub debit_account_id: Uuid,
    pub credit_account_id: Uuid,
    pub amount: String,
    pub currency: String,
    /// pending, posted, voided or expired.
    pub status: String,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    pub posted_amount: Option<String>,
    pub entry_id: Option<Uuid>,
}

impl HoldBody {
    pub fn new(hold: &Hold) -> Self {
        Self {
            id: hold.id.as_uuid(),
            debit_account_id: hold.debit_account_id.as_uuid(),
            credit_account_id: hold.credit_account_id.as_uuid(),
            amount: hold.amount.to_decimal_string(),
            currency: hold.amount.currency().code().to_string(),
            status: hold.status.as_str().to_string(),
            description: hold.description.clone(),
            metadata: hold.metadata.clone(),
            created_at: hold.created_at,
            expires_at: hold.expires_at,
            resolved_at: hold.resolved_at,
            posted_amount: hold.posted_amount.map(|amount| amount.to_decimal_string()),
            entry_id: hold.entry_id.map(|id| id.as_uuid()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostedHoldBody {
    pub hold: HoldBody,
    pub entry: EntryBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLegBody {
    /// The leg's position in the account's history; pass the last one as `after`.
    pub sequence: i64,
    pub entry_id: Uuid,
    pub side: String,
    pub amount: String,
    pub currency: String,
    #[schema(value_type = String, format = DateTime)]
    pub posted_at: Timestamp,
    pub debits_posted_after: String,
    pub credits_posted_after: String,
}

impl AccountLegBody {
    pub fn new(leg: &LegRecord) -> Self {
        let currency = leg.amount.currency();
        Self {
            sequence: leg.sequence,
            entry_id: leg.entry_id.as_uuid(),
            side: leg.side.as_str().to_string(),
            amount: leg.amount.to_decimal_string(),
            currency: currency.code().to_string(),
            posted_at: leg.posted_at,
            debits_posted_after: decimal(leg.balance_after.debits_posted, currency),
            credits_posted_after: decimal(leg.balance_after.credits_posted, currency),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLegPage {
    pub legs: Vec<AccountLegBody>,
    /// Cursor for the next page (`?after=`), absent on the last page.
    pub next_after: Option<i64>,
}
