//! The JSON the channel's HTTP API speaks, shared by [`crate::HttpChannel`] (client) and the
//! simulator (server) so the two cannot drift apart.
//!
//! Amounts are decimal strings in major units beside a `currency` field (`"amount":
//! "12.50", "currency": "CNY"`), parsed exactly with [`Amount::parse`]; a JSON number is
//! refused. Requests are read strictly (unknown fields refused); answers leniently, since a
//! bank may add fields.

use crate::channel::{
    Authorization, AuthorizationStatus, Capture, CardDetails, ChannelRefund, Operation,
    OperationStatus, Payout, PayoutStatus, RefundStatus, Void,
};
use crate::identifiers::{CardToken, ChannelId, Reference};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, Currency};

/// Reads a wire amount: a decimal string in major units and an ISO 4217 code.
pub fn amount_from_wire(value: &str, currency: &str) -> Result<Amount, String> {
    let currency = Currency::from_code(currency).map_err(|error| error.to_string())?;
    Amount::parse(value, currency).map_err(|error| error.to_string())
}

/// `POST /v1/authorizations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    pub reference: Reference,
    pub token: CardToken,
    pub amount: String,
    pub currency: String,
}

/// `POST /v1/authorizations/{channel_id}/capture` and `.../refunds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountBody {
    pub reference: Reference,
    pub amount: String,
    pub currency: String,
}

/// `POST /v1/authorizations/{channel_id}/void`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidBody {
    pub reference: Reference,
}

/// `POST /v1/payouts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutBody {
    pub reference: Reference,
    pub token: CardToken,
    pub amount: String,
    pub currency: String,
}

/// `GET /v1/cards/{token}` as the payment service reads it (the simulator answers more:
/// balances for tests, see `simulator::CardView`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardBody {
    pub token: CardToken,
    pub last_four: String,
    pub brand: String,
    pub fingerprint: String,
}

impl From<CardBody> for CardDetails {
    fn from(body: CardBody) -> Self {
        CardDetails {
            token: body.token,
            last_four: body.last_four,
            brand: body.brand,
            fingerprint: body.fingerprint,
        }
    }
}

/// Every refusal: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// The answer of every operation, and of `GET /v1/operations/{reference}`, tagged by
/// `operation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum OperationBody {
    Authorization {
        reference: Reference,
        occurred_at: Timestamp,
        channel_id: ChannelId,
        amount: String,
        currency: String,
        /// `authorized` or `declined`.
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decline_code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decline_message: Option<String>,
    },
    Capture {
        reference: Reference,
        occurred_at: Timestamp,
        channel_id: ChannelId,
        authorization_id: ChannelId,
        captured: String,
        released: String,
        currency: String,
    },
    Void {
        reference: Reference,
        occurred_at: Timestamp,
        channel_id: ChannelId,
        authorization_id: ChannelId,
        released: String,
        currency: String,
    },
    Refund {
        reference: Reference,
        occurred_at: Timestamp,
        channel_id: ChannelId,
        authorization_id: ChannelId,
        amount: String,
        currency: String,
        /// `succeeded`.
        status: String,
    },
    Payout {
        reference: Reference,
        occurred_at: Timestamp,
        channel_id: ChannelId,
        amount: String,
        currency: String,
        /// `pending`, `paid` or `returned`.
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        return_code: Option<String>,
    },
}

impl From<&OperationStatus> for OperationBody {
    fn from(status: &OperationStatus) -> Self {
        let reference = status.reference.clone();
        let occurred_at = status.occurred_at;
        match &status.operation {
            Operation::Authorization(authorization) => {
                let (status, decline_code, decline_message) = match &authorization.status {
                    AuthorizationStatus::Authorized => ("authorized", None, None),
                    AuthorizationStatus::Declined { code, message } => {
                        ("declined", Some(code.clone()), Some(message.clone()))
                    }
                };
                OperationBody::Authorization {
                    reference,
                    occurred_at,
                    channel_id: authorization.channel_id.clone(),
                    amount: authorization.amount.to_decimal_string(),
                    currency: authorization.amount.currency().code().to_string(),
                    status: status.to_string(),
                    decline_code,
                    decline_message,
                }
            }
            Operation::Capture(capture) => OperationBody::Capture {
                reference,
                occurred_at,
                channel_id: capture.channel_id.clone(),
                authorization_id: capture.authorization_id.clone(),
                captured: capture.captured.to_decimal_string(),
                released: capture.released.to_decimal_string(),
                currency: capture.captured.currency().code().to_string(),
            },
            Operation::Void(void) => OperationBody::Void {
                reference,
                occurred_at,
                channel_id: void.channel_id.clone(),
                authorization_id: void.authorization_id.clone(),
                released: void.released.to_decimal_string(),
                currency: void.released.currency().code().to_string(),
            },
            Operation::Refund(refund) => OperationBody::Refund {
                reference,
                occurred_at,
                channel_id: refund.channel_id.clone(),
                authorization_id: refund.authorization_id.clone(),
                amount: refund.amount.to_decimal_string(),
                currency: refund.amount.currency().code().to_string(),
                status: match refund.status {
                    RefundStatus::Succeeded => "succeeded".to_string(),
                },
            },
            Operation::Payout(payout) => {
                let (status, return_code) = match &payout.status {
                    PayoutStatus::Pending => ("pending", None),
                    PayoutStatus::Paid => ("paid", None),
                    PayoutStatus::Returned { code } => ("returned", Some(code.clone())),
                };
                OperationBody::Payout {
                    reference,
                    occurred_at,
                    channel_id: payout.channel_id.clone(),
                    amount: payout.amount.to_decimal_string(),
                    currency: payout.amount.currency().code().to_string(),
                    status: status.to_string(),
                    return_code,
                }
            }
        }
    }
}

impl TryFrom<OperationBody> for OperationStatus {
    type Error = String;

    fn try_from(body: OperationBody) -> Result<Self, String> {
        let unknown_status = |status: &str| format!("unknown operation status {status:?}");
        let (reference, occurred_at, operation) = match body {
            OperationBody::Authorization {
                reference,
                occurred_at,
                channel_id,
                amount,
                currency,
                status,
                decline_code,
                decline_message,
            } => {
                let status = match status.as_str() {
                    "authorized" => AuthorizationStatus::Authorized,
                    "declined" => AuthorizationStatus::Declined {
                        code: decline_code.ok_or("a decline without decline_code")?,
                        message: decline_message.unwrap_or_default(),
                    },
                    other => return Err(unknown_status(other)),
                };
                let authorization = Authorization {
                    channel_id,
                    amount: amount_from_wire(&amount, &currency)?,
                    status,
                };
                (
                    reference,
                    occurred_at,
                    Operation::Authorization(authorization),
                )
            }
            OperationBody::Capture {
                reference,
                occurred_at,
                channel_id,
                authorization_id,
                captured,
                released,
                currency,
            } => {
                let capture = Capture {
                    channel_id,
                    authorization_id,
                    captured: amount_from_wire(&captured, &currency)?,
                    released: amount_from_wire(&released, &currency)?,
                };
                (reference, occurred_at, Operation::Capture(capture))
            }
            OperationBody::Void {
                reference,
                occurred_at,
                channel_id,
                authorization_id,
                released,
                currency,
            } => {
                let void = Void {
                    channel_id,
                    authorization_id,
                    released: amount_from_wire(&released, &currency)?,
                };
                (reference, occurred_at, Operation::Void(void))
            }
            OperationBody::Refund {
                reference,
                occurred_at,
                channel_id,
                authorization_id,
                amount,
                currency,
                status,
            } => {
                let status = match status.as_str() {
                    "succeeded" => RefundStatus::Succeeded,
                    other => return Err(unknown_status(other)),
                };
                let refund = ChannelRefund {
                    channel_id,
                    authorization_id,
                    amount: amount_from_wire(&amount, &currency)?,
                    status,
                };
                (reference, occurred_at, Operation::Refund(refund))
            }
            OperationBody::Payout {
                reference,
                occurred_at,
                channel_id,
                amount,
                currency,
                status,
                return_code,
            } => {
                let status = match status.as_str() {
                    "pending" => PayoutStatus::Pending,
                    "paid" => PayoutStatus::Paid,
                    "returned" => PayoutStatus::Returned {
                        code: return_code.ok_or("a returned payout without return_code")?,
                    },
                    other => return Err(unknown_status(other)),
                };
                let payout = Payout {
                    channel_id,
                    amount: amount_from_wire(&amount, &currency)?,
                    status,
                };
                (reference, occurred_at, Operation::Payout(payout))
            }
        };
        Ok(OperationStatus {
            reference,
            occurred_at,
            operation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    fn id(text: &str) -> ChannelId {
        ChannelId::new(text).expect("a valid channel id")
    }

    #[test]
    fn every_operation_survives_the_wire() {
        let operations = [
            Operation::Authorization(Authorization {
                channel_id: id("auth_1"),
                amount: cny(1050),
                status: AuthorizationStatus::Declined {
                    code: "do_not_honor".into(),
                    message: "declined by the issuer".into(),
                },
            }),
            Operation::Capture(Capture {
                channel_id: id("cap_1"),
                authorization_id: id("auth_1"),
                captured: cny(700),
                released: cny(350),
            }),
            Operation::Void(Void {
                channel_id: id("void_1"),
                authorization_id: id("auth_1"),
                released: cny(1050),
            }),
            Operation::Refund(ChannelRefund {
                channel_id: id("ref_1"),
                authorization_id: id("auth_1"),
                amount: cny(1),
                status: RefundStatus::Succeeded,
            }),
            Operation::Payout(Payout {
                channel_id: id("pay_1"),
                amount: cny(99),
                status: PayoutStatus::Returned {
                    code: "account_closed".into(),
                },
            }),
        ];
        for operation in operations {
            let status = OperationStatus {
                reference: Reference::new("order-1").expect("a valid reference"),
                occurred_at: Timestamp::UNIX_EPOCH,
                operation,
            };
            let json = serde_json::to_string(&OperationBody::from(&status)).expect("json");
            let body: OperationBody = serde_json::from_str(&json).expect("readable");
            assert_eq!(OperationStatus::try_from(body), Ok(status), "{json}");
        }
    }

    #[test]
    fn a_json_number_never_carries_an_amount() {
        let json = r#"{"reference":"r","amount":10.5,"currency":"CNY"}"#;
        assert!(serde_json::from_str::<AmountBody>(json).is_err());
        assert!(amount_from_wire("10.505", "CNY").is_err());
        assert!(amount_from_wire("10.50", "XXX").is_err());
        assert_eq!(amount_from_wire("10.5", "CNY"), Ok(cny(1050)));
    }
}
