//! Identifiers of people and things (phone, national id, card, device, account, delivery address): normalisation and blinding.
//!
//! An identifier is first normalised so that every member derives the same bytes from
//! the same identifier however it was typed, then blinded with HMAC-SHA-256 under the
//! consortium blinding key (see the threat model in the crate documentation). Only the
//! blinded form ever reaches the log or another member.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::Error;

/// The kinds of identifier a risk record can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentifierKind {
    /// A phone number, normalised to E.164 (`+` and 8 to 15 digits).
    Phone,
    /// A national identity number: ASCII letters and digits, upper case.
    NationalId,
    /// A payment card number: 12 to 19 digits with a valid Luhn check digit.
    Card,
    /// A device identifier (IMEI, vendor id, fingerprint id): lower case.
    Device,
    /// An account identifier (bank account, IBAN, wallet, user name): upper case.
    Account,
    /// A postal (delivery) address: its words joined by one space, in lower case, so the
    /// same address typed twice is one identifier.
    Address,
}

impl IdentifierKind {
    /// Stable byte of the kind in canonical encodings.
    pub fn byte(self) -> u8 {
        match self {
            IdentifierKind::Phone => 1,
            IdentifierKind::NationalId => 2,
            IdentifierKind::Card => 3,
            IdentifierKind::Device => 4,
            IdentifierKind::Account => 5,
            IdentifierKind::Address => 6,
        }
    }

    /// The kind of a stable byte.
    pub fn from_byte(byte: u8) -> Result<Self, Error> {
        Ok(match byte {
            1 => IdentifierKind::Phone,
            2 => IdentifierKind::NationalId,
            3 => IdentifierKind::Card,
            4 => IdentifierKind::Device,
            5 => IdentifierKind::Account,
            6 => IdentifierKind::Address,
            other => {
                return Err(Error::MalformedEntry(format!(
                    "unknown identifier kind {other}"
                )))
            }
        })
    }

    /// Stable name (command line, API).
    pub fn name(self) -> &'static str {
        match self {
            IdentifierKind::Phone => "phone",
            IdentifierKind::NationalId => "national_id",
            IdentifierKind::Card => "card",
            IdentifierKind::Device => "device",
            IdentifierKind::Account => "account",
            IdentifierKind::Address => "address",
        }
    }

    /// The kind of a stable name.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "phone" => IdentifierKind::Phone,
            "national_id" => IdentifierKind::NationalId,
            "card" => IdentifierKind::Card,
            "device" => IdentifierKind::Device,
            "account" => IdentifierKind::Account,
            "address" => IdentifierKind::Address,
            other => {
                return Err(Error::InvalidIdentifier(format!(
                    "unknown identifier kind {other:?}"
                )))
            }
        })
    }
}

/// Longest raw identifier accepted, in bytes.
pub const IDENTIFIER_SIZE_MAX: usize = 128;

/// A normalised identifier. It is personal data in clear: never log or store it.
#[derive(Clone, PartialEq, Eq)]
pub struct NormalisedIdentifier {
    kind: IdentifierKind,
    value: String,
}

impl std::fmt::Debug for NormalisedIdentifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "NormalisedIdentifier({}, ***)", self.kind.name())
    }
}

impl NormalisedIdentifier {
    /// The kind.
    pub fn kind(&self) -> IdentifierKind {
        self.kind
    }

    /// The normalised text (personal data).
    pub fn expose(&self) -> &str {
        &self.value
    }
}

fn invalid(kind: IdentifierKind, detail: &str) -> Error {
    Error::InvalidIdentifier(format!("{}: {detail}", kind.name()))
}

/// Normalises a raw identifier. `default_country_code` (digits, e.g. "86") is prefixed
/// to phone numbers written without `+` or `00`.
pub fn normalise(
    kind: IdentifierKind,
    raw: &str,
    default_country_code: Option<&str>,
) -> Result<NormalisedIdentifier, Error> {
    if raw.len() > IDENTIFIER_SIZE_MAX {
        return Err(invalid(kind, "too long"));
    }
    let trimmed = raw.trim();
    let value = match kind {
        IdentifierKind::Phone => normalise_phone(trimmed, default_country_code)?,
        IdentifierKind::NationalId => {
            let value: String = trimmed
                .chars()
                .filter(|character| !matches!(character, ' ' | '-'))
                .map(|character| character.to_ascii_uppercase())
                .collect();
            if value.len() < 4
                || !value
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric())
            {
                return Err(invalid(kind, "want at least 4 ASCII letters or digits"));
            }
            value
        }
        IdentifierKind::Card => {
            let value: String = trimmed
                .chars()
                .filter(|character| !matches!(character, ' ' | '-'))
                .collect();
            if !(12..=19).contains(&value.len())
                || !value.chars().all(|character| character.is_ascii_digit())
            {
                return Err(invalid(kind, "want 12 to 19 digits"));
            }
            if !luhn_valid(&value) {
                return Err(invalid(kind, "check digit is wrong"));
            }
            value
        }
        IdentifierKind::Device => {
            let value = trimmed.to_ascii_lowercase();
            if value.is_empty() || !value.chars().all(|character| character.is_ascii_graphic()) {
                return Err(invalid(kind, "want printable ASCII without spaces"));
            }
            value
        }
        IdentifierKind::Account => {
            let value: String = trimmed
                .chars()
                .filter(|character| *character != ' ')
                .map(|character| character.to_ascii_uppercase())
                .collect();
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err(invalid(kind, "empty or has control characters"));
            }
            value
        }
        IdentifierKind::Address => {
            let value = trimmed
                .split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(" ");
            if value.chars().count() < 4 || value.chars().any(char::is_control) {
                return Err(invalid(
                    kind,
                    "want at least 4 characters, no control characters",
                ));
            }
            value
        }
    };
    Ok(NormalisedIdentifier { kind, value })
}

fn normalise_phone(raw: &str, default_country_code: Option<&str>) -> Result<String, Error> {
    let kind = IdentifierKind::Phone;
    let compact: String = raw
        .chars()
        .filter(|character| !matches!(character, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest.to_owned()
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest.to_owned()
    } else {
        let country =
            default_country_code.ok_or_else(|| invalid(kind, "no country code and no default"))?;
        let national = compact.strip_prefix('0').unwrap_or(&compact);
        format!("{country}{national}")
    };
    if !(8..=15).contains(&digits.len())
        || !digits.chars().all(|character| character.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(invalid(kind, "want + and 8 to 15 digits"));
    }
    Ok(format!("+{digits}"))
}

fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (position, character) in digits.chars().rev().enumerate() {
        let mut digit = character.to_digit(10).unwrap_or(0);
        if position % 2 == 1 {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        sum += digit;
    }
    sum.is_multiple_of(10)
}

/// An identifier as it appears in the log: its kind, the epoch of the blinding key and
/// 32 bytes that nobody without the key can link back to the identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlindedIdentifier {
    /// The kind of identifier.
    pub kind: IdentifierKind,
    /// Which blinding key produced it.
    pub key_epoch: u32,
    /// HMAC-SHA-256 output.
    pub value: [u8; 32],
}

/// A member's salted commitment to a normalised identifier: what its signed request
/// names. Without the salt nobody can test guesses against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentifierCommitment {
    /// The kind of identifier.
    pub kind: IdentifierKind,
    /// SHA-256 of a domain, the kind, the salt and the normalised identifier.
    pub digest: [u8; 32],
}

/// What opens a commitment: the normalised identifier and the member's salt. Personal
/// data: it travels from the member to the operator's service and is never stored.
#[derive(Clone)]
pub struct IdentifierOpening {
    identifier: NormalisedIdentifier,
    salt: [u8; 16],
}

impl std::fmt::Debug for IdentifierOpening {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "IdentifierOpening({}, ***)",
            self.identifier.kind.name()
        )
    }
}

const COMMITMENT_DOMAIN: &[u8] = b"tally-consortium/identifier-commitment/v1\n";

impl IdentifierOpening {
    /// An opening from a normalised identifier and 16 random bytes the member drew.
    pub fn new(identifier: NormalisedIdentifier, salt: [u8; 16]) -> Self {
        IdentifierOpening { identifier, salt }
    }

    /// The normalised identifier (personal data).
    pub fn identifier(&self) -> &NormalisedIdentifier {
        &self.identifier
    }

    /// The member's salt (sent with the identifier to the operator).
    pub fn salt(&self) -> [u8; 16] {
        self.salt
    }

    /// The commitment the member signs.
    pub fn commitment(&self) -> IdentifierCommitment {
        let mut hasher = Sha256::new();
        hasher.update(COMMITMENT_DOMAIN);
        hasher.update([self.identifier.kind.byte()]);
        hasher.update(self.salt);
        hasher.update(self.identifier.value.as_bytes());
        IdentifierCommitment {
            kind: self.identifier.kind,
            digest: hasher.finalize().into(),
        }
    }
}

/// The consortium's blinding key, held by the operator's service only.
#[derive(Clone)]
pub struct BlindingKey {
    epoch: u32,
    key: [u8; 32],
}

impl std::fmt::Debug for BlindingKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "BlindingKey(epoch {}, ***)", self.epoch)
    }
}

const BLINDING_DOMAIN: &[u8] = b"tally-consortium/identifier/v1\n";

impl BlindingKey {
    /// A key from 32 secret bytes the caller drew from a secure source, and its epoch.
    pub fn new(epoch: u32, key: [u8; 32]) -> Self {
        BlindingKey { epoch, key }
    }

    /// The key's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Blinds a normalised identifier:
    /// HMAC-SHA-256(key, domain || kind byte || normalised text).
    pub fn blind(&self, identifier: &NormalisedIdentifier) -> Result<BlindedIdentifier, Error> {
        // HMAC accepts keys of any length: an error here is a broken invariant.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .map_err(|error| Error::Internal(format!("HMAC key: {error}")))?;
        mac.update(BLINDING_DOMAIN);
        mac.update(&[identifier.kind.byte()]);
        mac.update(identifier.value.as_bytes());
        Ok(BlindedIdentifier {
            kind: identifier.kind,
            key_epoch: self.epoch,
            value: mac.finalize().into_bytes().into(),
        })
    }

    /// Blinds the identifier of an opening, after checking that it opens `commitment`
    /// (the one the member signed).
    pub fn blind_opening(
        &self,
        opening: &IdentifierOpening,
        commitment: &IdentifierCommitment,
    ) -> Result<BlindedIdentifier, Error> {
        if opening.commitment() != *commitment {
            return Err(Error::refused(
                crate::Refusal::CommitmentMismatch,
                "the identifier and salt do not open the signed commitment",
            ));
        }
        self.blind(&opening.identifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(kind: IdentifierKind, raw: &str) -> Result<String, Error> {
        normalise(kind, raw, Some("86")).map(|identifier| identifier.expose().to_owned())
    }

    #[test]
    fn phones_normalise_to_e164() -> Result<(), Error> {
        assert_eq!(
            value(IdentifierKind::Phone, "+86 138-0013-8000")?,
            "+8613800138000"
        );
        assert_eq!(
            value(IdentifierKind::Phone, "0086 13800138000")?,
            "+8613800138000"
        );
        assert_eq!(
            value(IdentifierKind::Phone, "138 0013 8000")?,
            "+8613800138000"
        );
        assert_eq!(
            value(IdentifierKind::Phone, "(020) 7946 0958")?,
            "+862079460958"
        );
        assert!(normalise(IdentifierKind::Phone, "13800138000", None).is_err());
        assert!(value(IdentifierKind::Phone, "+12").is_err());
        assert!(value(IdentifierKind::Phone, "+86 138 0013 800a").is_err());
        Ok(())
    }

    #[test]
    fn other_kinds_normalise() -> Result<(), Error> {
        assert_eq!(
            value(IdentifierKind::NationalId, " 11010519491231002x ")?,
            "11010519491231002X"
        );
        assert_eq!(
            value(IdentifierKind::Card, "4111 1111 1111 1111")?,
            "4111111111111111"
        );
        assert!(value(IdentifierKind::Card, "4111 1111 1111 1112").is_err());
        assert_eq!(value(IdentifierKind::Device, "AB:CD:EF")?, "ab:cd:ef");
        assert_eq!(
            value(IdentifierKind::Account, "gb29 nwbk 6016")?,
            "GB29NWBK6016"
        );
        assert!(value(IdentifierKind::Device, "a b").is_err());
        assert_eq!(
            value(IdentifierKind::Address, "  88  Jianguo ROAD\tChaoyang ")?,
            "88 jianguo road chaoyang"
        );
        assert_eq!(
            value(IdentifierKind::Address, "北京市 朝阳区  建国路88号")?,
            "北京市 朝阳区 建国路88号"
        );
        assert!(value(IdentifierKind::Address, "  ").is_err());
        assert_eq!(
            IdentifierKind::from_byte(IdentifierKind::Address.byte())?,
            IdentifierKind::Address
        );
        assert_eq!(
            IdentifierKind::from_name("address")?,
            IdentifierKind::Address
        );
        Ok(())
    }

    #[test]
    fn blinding_is_keyed_deterministic_and_kind_separated() -> Result<(), Error> {
        let key = BlindingKey::new(1, [5; 32]);
        let other_key = BlindingKey::new(2, [6; 32]);
        let phone = normalise(IdentifierKind::Phone, "+8613800138000", None)?;
        let same = normalise(IdentifierKind::Phone, "0086 138 0013 8000", None)?;
        assert_eq!(key.blind(&phone)?, key.blind(&same)?);
        assert_ne!(key.blind(&phone)?.value, other_key.blind(&phone)?.value);
        let account = normalise(IdentifierKind::Account, "+8613800138000", None)?;
        assert_ne!(key.blind(&phone)?.value, key.blind(&account)?.value);
        assert!(!format!("{phone:?}").contains("138"));
        let opening = IdentifierOpening::new(phone.clone(), [1; 16]);
        let commitment = opening.commitment();
        assert_eq!(
            key.blind_opening(&opening, &commitment)?,
            key.blind(&phone)?
        );
        let other_salt = IdentifierOpening::new(phone, [2; 16]);
        assert_ne!(other_salt.commitment(), commitment);
        assert!(key.blind_opening(&other_salt, &commitment).is_err());
        Ok(())
    }
}
