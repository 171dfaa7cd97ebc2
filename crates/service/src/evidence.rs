//! The police evidence package of a risk case: the case, its claim and trail, the customer's
//! events with their decisions, the cases of other customers linked to it by a shared device,
//! card or address, and a seal (a SHA-256 digest of the package, signed by Tally's evidence
//! key as a C2SP signed note) so that anyone holding Tally's verifier key can check later that
//! the package is the one Tally exported.
//!
//! # The seal
//!
//! The digest is taken over the package's canonical JSON: the package as served, without its
//! `seal` member, with object keys sorted and no insignificant whitespace (what `serde_json`
//! writes for a `Value`). The signed note's text is
//!
//! ```text
//! tally evidence package
//! case <case id>
//! sha256 <digest, lowercase hex>
//! generated <RFC 3339 time>
//! ```
//!
//! [`verify`] recomputes the digest of a package read back and checks it, and the signature,
//! against a verifier key given out of band (`[risk] evidence_signing_key`'s verifier, which
//! `tally consortium keygen` prints when it writes the key); `tally risk verify-evidence`
//! runs it.

use crate::caller::Caller;
use crate::risk::{RiskRequestError, RiskService, RiskServiceError};
use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use tally_consortium::{Note, SignerKey, VerifierKey};
use tally_store::risk::{CaseLogRow, CaseRow, ClaimRow, EventRow, SharedIdentifiers};

/// Most events of the customer a package carries.
pub const EVENTS_MAX: i64 = 1_000;
/// How many of the latest events are searched for other customers' use of the customer's
/// identifiers: bounds the cost of an export however long the history grows.
pub const LINKED_SEARCH_WINDOW: i64 = 200_000;
/// Most linked events read, and most linked customers reported.
pub const LINKED_EVENTS_MAX: i64 = 1_000;
pub const LINKED_CUSTOMERS_MAX: usize = 50;
/// Most cases reported per linked customer.
const CASES_PER_LINKED_CUSTOMER: i64 = 20;

/// The first line of a seal's note: what was signed.
const NOTE_TITLE: &str = "tally evidence package";

/// An identifier of the customer's that another customer's events carry too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SharedIdentifier {
    /// `device`, `card` (fingerprint) or `address` (hash), as events carry them.
    pub kind: &'static str,
    pub value: String,
}

/// Another customer whose events share identifiers with the case's customer, and their cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCustomer {
    pub customer: String,
    pub shared: BTreeSet<SharedIdentifier>,
    /// Newest first.
    pub cases: Vec<CaseRow>,
}

/// What a package holds, as stored; the API gives it its wire form and seals that.
#[derive(Debug, Clone)]
pub struct EvidencePackage {
    pub case: CaseRow,
    pub claim: Option<ClaimRow>,
    /// The case's trail, this export's line included.
    pub trail: Vec<CaseLogRow>,
    /// Oldest first.
    pub events: Vec<EventRow>,
    pub devices: BTreeSet<String>,
    pub cards: BTreeSet<String>,
    pub addresses: BTreeSet<String>,
    /// Customers linked by a shared identifier, by customer id.
    pub linked: Vec<LinkedCustomer>,
    pub generated_at: Timestamp,
}

/// A package's seal: its digest, and the signed note when Tally has an evidence key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// SHA-256 of the canonical package, lowercase hex.
    pub sha256: String,
    /// The C2SP signed note over the digest; `None` when no evidence key is configured.
    pub signed_note: Option<String>,
}

/// What [`verify`] found: the package's digest matches its note, signed by the given key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPackage {
    pub case_id: String,
    pub sha256: String,
    pub generated: String,
    pub key_name: String,
}

/// Why a package does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvidenceError {
    #[error("the package is not a JSON object with a `seal` member")]
    NotAPackage,
    #[error("the package is not signed: it was exported without an evidence key")]
    Unsigned,
    #[error("the package's content was changed: its digest is {actual}, its seal says {sealed}")]
    DigestMismatch { sealed: String, actual: String },
    #[error("the seal's note is malformed: {0}")]
    MalformedNote(String),
    #[error("the seal's signature does not verify under the given key: {0}")]
    BadSignature(String),
}

impl EvidenceError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceError::NotAPackage => "evidence_not_a_package",
            EvidenceError::Unsigned => "evidence_unsigned",
            EvidenceError::DigestMismatch { .. } => "evidence_digest_mismatch",
            EvidenceError::MalformedNote(_) => "evidence_malformed_seal",
            EvidenceError::BadSignature(_) => "evidence_bad_signature",
        }
    }
}

impl RiskService {
    /// The evidence package of case `id`, for `caller`. The export is recorded in the case's
    /// trail before anything is read: a package whose export could not be recorded is not
    /// made (it carries personal data).
    pub async fn evidence_package(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<EvidencePackage, RiskRequestError> {
        let case = self.case(id).await?;
        let now = self.clock.now();
        self.store
            .add_case_note(&RiskService::log_line(
                id,
                now,
                &caller.name,
                "evidence_exported",
                &format!("evidence package exported with API key {}", caller.key_id),
            ))
            .await?;
        let trail = self.case_log(id).await?;
        let mut events = self
            .store
            .customer_events(&case.customer, EVENTS_MAX)
            .await?;
        events.reverse();
        let events: Vec<_> = events
            .into_iter()
            .map(|event| self.opened_event(event))
            .collect();
        let mut devices = BTreeSet::new();
        let mut cards = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for row in &events {
            let event = event_body(row)?;
            let keep = |field: &str, into: &mut BTreeSet<String>| {
                if let Some(value) = event.get(field).and_then(Value::as_str) {
                    into.insert(value.to_string());
                }
            };
            keep("device", &mut devices);
            keep("card", &mut cards);
            keep("address", &mut addresses);
        }
        let linked = self
            .linked_customers(&case.customer, &devices, &cards, &addresses)
            .await?;
        let claim = self.store.claim(id).await?;
        Ok(EvidencePackage {
            case,
            claim,
            trail,
            events,
            devices,
            cards,
            addresses,
            linked,
            generated_at: now,
        })
    }

    /// Records a package's seal in its case's trail (after the package is made, since the
    /// trail is part of what is sealed), so that the digest of every package exported can be
    /// found later beside the case.
    pub async fn record_seal(
        &self,
        id: &str,
        caller: &Caller,
        seal: &Seal,
    ) -> Result<(), RiskRequestError> {
        let signed = if seal.signed_note.is_some() {
            "signed"
        } else {
            "not signed (no evidence key configured)"
        };
        self.store
            .add_case_note(&RiskService::log_line(
                id,
                self.clock.now(),
                &caller.name,
                "evidence_sealed",
                &format!("evidence package sha256 {} {signed}", seal.sha256),
            ))
            .await?;
        Ok(())
    }

    async fn linked_customers(
        &self,
        customer: &str,
        devices: &BTreeSet<String>,
        cards: &BTreeSet<String>,
        addresses: &BTreeSet<String>,
    ) -> Result<Vec<LinkedCustomer>, RiskRequestError> {
        if devices.is_empty() && cards.is_empty() && addresses.is_empty() {
            return Ok(Vec::new());
        }
        let identifiers = SharedIdentifiers {
            devices: devices.iter().cloned().collect(),
            cards: cards.iter().cloned().collect(),
            addresses: addresses.iter().cloned().collect(),
        };
        let rows = self
            .store
            .linked_events(
                customer,
                &identifiers,
                LINKED_SEARCH_WINDOW,
                LINKED_EVENTS_MAX,
            )
            .await?;
        let mut shared: BTreeMap<String, BTreeSet<SharedIdentifier>> = BTreeMap::new();
        for row in &rows {
            let event = event_body(row)?;
            for (kind, ours) in [("device", devices), ("card", cards), ("address", addresses)] {
                if let Some(value) = event.get(kind).and_then(Value::as_str) {
                    if ours.contains(value) {
                        shared
                            .entry(row.customer.clone())
                            .or_default()
                            .insert(SharedIdentifier {
                                kind,
                                value: value.to_string(),
                            });
                    }
                }
            }
        }
        let mut linked = Vec::new();
        for (other, identifiers) in shared.into_iter().take(LINKED_CUSTOMERS_MAX) {
            let cases = self
                .store
                .customer_cases(&other, CASES_PER_LINKED_CUSTOMER)
                .await?
                .into_iter()
                .map(|case| self.opened_case(case))
                .collect();
            linked.push(LinkedCustomer {
                customer: other,
                shared: identifiers,
                cases,
            });
        }
        Ok(linked)
    }
}

fn event_body(row: &EventRow) -> Result<Value, RiskRequestError> {
    serde_json::from_str(&row.body).map_err(|error| {
        RiskRequestError::Service(RiskServiceError::Inconsistent(format!(
            "stored event {} is not JSON: {error}",
            row.sequence
        )))
    })
}

/// The canonical bytes of a package: its JSON without `seal`, keys sorted, compact.
fn canonical(package: &Value) -> Result<String, EvidenceError> {
    let mut package = package
        .as_object()
        .ok_or(EvidenceError::NotAPackage)?
        .clone();
    package.remove("seal");
    Ok(Value::Object(package).to_string())
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn note_text(case_id: &str, sha256: &str, generated_at: Timestamp) -> String {
    format!("{NOTE_TITLE}\ncase {case_id}\nsha256 {sha256}\ngenerated {generated_at}\n")
}

/// Seals `package` (its wire JSON, without a `seal` member or with one that is ignored):
/// the digest, and the note signed by `signer` when one is given.
pub fn seal(
    package: &Value,
    case_id: &str,
    generated_at: Timestamp,
    signer: Option<&SignerKey>,
) -> Result<Seal, RiskServiceError> {
    let canonical = canonical(package)
        .map_err(|error| RiskServiceError::Inconsistent(format!("evidence package: {error}")))?;
    let sha256 = sha256_hex(&canonical);
    let signed_note = match signer {
        None => None,
        Some(signer) => {
            let mut note =
                Note::new(&note_text(case_id, &sha256, generated_at)).map_err(|error| {
                    RiskServiceError::Inconsistent(format!("evidence note: {error}"))
                })?;
            note.sign(signer, 0).map_err(|error| {
                RiskServiceError::Inconsistent(format!("signing the evidence note: {error}"))
            })?;
            Some(note.to_string())
        }
    };
    Ok(Seal {
        sha256,
        signed_note,
    })
}

/// Checks a package read back: its digest against its seal and its note's signature against
/// `verifier`.
pub fn verify(package: &Value, verifier: &VerifierKey) -> Result<VerifiedPackage, EvidenceError> {
    let seal = package
        .get("seal")
        .and_then(Value::as_object)
        .ok_or(EvidenceError::NotAPackage)?;
    let sealed = seal
        .get("sha256")
        .and_then(Value::as_str)
        .ok_or(EvidenceError::NotAPackage)?;
    let actual = sha256_hex(&canonical(package)?);
    if actual != sealed {
        return Err(EvidenceError::DigestMismatch {
            sealed: sealed.to_string(),
            actual,
        });
    }
    let note = seal
        .get("signed_note")
        .and_then(Value::as_str)
        .ok_or(EvidenceError::Unsigned)?;
    let note =
        Note::parse(note).map_err(|error| EvidenceError::MalformedNote(error.to_string()))?;
    let verified = note
        .verify(std::slice::from_ref(verifier))
        .map_err(|error| EvidenceError::BadSignature(error.to_string()))?;
    let mut lines = verified.text.lines();
    let malformed = |what: &str| EvidenceError::MalformedNote(format!("no {what} line"));
    if lines.next() != Some(NOTE_TITLE) {
        return Err(malformed("title"));
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|line| line.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| malformed(name))
    };
    let case_id = field("case")?;
    let noted = field("sha256")?;
    let generated = field("generated")?;
    if noted != actual {
        return Err(EvidenceError::DigestMismatch {
            sealed: noted,
            actual,
        });
    }
    Ok(VerifiedPackage {
        case_id,
        sha256: actual,
        generated,
        key_name: verifier.name().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tally_consortium::KeyType;

    fn signer(seed: u8) -> SignerKey {
        SignerKey::from_seed("evidence.lender.example", KeyType::Ed25519, [seed; 32])
            .expect("a valid key")
    }

    fn package() -> Value {
        json!({
            "case": {"id": "case-1", "customer": "customer-1"},
            "devices": ["device-1"],
            "events": [{"event": {"amount": {"value": "4999.00", "currency": "CNY"}}}],
            "generated_at": "2026-12-07T12:00:00Z",
        })
    }

    fn sealed(signer: Option<&SignerKey>) -> Value {
        let mut package = package();
        let at: Timestamp = "2026-12-07T12:00:00Z".parse().expect("a time");
        let seal = seal(&package, "case-1", at, signer).expect("sealed");
        package["seal"] = json!({"sha256": seal.sha256, "signed_note": seal.signed_note});
        package
    }

    #[test]
    fn a_sealed_package_verifies_under_its_key_and_names_its_case() {
        let key = signer(7);
        let verified = verify(&sealed(Some(&key)), &key.verifier()).expect("verifies");
        assert_eq!(verified.case_id, "case-1");
        assert_eq!(verified.generated, "2026-12-07T12:00:00Z");
        assert_eq!(
            verified.sha256,
            sha256_hex(&canonical(&package()).expect("canonical"))
        );
    }

    #[test]
    fn the_digest_ignores_key_order_and_whitespace_of_the_file() {
        let key = signer(7);
        let text = serde_json::to_string_pretty(&sealed(Some(&key))).expect("text");
        let read_back: Value = serde_json::from_str(&text).expect("json");
        assert!(verify(&read_back, &key.verifier()).is_ok());
    }

    #[test]
    fn any_change_to_the_content_is_found() {
        let key = signer(7);
        let mut changed = sealed(Some(&key));
        changed["events"][0]["event"]["amount"]["value"] = json!("499.00");
        assert!(matches!(
            verify(&changed, &key.verifier()),
            Err(EvidenceError::DigestMismatch { .. })
        ));
        // A forger who also rewrites the digest cannot re-sign the note.
        let mut forged = changed.clone();
        forged["seal"]["sha256"] = json!(sha256_hex(&canonical(&changed).expect("canonical")));
        assert!(matches!(
            verify(&forged, &key.verifier()),
            Err(EvidenceError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn another_key_or_no_signature_does_not_verify() {
        let error = verify(&sealed(Some(&signer(7))), &signer(8).verifier()).unwrap_err();
        assert_eq!(error.code(), "evidence_bad_signature");
        let error = verify(&sealed(None), &signer(7).verifier()).unwrap_err();
        assert_eq!(error, EvidenceError::Unsigned);
        let error = verify(&json!([1, 2]), &signer(7).verifier()).unwrap_err();
        assert_eq!(error, EvidenceError::NotAPackage);
    }
}
