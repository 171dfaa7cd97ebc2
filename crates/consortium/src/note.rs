//! C2SP signed notes: note text, Ed25519 signature lines, verifier and signer key strings, cosignatures.
//!
//! Formats (c2sp.org/signed-note, c2sp.org/tlog-cosignature):
//! - a note is UTF-8 text ending in a newline, without ASCII control characters other
//!   than newline, then a blank line, then signature lines `— <name> <base64>`;
//! - the base64 holds a 4-byte key id then the signature; the key id of an Ed25519 key
//!   is `SHA-256(name || "\n" || 0x01 || public key)[:4]`, of a cosignature/v1 key the
//!   same with 0x04;
//! - a verifier key is `<name>+<key id as 8 hex digits>+<base64(type || public key)>`,
//!   a signer key `PRIVATE+KEY+<name>+<key id>+<base64(type || seed)>`;
//! - a cosignature/v1 signature is `u64 timestamp (big endian) || Ed25519 signature` over
//!   `cosignature/v1\ntime <timestamp>\n` followed by the note text.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Error;

/// Most signature lines accepted on one note.
pub const SIGNATURES_MAX: usize = 100;
/// Key type byte of an Ed25519 note key.
pub const KEY_TYPE_ED25519: u8 = 0x01;
/// Key type byte of an Ed25519 cosignature/v1 key.
pub const KEY_TYPE_COSIGNATURE_V1: u8 = 0x04;

const SIGNATURE_PREFIX: &str = "\u{2014} ";
const SIGNER_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// What a key signs: plain notes, or timestamped witness cosignatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Ed25519 over the note text (type 0x01).
    Ed25519,
    /// Ed25519 cosignature/v1 over a timestamped checkpoint (type 0x04).
    CosignatureV1,
}

impl KeyType {
    fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => KEY_TYPE_ED25519,
            KeyType::CosignatureV1 => KEY_TYPE_COSIGNATURE_V1,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, Error> {
        match byte {
            KEY_TYPE_ED25519 => Ok(KeyType::Ed25519),
            KEY_TYPE_COSIGNATURE_V1 => Ok(KeyType::CosignatureV1),
            other => Err(Error::MalformedKey(format!(
                "unknown key type 0x{other:02x}"
            ))),
        }
    }
}

/// Whether `name` may name a key: not empty, no white space, no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

/// The 4-byte key id of a key as C2SP signed-note defines it.
pub fn key_id(name: &str, key_type: KeyType, public_key: &[u8; 32]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([key_type.byte()]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn parse_key_id(text: &str) -> Result<u32, Error> {
    if text.len() != 8 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(Error::MalformedKey("key id is not 8 hex digits".into()));
    }
    u32::from_str_radix(text, 16).map_err(|_| Error::MalformedKey("key id is not hex".into()))
}

/// A public key that verifies note signatures or cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_type: KeyType,
    key_id: u32,
    public_key: VerifyingKey,
}

impl VerifierKey {
    /// A verifier from a name, a key type and an Ed25519 public key.
    pub fn new(name: &str, key_type: KeyType, public_key: [u8; 32]) -> Result<Self, Error> {
        if !is_valid_key_name(name) {
            return Err(Error::MalformedKey(format!("invalid key name {name:?}")));
        }
        let verifying = VerifyingKey::from_bytes(&public_key)
            .map_err(|_| Error::MalformedKey("not an Ed25519 public key".into()))?;
        Ok(VerifierKey {
            name: name.to_owned(),
            key_type,
            key_id: key_id(name, key_type, &public_key),
            public_key: verifying,
        })
    }

    /// Parses `<name>+<key id>+<base64(type || public key)>`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::MalformedKey("want name+id+key".into()));
        };
        let id = parse_key_id(id)?;
        let bytes = STANDARD
            .decode(key)
            .map_err(|_| Error::MalformedKey("key is not base64".into()))?;
        let (&type_byte, public) = bytes
            .split_first()
            .ok_or_else(|| Error::MalformedKey("empty key".into()))?;
        let key_type = KeyType::from_byte(type_byte)?;
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| Error::MalformedKey(format!("{} key bytes, want 32", public.len())))?;
        let verifier = VerifierKey::new(name, key_type, public)?;
        if verifier.key_id != id {
            return Err(Error::MalformedKey("key id does not match the key".into()));
        }
        Ok(verifier)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's 4-byte id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// What the key signs.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key.to_bytes()
    }

    /// Checks a signature (after its key id) over the note text.
    fn verify(&self, text: &str, signature: &[u8]) -> Result<Option<u64>, Error> {
        let invalid = || Error::InvalidSignature(format!("{}+{:08x}", self.name, self.key_id));
        match self.key_type {
            KeyType::Ed25519 => {
                let signature =
                    ed25519_dalek::Signature::from_slice(signature).map_err(|_| invalid())?;
                self.public_key
                    .verify(text.as_bytes(), &signature)
                    .map_err(|_| invalid())?;
                Ok(None)
            }
            KeyType::CosignatureV1 => {
                if signature.len() != 8 + 64 {
                    return Err(invalid());
                }
                let (time, signature) = signature.split_at(8);
                let mut time_bytes = [0u8; 8];
                time_bytes.copy_from_slice(time);
                let timestamp = u64::from_be_bytes(time_bytes);
                if timestamp > i64::MAX as u64 {
                    return Err(invalid());
                }
                let signature =
                    ed25519_dalek::Signature::from_slice(signature).map_err(|_| invalid())?;
                self.public_key
                    .verify(&cosigned_message(timestamp, text), &signature)
                    .map_err(|_| invalid())?;
                Ok(Some(timestamp))
            }
        }
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = vec![self.key_type.byte()];
        bytes.extend_from_slice(self.public_key.as_bytes());
        write!(
            formatter,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(bytes)
        )
    }
}

/// The message a cosignature/v1 signs.
fn cosigned_message(timestamp: u64, text: &str) -> Vec<u8> {
    let mut message = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    message.extend_from_slice(text.as_bytes());
    message
}

/// A private key that signs notes (a log operator or a member) or cosignatures (a witness).
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key_type: KeyType,
    key_id: u32,
    signing: SigningKey,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "SignerKey({}+{:08x}+***)",
            self.name, self.key_id
        )
    }
}

impl SignerKey {
    /// A signer from a 32-byte Ed25519 seed that the caller drew from a secure source.
    pub fn from_seed(name: &str, key_type: KeyType, seed: [u8; 32]) -> Result<Self, Error> {
        if !is_valid_key_name(name) {
            return Err(Error::MalformedKey(format!("invalid key name {name:?}")));
        }
        let signing = SigningKey::from_bytes(&seed);
        let key_id = key_id(name, key_type, signing.verifying_key().as_bytes());
        Ok(SignerKey {
            name: name.to_owned(),
            key_type,
            key_id,
            signing,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<key id>+<base64(type || seed)>`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let rest = text
            .strip_prefix(SIGNER_KEY_PREFIX)
            .ok_or_else(|| Error::MalformedKey("signer key must start PRIVATE+KEY+".into()))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::MalformedKey("want PRIVATE+KEY+name+id+key".into()));
        };
        let id = parse_key_id(id)?;
        let bytes = STANDARD
            .decode(key)
            .map_err(|_| Error::MalformedKey("key is not base64".into()))?;
        let (&type_byte, seed) = bytes
            .split_first()
            .ok_or_else(|| Error::MalformedKey("empty key".into()))?;
        let key_type = KeyType::from_byte(type_byte)?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| Error::MalformedKey(format!("{} seed bytes, want 32", seed.len())))?;
        let signer = SignerKey::from_seed(name, key_type, seed)?;
        if signer.key_id != id {
            return Err(Error::MalformedKey("key id does not match the key".into()));
        }
        Ok(signer)
    }

    /// The signer key string. It is a secret: write it only where a secret belongs.
    pub fn to_secret_string(&self) -> String {
        let mut bytes = vec![self.key_type.byte()];
        bytes.extend_from_slice(&self.signing.to_bytes());
        format!(
            "{SIGNER_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(bytes)
        )
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_type: self.key_type,
            key_id: self.key_id,
            public_key: self.signing.verifying_key(),
        }
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's 4-byte id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Signs raw bytes with the Ed25519 key (used for member requests).
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// A signature line for `text`. `timestamp` is used by cosignature keys only.
    pub fn signature_line(&self, text: &str, timestamp: u64) -> Result<NoteSignature, Error> {
        validate_text(text)?;
        let mut signature = Vec::with_capacity(8 + 64);
        match self.key_type {
            KeyType::Ed25519 => {
                signature.extend_from_slice(&self.signing.sign(text.as_bytes()).to_bytes());
            }
            KeyType::CosignatureV1 => {
                if timestamp > i64::MAX as u64 {
                    return Err(Error::OutOfRange(
                        "cosignature timestamp above 2^63-1".into(),
                    ));
                }
                signature.extend_from_slice(&timestamp.to_be_bytes());
                let message = cosigned_message(timestamp, text);
                signature.extend_from_slice(&self.signing.sign(&message).to_bytes());
            }
        }
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature,
        })
    }
}

/// Checks that note text is non-empty UTF-8 ending in a newline, with no control
/// characters other than newline.
pub fn validate_text(text: &str) -> Result<(), Error> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(Error::MalformedNote("text must end with a newline".into()));
    }
    if text
        .chars()
        .any(|character| character < ' ' && character != '\n')
    {
        return Err(Error::MalformedNote("text has a control character".into()));
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Name of the key.
    pub name: String,
    /// Id of the key.
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, without its final newline: `— <name> <base64>`.
    pub fn line(&self) -> String {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}", self.name, STANDARD.encode(bytes))
    }
}

/// A note: text and signature lines, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending with a newline.
    pub text: String,
    /// Signature lines in order of appearance.
    pub signatures: Vec<NoteSignature>,
}

/// What [`Note::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The signed text.
    pub text: String,
    /// Signatures that verified under a trusted key, each once, with the cosignature
    /// timestamp for cosignature keys.
    pub verified: Vec<(NoteSignature, Option<u64>)>,
    /// Signatures from keys the verifier does not know.
    pub unverified: Vec<NoteSignature>,
}

impl Note {
    /// A note with text and no signatures yet.
    pub fn new(text: &str) -> Result<Self, Error> {
        validate_text(text)?;
        Ok(Note {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note from bytes, which must be UTF-8.
    pub fn parse_bytes(message: &[u8]) -> Result<Self, Error> {
        let text =
            std::str::from_utf8(message).map_err(|_| Error::MalformedNote("not UTF-8".into()))?;
        Note::parse(text)
    }

    /// Parses a signed note.
    pub fn parse(message: &str) -> Result<Self, Error> {
        let malformed = |detail: &str| Error::MalformedNote(detail.to_owned());
        if message
            .chars()
            .any(|character| character < ' ' && character != '\n')
        {
            return Err(malformed("control character"));
        }
        let split = message
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let text = &message[..split + 1];
        let block = &message[split + 2..];
        if block.is_empty() || !block.ends_with('\n') {
            return Err(malformed("signature block must end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in block[..block.len() - 1].split('\n') {
            let line = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed("signature line must start with an em dash"))?;
            let (name, encoded) = line
                .split_once(' ')
                .ok_or_else(|| malformed("signature line needs a name and a signature"))?;
            if !is_valid_key_name(name) || encoded.is_empty() {
                return Err(malformed("bad signature line"));
            }
            let bytes = STANDARD
                .decode(encoded)
                .map_err(|_| malformed("signature is not base64"))?;
            if bytes.len() < 5 {
                return Err(malformed("signature too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                signature: bytes[4..].to_vec(),
            });
            if signatures.len() > SIGNATURES_MAX {
                return Err(malformed("too many signatures"));
            }
        }
        validate_text(text)?;
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Adds a signature, replacing any earlier one by the same key.
    pub fn add_signature(&mut self, signature: NoteSignature) {
        self.signatures
            .retain(|old| !(old.name == signature.name && old.key_id == signature.key_id));
        self.signatures.push(signature);
    }

    /// Signs the text with `signer` (timestamp for cosignature keys) and adds the line.
    pub fn sign(&mut self, signer: &SignerKey, timestamp: u64) -> Result<(), Error> {
        let line = signer.signature_line(&self.text, timestamp)?;
        self.add_signature(line);
        Ok(())
    }

    /// Verifies the signatures against trusted keys. A signature from a trusted key that
    /// does not verify is an error; at least one must verify.
    pub fn verify(&self, trusted: &[VerifierKey]) -> Result<VerifiedNote, Error> {
        let mut verified: Vec<(NoteSignature, Option<u64>)> = Vec::new();
        let mut unverified: Vec<NoteSignature> = Vec::new();
        for signature in &self.signatures {
            let mut matching = trusted
                .iter()
                .filter(|key| key.name == signature.name && key.key_id == signature.key_id);
            let Some(key) = matching.next() else {
                if !unverified.contains(signature) {
                    unverified.push(signature.clone());
                }
                continue;
            };
            if matching.any(|other| other != key) {
                return Err(Error::MalformedKey(format!(
                    "ambiguous key {}+{:08x}",
                    signature.name, signature.key_id
                )));
            }
            if verified
                .iter()
                .any(|(seen, _)| seen.name == signature.name && seen.key_id == signature.key_id)
            {
                continue;
            }
            let timestamp = key.verify(&self.text, &signature.signature)?;
            verified.push((signature.clone(), timestamp));
        }
        if verified.is_empty() {
            return Err(Error::NoTrustedSignature);
        }
        Ok(VerifiedNote {
            text: self.text.clone(),
            verified,
            unverified,
        })
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.text)?;
        formatter.write_str("\n")?;
        for signature in &self.signatures {
            formatter.write_str(&signature.line())?;
            formatter.write_str("\n")?;
        }
        Ok(())
    }
}
