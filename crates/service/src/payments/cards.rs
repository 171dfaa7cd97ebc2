//! Saved cards: a customer saves the channel's token, and Tally keeps what may be shown
//! (last four digits, brand) and the channel's fingerprint of the number, never the number.

use crate::payments::accounts::check_customer;
use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_channel::{CardToken, ChannelError};
use tally_store::payments::CardRow;
use utoipa::ToSchema;

/// A saved card as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CardView {
    #[schema(example = "visa")]
    pub brand: String,
    pub customer: String,
    /// A stable hash of the card number, computed by the channel: the same card saved twice
    /// has one fingerprint (risk control counts cards by it).
    pub fingerprint: String,
    #[schema(example = "4242")]
    pub last_four: String,
    pub token: String,
}

impl From<CardRow> for CardView {
    fn from(row: CardRow) -> Self {
        CardView {
            brand: row.brand,
            customer: row.customer,
            fingerprint: row.fingerprint,
            last_four: row.last_four,
            token: row.token,
        }
    }
}

impl PaymentService {
    /// Saves the card the channel knows by `token` for `customer`. Saving it again for the
    /// same customer answers the card as saved; for another customer it is refused.
    pub async fn save_card(
        &self,
        customer: &str,
        token: &str,
        now: Timestamp,
    ) -> Result<CardView, PaymentServiceError> {
        check_customer(customer).map_err(PaymentServiceError::Invalid)?;
        tally_payments::funding::check_card_token(token)?;
        if let Some(saved) = self.database().card(token).await? {
            return owned_by(saved, customer);
        }
        let channel = self.channel()?;
        let token = CardToken::new(token)
            .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
        let details = match channel.card(&token).await {
            Ok(details) => details,
            Err(ChannelError::Refused { code, message }) => {
                return Err(PaymentServiceError::Invalid(format!(
                    "the channel does not know card {}: {message} ({code})",
                    token.as_str()
                )))
            }
            Err(error) => {
                return Err(PaymentServiceError::InFlight {
                    payment: format!("card {}", token.as_str()),
                    reason: error.to_string(),
                })
            }
        };
        let row = CardRow {
            token: details.token.as_str().to_string(),
            customer: customer.to_string(),
            last_four: details.last_four,
            brand: details.brand,
            fingerprint: details.fingerprint,
            created_at: now.as_microsecond(),
        };
        if self.database().insert_card(&row).await? {
            return Ok(row.into());
        }
        // Saved meanwhile by another request: answered as that one stands.
        match self.database().card(&row.token).await? {
            Some(saved) => owned_by(saved, customer),
            None => Err(PaymentServiceError::Contended(row.token)),
        }
    }

    /// The cards `customer` saved, oldest first.
    pub async fn cards(&self, customer: &str) -> Result<Vec<CardView>, PaymentServiceError> {
        Ok(self
            .database()
            .cards_of_customer(customer)
            .await?
            .into_iter()
            .map(CardView::from)
            .collect())
    }
}

fn owned_by(saved: CardRow, customer: &str) -> Result<CardView, PaymentServiceError> {
    if saved.customer == customer {
        Ok(saved.into())
    } else {
        Err(PaymentServiceError::ForeignSource {
            source_name: "card",
            reference: saved.token,
        })
    }
}
