//! Personal-data primitives of Tally: field encryption under rotating keys and keyed blind
//! indexes for exact lookups, so that names, phone numbers and national ids are never
//! stored in clear.
//!
//! - [`FieldCipher`] encrypts one field value with AES-256-GCM. The stored form names the key
//!   that sealed it (`v1:<key id>:<base64 nonce+ciphertext>`), so old values stay readable
//!   after the active key rotates. The field's name is bound as associated data, so a
//!   ciphertext copied into another field does not decrypt.
//! - [`BlindIndex`] is HMAC-SHA-256 under its own key over a domain-separated field name and
//!   the normalised value: equal values give equal indexes, and without the key an index
//!   reveals nothing and cannot be confirmed by guessing.
//! - [`fingerprint`] normalises card numbers and addresses for the keyed fingerprints risk
//!   control matches on ([`Privacy::card_fingerprint`], [`Privacy::address_fingerprint`]).
//! - The blind index key rotates: during a rotation the old key is kept beside the new one
//!   ([`BlindIndex::with_previous`]), lookups try the new index then the old one
//!   ([`BlindIndex::candidates`]), and a walk recomputes every stored index under the new key.
//! - [`identity`] normalises phone numbers and national ids before they are indexed, and
//!   masks them for display; [`Privacy`] holds a service's cipher and blind index together.
//!
//! Masks show what a call-centre agent needs to confirm a caller and no more: a phone's and
//! a national id's last four characters, a name's first character, nothing of the date of
//! birth. A mask that shows more (`138****5678`, `110****002X` beside the birth year) leaves
//! few enough candidates that exact lookups find the value; see [`identity::mask_phone`].

pub mod fingerprint;
pub mod identity;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::BTreeMap;
use tally_core::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrivacyError {
    #[error("key {0:?} must be 32 bytes of base64 (256 bits)")]
    BadKey(String),
    #[error("the active encryption key {0:?} is not among the configured keys")]
    UnknownActiveKey(String),
    #[error("stored value names key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("stored value is not in the form v1:<key id>:<base64>")]
    Malformed,
    #[error("stored value failed authentication: wrong key, wrong field or tampered")]
    Authentication,
}

/// Decodes a 32-byte key given as base64 in configuration.
pub fn decode_key(name: &str, key: &Secret<String>) -> Result<[u8; 32], PrivacyError> {
    let bytes = BASE64
        .decode(key.expose().trim())
        .map_err(|_| PrivacyError::BadKey(name.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| PrivacyError::BadKey(name.to_string()))
}

/// AES-256-GCM encryption of field values under a set of keys, one of them active.
pub struct FieldCipher {
    keys: BTreeMap<String, Aes256Gcm>,
    active: String,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldCipher")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish()
    }
}

const NONCE_LENGTH: usize = 12;

impl FieldCipher {
    /// `keys` maps key ids to base64 keys; `active` seals new values.
    pub fn new(
        keys: &BTreeMap<String, Secret<String>>,
        active: &str,
    ) -> Result<Self, PrivacyError> {
        let mut ciphers = BTreeMap::new();
        for (id, key) in keys {
            if id.is_empty() || id.contains(':') {
                return Err(PrivacyError::BadKey(id.clone()));
            }
            let bytes = decode_key(id, key)?;
            let cipher =
                Aes256Gcm::new_from_slice(&bytes).map_err(|_| PrivacyError::BadKey(id.clone()))?;
            ciphers.insert(id.clone(), cipher);
        }
        if !ciphers.contains_key(active) {
            return Err(PrivacyError::UnknownActiveKey(active.to_string()));
        }
        Ok(Self {
            keys: ciphers,
            active: active.to_string(),
        })
    }

    /// Seals `plaintext` for the field `field` (e.g. "customer.phone") under the active key.
    pub fn encrypt(&self, field: &str, plaintext: &str) -> Result<String, PrivacyError> {
        let mut nonce = [0_u8; NONCE_LENGTH];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.encrypt_with_nonce(field, plaintext, nonce)
    }

    /// As [`FieldCipher::encrypt`] with a given nonce. A nonce must never repeat under one
    /// key; this exists for deterministic tests.
    pub fn encrypt_with_nonce(
        &self,
        field: &str,
        plaintext: &str,
        nonce: [u8; NONCE_LENGTH],
    ) -> Result<String, PrivacyError> {
        let cipher = self
            .keys
            .get(&self.active)
            .ok_or_else(|| PrivacyError::UnknownActiveKey(self.active.clone()))?;
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| PrivacyError::Authentication)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("v1:{}:{}", self.active, BASE64.encode(bytes)))
    }

    /// Opens a stored value of the field `field`, with whichever configured key sealed it.
    pub fn decrypt(&self, field: &str, stored: &str) -> Result<Secret<String>, PrivacyError> {
        let mut parts = stored.splitn(3, ':');
        let (Some("v1"), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(PrivacyError::Malformed);
        };
        let cipher = self
            .keys
            .get(key_id)
            .ok_or_else(|| PrivacyError::UnknownKey(key_id.to_string()))?;
        let bytes = BASE64.decode(body).map_err(|_| PrivacyError::Malformed)?;
        if bytes.len() < NONCE_LENGTH {
            return Err(PrivacyError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LENGTH);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| PrivacyError::Authentication)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| PrivacyError::Malformed)
    }

    /// Whether a stored value was sealed by a key other than the active one (to re-encrypt).
    pub fn needs_rotation(&self, stored: &str) -> bool {
        key_id_of(stored).is_some_and(|key_id| key_id != self.active)
    }

    /// The id of the key that seals new values.
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// A stored value of `field` sealed again under the active key, or `None` when it already
    /// is. The value is opened first, so a value that does not authenticate (tampered, or
    /// sealed for another field) is an error and is never re-sealed as if it were genuine.
    pub fn reseal(&self, field: &str, stored: &str) -> Result<Option<String>, PrivacyError> {
        if !self.needs_rotation(stored) {
            // Still checked: a value claiming the active key must open under it.
            self.decrypt(field, stored)?;
            return Ok(None);
        }
        let opened = self.decrypt(field, stored)?;
        self.encrypt(field, opened.expose()).map(Some)
    }
}

/// The key id a stored value names (`v1:<key id>:...`), if it is well formed.
pub fn key_id_of(stored: &str) -> Option<&str> {
    let mut parts = stored.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(key_id), Some(_)) => Some(key_id),
        _ => None,
    }
}

/// Keyed blind index for exact lookups of encrypted fields, under its current key and,
/// while a rotation runs, the previous one.
pub struct BlindIndex {
    key: Secret<[u8; 32]>,
    previous: Option<Secret<[u8; 32]>>,
}

impl std::fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndex(***)")
    }
}

impl BlindIndex {
    pub fn new(key: &Secret<String>) -> Result<Self, PrivacyError> {
        Ok(Self {
            key: Secret::new(decode_key("blind_index_key", key)?),
            previous: None,
        })
    }

    /// The same index with `previous` kept beside the current key while stored indexes are
    /// recomputed under the current one: lookups then try both ([`BlindIndex::candidates`]).
    pub fn with_previous(mut self, previous: &Secret<String>) -> Result<Self, PrivacyError> {
        self.previous = Some(Secret::new(decode_key(
            "previous_blind_index_key",
            previous,
        )?));
        Ok(self)
    }

    /// Whether a previous key is configured (a rotation is under way).
    pub fn is_rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// The index of `value` under the previous key, during a rotation.
    pub fn compute_previous(&self, field: &str, value: &str) -> Option<String> {
        self.previous
            .as_ref()
            .map(|previous| hmac_hex(previous.expose(), field, value))
    }

    /// Every index `value` may be stored under: the current key's first, then the previous
    /// key's during a rotation.
    pub fn candidates(&self, field: &str, value: &str) -> Vec<String> {
        let mut candidates = vec![self.compute(field, value)];
        candidates.extend(self.compute_previous(field, value));
        candidates
    }

    /// The index of `value` (already normalised by the caller) in the field `field`, as hex.
    /// The field name separates domains: the same phone number in two fields gives two
    /// unrelated indexes.
    pub fn compute(&self, field: &str, value: &str) -> String {
        hmac_hex(self.key.expose(), field, value)
    }
}

fn hmac_hex(key: &[u8; 32], field: &str, value: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_key_length(),
    };
    mac.update(field.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cold]
fn unreachable_key_length() -> ! {
    panic!("HMAC-SHA-256 accepts keys of every length")
}

/// The personal-data keys a service holds: the field cipher, the blind index, and the key of
/// risk control's fingerprints.
#[derive(Debug)]
pub struct Privacy {
    pub cipher: FieldCipher,
    pub blind_index: BlindIndex,
    /// Fingerprints of cards and addresses in risk events and lists. Their values are never
    /// stored, so they cannot be recomputed under a new key: this key stays when the blind
    /// index key rotates (by default it is the blind index key; see
    /// [`Privacy::with_fingerprint_key`]).
    pub fingerprints: BlindIndex,
}

impl Privacy {
    /// Builds both from configuration: encryption keys by id, the active id, the index key.
    pub fn new(
        encryption_keys: &BTreeMap<String, Secret<String>>,
        active_encryption_key: &str,
        blind_index_key: &Secret<String>,
    ) -> Result<Self, PrivacyError> {
        Ok(Self {
            cipher: FieldCipher::new(encryption_keys, active_encryption_key)?,
            blind_index: BlindIndex::new(blind_index_key)?,
            fingerprints: BlindIndex::new(blind_index_key)?,
        })
    }

    /// Keeps `previous` beside the blind index key while a rotation recomputes the indexes.
    pub fn with_previous_blind_index_key(
        mut self,
        previous: &Secret<String>,
    ) -> Result<Self, PrivacyError> {
        self.blind_index = self.blind_index.with_previous(previous)?;
        Ok(self)
    }

    /// Fingerprints risk values under `key` rather than the blind index key: set to the old
    /// blind index key when that one rotates, so cards and addresses seen before still match.
    pub fn with_fingerprint_key(mut self, key: &Secret<String>) -> Result<Self, PrivacyError> {
        self.fingerprints = BlindIndex::new(key)?;
        Ok(self)
    }

    /// The keyed fingerprint of a card identifier ([`fingerprint::normalise_card`]); a value
    /// already in fingerprint form is kept.
    pub fn card_fingerprint(&self, raw: &str) -> String {
        if fingerprint::is_fingerprint(raw) {
            return raw.to_string();
        }
        self.fingerprints
            .compute(fingerprint::CARD_DOMAIN, &fingerprint::normalise_card(raw))
    }

    /// The keyed fingerprint of an address ([`fingerprint::normalise_address`]), `None` for a
    /// blank one; a value already in fingerprint form is kept.
    pub fn address_fingerprint(&self, raw: &str) -> Option<String> {
        if fingerprint::is_fingerprint(raw) {
            return Some(raw.to_string());
        }
        fingerprint::normalise_address(raw).map(|address| {
            self.fingerprints
                .compute(fingerprint::ADDRESS_DOMAIN, &address)
        })
    }
}

/// Shows the first `keep_start` and last `keep_end` characters and stars in between:
/// `mask("13812345678", 3, 4)` is `138****5678`.
pub fn mask(value: &str, keep_start: usize, keep_end: usize) -> String {
    let characters: Vec<char> = value.chars().collect();
    if characters.len() <= keep_start + keep_end {
        return "*".repeat(characters.len());
    }
    let hidden = characters.len() - keep_start - keep_end;
    let mut masked: String = characters[..keep_start].iter().collect();
    masked.push_str(&"*".repeat(hidden.clamp(1, 4)));
    masked.extend(&characters[characters.len() - keep_end..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Secret<String> {
        Secret::new(BASE64.encode([byte; 32]))
    }

    fn cipher(active: &str) -> FieldCipher {
        let keys = BTreeMap::from([("2025".to_string(), key(1)), ("2026".to_string(), key(2))]);
        FieldCipher::new(&keys, active).unwrap()
    }

    #[test]
    fn reseal_moves_a_value_to_the_active_key_and_refuses_what_does_not_open() {
        let sealed = cipher("2025")
            .encrypt("customer.phone:c1", "13812345678")
            .unwrap();
        let new = cipher("2026");
        let resealed = new.reseal("customer.phone:c1", &sealed).unwrap().unwrap();
        assert_eq!(key_id_of(&resealed), Some("2026"));
        assert_eq!(
            new.decrypt("customer.phone:c1", &resealed)
                .unwrap()
                .expose(),
            "13812345678"
        );
        // Already under the active key: nothing to do, but it must still open.
        assert_eq!(new.reseal("customer.phone:c1", &resealed).unwrap(), None);
        // Sealed for another customer, or tampered with: an error, never re-sealed.
        assert!(matches!(
            new.reseal("customer.phone:c2", &sealed),
            Err(PrivacyError::Authentication)
        ));
        let mut tampered = resealed.clone();
        tampered.pop();
        tampered.push(if resealed.ends_with('A') { 'B' } else { 'A' });
        assert!(new.reseal("customer.phone:c1", &tampered).is_err());
        // A key that is no longer configured is named.
        let only_new =
            FieldCipher::new(&BTreeMap::from([("2026".to_string(), key(2))]), "2026").unwrap();
        assert!(matches!(
            only_new.reseal("customer.phone:c1", &sealed),
            Err(PrivacyError::UnknownKey(id)) if id == "2025"
        ));
        assert_eq!(key_id_of("plain text"), None);
    }

    #[test]
    fn values_round_trip_and_rotate() {
        let old = cipher("2025");
        let sealed = old.encrypt("customer.phone", "13812345678").unwrap();
        assert!(sealed.starts_with("v1:2025:"));
        assert!(!sealed.contains("13812345678"));
        let new = cipher("2026");
        assert!(new.needs_rotation(&sealed));
        assert_eq!(
            new.decrypt("customer.phone", &sealed).unwrap().expose(),
            "13812345678"
        );
        let resealed = new.encrypt("customer.phone", "13812345678").unwrap();
        assert!(resealed.starts_with("v1:2026:"));
        assert_ne!(resealed, sealed);
    }

    #[test]
    fn wrong_field_tampering_and_unknown_keys_fail() {
        let cipher = cipher("2026");
        let sealed = cipher.encrypt("customer.phone", "13812345678").unwrap();
        assert_eq!(
            cipher.decrypt("customer.national_id", &sealed).unwrap_err(),
            PrivacyError::Authentication
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(cipher.decrypt("customer.phone", &tampered).is_err());
        let foreign = sealed.replacen("2026", "2099", 1);
        assert_eq!(
            cipher.decrypt("customer.phone", &foreign).unwrap_err(),
            PrivacyError::UnknownKey("2099".into())
        );
        assert_eq!(
            cipher.decrypt("customer.phone", "plain").unwrap_err(),
            PrivacyError::Malformed
        );
    }

    #[test]
    fn bad_configuration_is_refused() {
        let keys = BTreeMap::from([("k".to_string(), Secret::new("c2hvcnQ=".to_string()))]);
        assert!(matches!(
            FieldCipher::new(&keys, "k"),
            Err(PrivacyError::BadKey(_))
        ));
        let keys = BTreeMap::from([("k".to_string(), key(1))]);
        assert!(matches!(
            FieldCipher::new(&keys, "other"),
            Err(PrivacyError::UnknownActiveKey(_))
        ));
        let printed = format!("{:?}", FieldCipher::new(&keys, "k").unwrap());
        assert!(!printed.contains(&BASE64.encode([1_u8; 32])));
    }

    #[test]
    fn blind_indexes_are_deterministic_keyed_and_domain_separated() {
        let index = BlindIndex::new(&key(7)).unwrap();
        let phone = index.compute("customer.phone", "+8613812345678");
        assert_eq!(phone, index.compute("customer.phone", "+8613812345678"));
        assert_eq!(phone.len(), 64);
        assert_ne!(
            phone,
            index.compute("customer.national_id", "+8613812345678")
        );
        assert_ne!(phone, index.compute("customer.phone", "+8613812345679"));
        let other_key = BlindIndex::new(&key(8)).unwrap();
        assert_ne!(phone, other_key.compute("customer.phone", "+8613812345678"));
        // Known answer from Python: hmac.new(bytes([7]) * 32,
        // b"customer.phone\x00+8613812345678", hashlib.sha256).hexdigest()
        assert_eq!(
            phone,
            "258c9dbc18510d243ee0ae274998e70cbcfbe50897a31fb04cbb45c2d61f9f69"
        );
        assert_eq!(format!("{index:?}"), "BlindIndex(***)");
    }

    #[test]
    fn a_rotating_blind_index_tries_the_new_key_then_the_old_one() {
        let old = BlindIndex::new(&key(7)).unwrap();
        let rotating = BlindIndex::new(&key(8))
            .unwrap()
            .with_previous(&key(7))
            .unwrap();
        assert!(rotating.is_rotating() && !old.is_rotating());
        let candidates = rotating.candidates("customer.phone", "+8613812345678");
        assert_eq!(
            candidates,
            vec![
                BlindIndex::new(&key(8))
                    .unwrap()
                    .compute("customer.phone", "+8613812345678"),
                old.compute("customer.phone", "+8613812345678"),
            ]
        );
        assert_eq!(old.candidates("customer.phone", "x").len(), 1);
    }

    #[test]
    fn risk_fingerprints_are_keyed_normalised_and_kept_when_already_made() {
        let keys = BTreeMap::from([("a".to_string(), key(1))]);
        let privacy = Privacy::new(&keys, "a", &key(7)).unwrap();
        let card = privacy.card_fingerprint("4111 1111 1111 1111");
        assert_eq!(card, privacy.card_fingerprint("4111-1111-1111-1111"));
        assert_eq!(
            card,
            BlindIndex::new(&key(7))
                .unwrap()
                .compute("risk.card", "4111111111111111")
        );
        assert!(!card.contains("4111"));
        assert_eq!(privacy.card_fingerprint(&card), card);
        let address = privacy.address_fingerprint("88 Jianguo  Road").unwrap();
        assert_eq!(
            Some(address.clone()),
            privacy.address_fingerprint(" 88 jianguo road ")
        );
        assert_eq!(privacy.address_fingerprint("  "), None);
        // Another fingerprint key: another fingerprint; the blind index key is not used.
        let moved = Privacy::new(&keys, "a", &key(7))
            .unwrap()
            .with_fingerprint_key(&key(5))
            .unwrap();
        assert_ne!(moved.address_fingerprint("88 jianguo road"), Some(address));
    }

    #[test]
    fn masking_keeps_only_the_ends() {
        assert_eq!(mask("13812345678", 3, 4), "138****5678");
        assert_eq!(mask("110101199003077777", 3, 4), "110****7777");
        assert_eq!(mask("abc", 3, 4), "***");
        assert_eq!(mask("王小明", 1, 0), "王**");
    }
}
