//! The names carried between Tally and a channel: Tally's `Reference`, the channel's
//! `CardToken` and `ChannelId`, each checked once when built so the rest of the code can
//! put them in a URL or a file without asking again.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest reference, token or channel id, in bytes.
pub const IDENTIFIER_LENGTH_MAX: usize = 128;

/// Why a text is not a valid reference, token or channel id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {text:?}: 1 to {IDENTIFIER_LENGTH_MAX} visible ASCII characters expected")]
pub struct InvalidIdentifier {
    pub what: &'static str,
    pub text: String,
}

fn check(what: &'static str, text: &str) -> Result<(), InvalidIdentifier> {
    let visible = text.bytes().all(|byte| byte.is_ascii_graphic());
    if text.is_empty() || text.len() > IDENTIFIER_LENGTH_MAX || !visible {
        return Err(InvalidIdentifier {
            what,
            // Keep the error small even for a huge input.
            text: text.chars().take(IDENTIFIER_LENGTH_MAX).collect(),
        });
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$documentation:meta])* $name:ident, $what:literal) => {
        $(#[$documentation])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn new(text: impl Into<String>) -> Result<Self, InvalidIdentifier> {
                let text = text.into();
                check($what, &text)?;
                Ok(Self(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidIdentifier;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::new(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::new(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier!(
    /// Tally's idempotency key for one operation at the channel: the same reference repeated
    /// gets the first answer and the channel acts once. 1 to 128 visible ASCII characters.
    Reference,
    "reference"
);

identifier!(
    /// The channel's stand-in for a card number. Tally stores tokens, never numbers.
    CardToken,
    "card token"
);

identifier!(
    /// The channel's own id of one operation (an authorisation, capture, void, refund or
    /// payout).
    ChannelId,
    "channel id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_short_visible_ascii() {
        assert!(Reference::new("order-1/capture?#%").is_ok());
        assert!(Reference::new("x".repeat(IDENTIFIER_LENGTH_MAX)).is_ok());
        assert!(Reference::new("x".repeat(IDENTIFIER_LENGTH_MAX + 1)).is_err());
        assert!(Reference::new("").is_err());
        assert!(Reference::new("with space").is_err());
        assert!(Reference::new("naïve").is_err());
        assert!(Reference::new("line\nbreak").is_err());
    }

    #[test]
    fn identifiers_refuse_invalid_text_when_deserialized() {
        assert!(serde_json::from_str::<ChannelId>("\"\"").is_err());
        let token: CardToken = serde_json::from_str("\"tok_1\"").expect("a valid token");
        assert_eq!(token.as_str(), "tok_1");
    }
}
