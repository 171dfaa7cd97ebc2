//! What pays for an order: an ordered list of sources, each a fixed amount or the rest, and
//! the rule that turns that list into exact amounts summing to the order.

use crate::error::PaymentError;
use serde::{Deserialize, Serialize};
use tally_core::Amount;

/// The installment terms a shopper may pick for the credit-line part of a payment.
pub const INSTALLMENT_TERMS: [u32; 5] = [1, 3, 6, 12, 24];

/// The most sources one payment may combine: wallet, vault, credit line and a card.
pub const FUNDINGS_MAX: usize = 4;

/// Longest card token accepted from a channel, in bytes.
pub const CARD_TOKEN_LENGTH_MAX: usize = 128;

/// Where the money for one part of a payment comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// The customer's stored balance.
    Wallet,
    /// The customer's stored-value fund; paying from it is an instant redemption.
    Vault,
    /// The customer's credit account `account`, repaid in `term` monthly installments.
    CreditLine { account: i64, term: u32 },
    /// A bank card, by the channel's token. Tally never holds the card number.
    Card { token: String },
}

impl Source {
    /// The source's kind as stored and shown: `wallet`, `vault`, `credit_line`, `card`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Wallet => "wallet",
            Source::Vault => "vault",
            Source::CreditLine { .. } => "credit_line",
            Source::Card { .. } => "card",
        }
    }

    pub fn is_card(&self) -> bool {
        matches!(self, Source::Card { .. })
    }

    /// A payment takes each kind of source once. Two credit lines or two wallets would draw
    /// on one balance twice; two cards are refused too, because a second card's capture
    /// could fail after the first card's succeeded, and a payment captured at one bank and
    /// not the other is neither whole nor nothing.
    fn same_kind_as(&self, other: &Source) -> bool {
        self.kind() == other.kind()
    }

    fn check(&self) -> Result<(), PaymentError> {
        match self {
            Source::CreditLine { term, .. } if !INSTALLMENT_TERMS.contains(term) => {
                Err(PaymentError::InstallmentTermNotOffered(*term))
            }
            Source::Card { token } => check_card_token(token),
            _ => Ok(()),
        }
    }
}

/// A card token is the channel's opaque name for a card. Anything that could be the card
/// number itself (12 to 19 digits, spaces or dashes aside) is refused, so a client's mistake
/// cannot put a card number into Tally's storage or logs.
pub fn check_card_token(token: &str) -> Result<(), PaymentError> {
    if token.is_empty() {
        return Err(PaymentError::InvalidCardToken("must not be empty"));
    }
    if token.len() > CARD_TOKEN_LENGTH_MAX {
        return Err(PaymentError::InvalidCardToken("is longer than 128 bytes"));
    }
    if !token
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || "_-.:".contains(character))
    {
        return Err(PaymentError::InvalidCardToken(
            "may hold only ASCII letters, digits and _-.:",
        ));
    }
    let digits = token.chars().filter(char::is_ascii_digit).count();
    let others = token
        .chars()
        .filter(|character| !character.is_ascii_digit() && *character != '-')
        .count();
    if others == 0 && (12..=19).contains(&digits) {
        return Err(PaymentError::InvalidCardToken(
            "looks like a card number; send the channel's token instead",
        ));
    }
    Ok(())
}

/// How much one source pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    Fixed(Amount),
    /// Whatever the fixed shares leave of the order.
    Rest,
}

/// One source and its share, in the order the shopper listed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    pub source: Source,
    pub share: Share,
}

/// Turns the fundings into one exact amount per source, in the listed order, summing to
/// `order` exactly. Refused: no source or too many, a source listed twice, a share not
/// positive or in another currency, more than one "rest", a rest that would be zero or
/// negative, and fixed shares that do not add up to the order when there is no rest.
pub fn resolve(order: Amount, fundings: &[Funding]) -> Result<Vec<Amount>, PaymentError> {
    if !order.is_positive() {
        return Err(PaymentError::AmountNotPositive(order.to_string()));
    }
    if fundings.is_empty() || fundings.len() > FUNDINGS_MAX {
        return Err(PaymentError::FundingCount {
            given: fundings.len(),
            max: FUNDINGS_MAX,
        });
    }
    let mut rest_index = None;
    let mut fixed_total = Amount::zero(order.currency());
    for (index, funding) in fundings.iter().enumerate() {
        funding.source.check()?;
        if let Some(earlier) = fundings[..index]
            .iter()
            .find(|earlier| earlier.source.same_kind_as(&funding.source))
        {
            return Err(PaymentError::DuplicateSource {
                index,
                source_name: earlier.source.kind().to_string(),
            });
        }
        match funding.share {
            Share::Fixed(amount) => {
                if amount.currency() != order.currency() {
                    return Err(PaymentError::CurrencyMismatch {
                        index,
                        expected: order.currency().to_string(),
                        found: amount.currency().to_string(),
                    });
                }
                if !amount.is_positive() {
                    return Err(PaymentError::FundingNotPositive {
                        index,
                        amount: amount.to_string(),
                    });
                }
                fixed_total = fixed_total.checked_add(amount)?;
            }
            Share::Rest => {
                if rest_index.replace(index).is_some() {
                    return Err(PaymentError::SeveralRests);
                }
            }
        }
    }
    let rest = order.checked_sub(fixed_total)?;
    let rest_fits = match rest_index {
        Some(_) => rest.is_positive(),
        None => rest.is_zero(),
    };
    if !rest_fits {
        return Err(PaymentError::FundingsDoNotSum {
            funded: fixed_total.to_string(),
            order: order.to_string(),
        });
    }
    Ok(fundings
        .iter()
        .map(|funding| match funding.share {
            Share::Fixed(amount) => amount,
            Share::Rest => rest,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Currency;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    fn fixed(source: Source, minor: i64) -> Funding {
        Funding {
            source,
            share: Share::Fixed(cny(minor)),
        }
    }

    fn rest(source: Source) -> Funding {
        Funding {
            source,
            share: Share::Rest,
        }
    }

    fn card(token: &str) -> Source {
        Source::Card {
            token: token.to_string(),
        }
    }

    #[test]
    fn the_rest_takes_what_the_fixed_shares_leave() {
        let amounts = resolve(
            cny(10_000),
            &[
                fixed(Source::Wallet, 2_500),
                rest(Source::CreditLine {
                    account: 1,
                    term: 3,
                }),
                fixed(card("tok_visa_1"), 1_000),
            ],
        )
        .expect("resolves");
        assert_eq!(amounts, vec![cny(2_500), cny(6_500), cny(1_000)]);
    }

    #[test]
    fn fixed_shares_must_sum_to_the_order_exactly() {
        let short = resolve(cny(10_000), &[fixed(Source::Wallet, 9_999)]);
        assert_eq!(
            short.map_err(|error| error.code()),
            Err("fundings_do_not_sum")
        );
        let over = resolve(
            cny(10_000),
            &[fixed(Source::Wallet, 9_000), rest(Source::Vault)],
        );
        assert!(over.is_ok());
        let nothing_left = resolve(
            cny(10_000),
            &[fixed(Source::Wallet, 10_000), rest(Source::Vault)],
        );
        assert_eq!(
            nothing_left.map_err(|error| error.code()),
            Err("fundings_do_not_sum")
        );
    }

    #[test]
    fn each_refusal_has_its_code() {
        let code = |order: i64, fundings: &[Funding]| {
            resolve(cny(order), fundings).map_err(|error| error.code())
        };
        assert_eq!(code(0, &[rest(Source::Wallet)]), Err("amount_not_positive"));
        assert_eq!(code(100, &[]), Err("funding_count"));
        assert_eq!(
            code(100, &[rest(Source::Wallet), rest(Source::Vault)]),
            Err("funding_several_rests")
        );
        assert_eq!(
            code(100, &[fixed(Source::Wallet, 50), rest(Source::Wallet)]),
            Err("funding_duplicate_source")
        );
        assert_eq!(
            code(100, &[fixed(card("tok_a"), 50), rest(card("tok_a"))]),
            Err("funding_duplicate_source")
        );
        assert_eq!(
            code(100, &[fixed(card("tok_a"), 50), rest(card("tok_b"))]),
            Err("funding_duplicate_source")
        );
        assert_eq!(
            code(100, &[fixed(Source::Wallet, -5), rest(Source::Vault)]),
            Err("funding_not_positive")
        );
        assert_eq!(
            code(
                100,
                &[rest(Source::CreditLine {
                    account: 1,
                    term: 5
                })]
            ),
            Err("installment_term_not_offered")
        );
        let usd = Funding {
            source: Source::Wallet,
            share: Share::Fixed(Amount::new(50, Currency::USD)),
        };
        assert_eq!(
            code(100, &[usd, rest(Source::Vault)]),
            Err("currency_mismatch")
        );
    }

    #[test]
    fn a_card_number_is_never_taken_for_a_token() {
        for number in ["4111111111111111", "4111-1111-1111-1111", "371449635398431"] {
            assert_eq!(
                check_card_token(number).map_err(|error| error.code()),
                Err("invalid_card_token"),
                "{number}"
            );
        }
        for token in ["tok_4111", "card:1f3a9", "123456"] {
            assert!(check_card_token(token).is_ok(), "{token}");
        }
        assert!(check_card_token("tok 1").is_err());
        assert!(check_card_token(&"t".repeat(129)).is_err());
    }
}
