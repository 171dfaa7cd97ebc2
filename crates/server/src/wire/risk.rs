//! Wire types of the risk routes: events to decide on, rule set versions and their
//! activation requests, list entries, cases and evidence packages.
//!
//! Response fields are declared in alphabetical order: the API has always answered with
//! sorted keys (its bodies were once built as `serde_json::Value` maps, which sort them),
//! and a struct serialises its fields in declaration order.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use tally_risk::{Activation, VersionInfo};
use tally_service::risk::timestamp;
use tally_store::risk::{ActivationRequestRow, CaseLogRow, CaseRow, ListEntryRow};
use utoipa::ToSchema;

// The handler reads the body as the risk engine's event, so that its refusals keep their
// messages; this type documents that body, and a test below holds it to the engine's event.
/// An event to decide on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskEventRequest {
    /// The caller's event id, 1 to 256 characters; a retry with the same id and body
    /// answers the stored decision.
    pub id: String,
    /// login, credit_activation, transaction, profile_change or payout.
    #[schema(example = "transaction")]
    pub kind: String,
    /// When the event happened (RFC 3339); at most 5 minutes after the service clock.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub customer: String,
    pub device: Option<String>,
    pub ip: Option<String>,
    /// Card fingerprint (never the card number).
    pub card: Option<String>,
    /// Hash of the shipping or profile address (never the address).
    pub address: Option<String>,
    /// The receiving phone of a delivery. Never stored in clear: when Tally is a member of
    /// a consortium log it is looked up there (with the card number and the address) and
    /// kept sealed for a publication if the case is confirmed; otherwise it is not used.
    pub phone: Option<String>,
    pub merchant: Option<String>,
    /// Required for transaction and payout; never negative.
    pub amount: Option<EventAmount>,
    pub geo: Option<GeoPointBody>,
    /// password, phone, address or bank_card: required for profile_change, refused for
    /// every other kind.
    pub profile_field: Option<String>,
}

/// An event's amount: a decimal string in major units beside its currency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventAmount {
    #[schema(example = "99.00")]
    pub value: String,
    #[schema(example = "CNY")]
    pub currency: String,
}

/// A point on the earth in degrees (WGS 84).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPointBody {
    /// -90 to 90.
    pub lat: f64,
    /// -180 to 180.
    pub lon: f64,
}

/// A stored decision on an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskDecisionBody {
    /// The case the action opened (review, hold_delivery), if it opened one.
    #[schema(required = true)]
    pub case_id: Option<String>,
    /// The decision as stored: `event_id`, `action`, `score`, `reasons`, `fired_rules`,
    /// `features` (the values the rules saw), `list_hits`, `rule_set_version`,
    /// `failures`, and `shadow` when a shadow version runs.
    #[schema(value_type = Object)]
    pub decision: Value,
    /// The event's position in the stored history.
    pub sequence: i64,
}

/// The live rule set version and every stored version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSetVersionsBody {
    pub active: u32,
    pub versions: Vec<RuleSetVersionBody>,
}

/// A stored rule set version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSetVersionBody {
    /// Whether it is the live version.
    pub active: bool,
    /// How many features it defines.
    pub features: usize,
    pub name: String,
    /// How many enforced rules it has.
    pub rules: usize,
    /// How many shadow rules it has (they fire, but change no action).
    pub shadow_rules: usize,
    pub version: u32,
}

impl RuleSetVersionBody {
    pub fn new(info: &VersionInfo) -> Self {
        Self {
            active: info.active,
            features: info.features,
            name: info.name.clone(),
            rules: info.rules,
            shadow_rules: info.shadow_rules,
            version: info.version,
        }
    }
}

/// A candidate rule set to back-test against the stored history.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestRuleSetRequest {
    /// The candidate rule set file (TOML); nothing is stored.
    pub source: String,
}

/// A new rule set version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRuleSetRequest {
    /// The rule set file (TOML).
    pub source: String,
    /// Request its activation at once (default false); a different key approves it.
    #[serde(default)]
    pub activate: bool,
}

/// A rule set version just stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedRuleSetBody {
    /// The pending activation request, when `activate` was true.
    #[schema(required = true)]
    pub activation_request: Option<ActivationRequestBody>,
    pub version: u32,
}

/// A request to make a stored rule set version live.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestActivationRequest {
    /// Why, for the approver and the trail.
    #[serde(default)]
    pub note: String,
}

/// A request to make a rule set version live, and its decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationRequestBody {
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub decided_at: Option<Timestamp>,
    /// The key that approved or rejected it; null while pending (and for a request
    /// decided before key ids were recorded).
    #[schema(required = true)]
    pub decided_by: Option<DeciderBody>,
    pub id: String,
    pub note: String,
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Timestamp,
    pub requested_by: RequesterBody,
    /// pending, approved or rejected.
    pub status: String,
    pub version: i64,
}

/// The API key that requested an activation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequesterBody {
    pub key_id: String,
    pub name: String,
}

/// The API key that approved or rejected an activation.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeciderBody {
    pub key_id: String,
    #[schema(required = true)]
    pub name: Option<String>,
}

impl ActivationRequestBody {
    pub fn new(request: &ActivationRequestRow) -> Self {
        Self {
            decided_at: request.decided_at.map(timestamp),
            decided_by: request.decided_by_key.as_ref().map(|key_id| DeciderBody {
                key_id: key_id.clone(),
                name: request.decided_by.clone(),
            }),
            id: request.id.clone(),
            note: request.note.clone(),
            requested_at: timestamp(request.requested_at),
            requested_by: RequesterBody {
                key_id: request.requested_by_key.clone(),
                name: request.requested_by.clone(),
            },
            status: request.status.clone(),
            version: request.version,
        }
    }
}

/// One activation request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationRequestEnvelope {
    pub request: ActivationRequestBody,
}

/// The latest activation requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationRequestList {
    pub requests: Vec<ActivationRequestBody>,
}

/// An activation request just decided.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecidedActivationBody {
    /// What the activation did, when approved; null when rejected.
    #[schema(required = true)]
    pub activation: Option<ActivationBody>,
    pub request: ActivationRequestBody,
}

/// What an activation did to the feature state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationBody {
    /// Features new to the live version, filled from the stored history.
    pub cold_features: Vec<String>,
    /// Features defined the same way in the version that was live: they kept their state.
    pub kept_features: Vec<String>,
    pub version: u32,
}

impl ActivationBody {
    pub fn new(activation: &Activation) -> Self {
        Self {
            cold_features: activation.cold_features.clone(),
            kept_features: activation.kept_features.clone(),
            version: activation.version,
        }
    }
}

/// A list entry to add, replacing one of the same kind, field and value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddListEntryRequest {
    /// block, allow or watch.
    #[schema(example = "block")]
    pub kind: String,
    /// customer, device, ip, card, address or merchant.
    #[schema(example = "device")]
    pub field: String,
    pub value: String,
    pub reason: String,
    /// When the entry stops applying (RFC 3339, in the future); never when absent.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

/// A block, allow or watch list entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListEntryBody {
    #[schema(value_type = String, format = DateTime)]
    pub added_at: Timestamp,
    pub added_by: String,
    /// Null: it never expires.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub expires_at: Option<Timestamp>,
    /// customer, device, ip, card, address or merchant.
    pub field: String,
    pub id: String,
    /// block, allow or watch.
    pub kind: String,
    pub reason: String,
    /// `manual`, or the case that added it (`case <id>`).
    pub source: String,
    pub value: String,
}

impl ListEntryBody {
    pub fn new(row: &ListEntryRow) -> Self {
        Self {
            added_at: timestamp(row.added_at),
            added_by: row.added_by.clone(),
            expires_at: row.expires_at.map(timestamp),
            field: row.field.clone(),
            id: row.id.clone(),
            kind: row.kind.clone(),
            reason: row.reason.clone(),
            source: row.source.clone(),
            value: row.value.clone(),
        }
    }
}

/// The live list entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListEntryList {
    pub entries: Vec<ListEntryBody>,
}

/// A case in the analysts' queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseBody {
    /// The analyst who claimed or closed it.
    #[schema(required = true)]
    pub assignee: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    pub customer: String,
    /// The event whose decision opened it; null for a stolen-account claim.
    #[schema(required = true)]
    pub event_sequence: Option<i64>,
    pub id: String,
    /// stolen_account, hold_delivery or review.
    pub kind: String,
    /// 0 (stolen_account) first, then 1 (hold_delivery), then 2 (review).
    pub priority: i64,
    /// open, claimed, approved or rejected.
    pub status: String,
    pub summary: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl CaseBody {
    pub fn new(case: &CaseRow) -> Self {
        Self {
            assignee: case.assignee.clone(),
            created_at: timestamp(case.created_at),
            customer: case.customer.clone(),
            event_sequence: case.event_sequence,
            id: case.id.clone(),
            kind: case.kind.clone(),
            priority: case.priority,
            status: case.status.clone(),
            summary: case.summary.clone(),
            updated_at: timestamp(case.updated_at),
        }
    }
}

/// One case.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseEnvelope {
    pub case: CaseBody,
}

/// Cases of one status, in queue order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseList {
    pub cases: Vec<CaseBody>,
}

/// A line of a case's trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseLogLineBody {
    /// opened, claimed, approved, rejected, note or evidence_exported.
    pub action: String,
    pub actor: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub note: String,
}

impl CaseLogLineBody {
    pub fn new(line: &CaseLogRow) -> Self {
        Self {
            action: line.action.clone(),
            actor: line.actor.clone(),
            at: timestamp(line.at),
            note: line.note.clone(),
        }
    }
}

/// A case and its trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseWithLogBody {
    pub case: CaseBody,
    pub log: Vec<CaseLogLineBody>,
}

/// The note logged with a case's move.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveCaseRequest {
    /// Logged with the move; required and not empty for `note`.
    #[serde(default)]
    pub note: String,
}

/// A customer's report that their account was stolen.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimStolenAccountRequest {
    /// 1 to 256 characters.
    pub customer: String,
    /// The customer's account of what happened, at most 4,096 bytes.
    pub description: String,
    /// From when the thief had the account (RFC 3339, not after the claim): every purchase
    /// authorised from then on is written off when the claim is confirmed. Without it the
    /// confirmation voids the authorisations and purchases are written off one by one.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default)]
    pub compromised_at: Option<Timestamp>,
    /// The police report's reference, 1 to 128 bytes; carried in the evidence package.
    #[serde(default)]
    pub police_reference: Option<String>,
}

/// The re-verification that gives a confirmed claim's customer their access back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreAccessRequest {
    /// How the customer proved who they are (logged in the case's trail); not blank.
    pub note: String,
}

/// The evidence package of a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceBody {
    /// The addresses (hashes) the customer's events carried.
    pub addresses: BTreeSet<String>,
    /// The card fingerprints the customer's events carried.
    pub cards: BTreeSet<String>,
    pub case: CaseBody,
    /// The claim, for a stolen-account case made with one: the stated compromise time and
    /// the police reference; absent for other cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimBody>,
    pub customer: String,
    /// The devices the customer's events carried.
    pub devices: BTreeSet<String>,
    /// The customer's events, oldest first, with the decisions made on them.
    pub events: Vec<EvidenceEventBody>,
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: Timestamp,
    /// Other customers whose recent events carry one of this customer's devices, cards or
    /// addresses, with what they share and their cases (a fraud ring's other victims or
    /// accounts).
    pub linked_customers: Vec<LinkedCustomerBody>,
    /// The package's SHA-256 digest and Tally's signed note over it; always present in an
    /// answer (absent only while the package is being sealed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<SealBody>,
    /// The case's trail, this export included.
    pub trail: Vec<CaseLogLineBody>,
}

/// Another customer linked to an evidence package's customer by a shared identifier.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedCustomerBody {
    /// Their cases, newest first.
    pub cases: Vec<CaseBody>,
    pub customer: String,
    /// What they share: `{kind: device|card|address, value}`.
    pub shared: Vec<SharedIdentifierBody>,
}

/// An identifier two customers' events share.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharedIdentifierBody {
    /// device, card (fingerprint) or address (hash).
    pub kind: String,
    pub value: String,
}

/// An evidence package's seal: the SHA-256 of the package's canonical JSON (without `seal`,
/// keys sorted, compact), and a C2SP signed note over it by Tally's evidence key
/// (`[risk] evidence_signing_key`); check it with `tally evidence verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SealBody {
    /// The digest, lowercase hex.
    pub sha256: String,
    /// The signed note (`tally evidence package`, the case id, the digest and the time,
    /// then the signature line); null when no evidence key is configured.
    #[schema(required = true)]
    pub signed_note: Option<String>,
}

impl LinkedCustomerBody {
    pub fn new(linked: &tally_service::evidence::LinkedCustomer) -> Self {
        Self {
            cases: linked.cases.iter().map(CaseBody::new).collect(),
            customer: linked.customer.clone(),
            shared: linked
                .shared
                .iter()
                .map(|identifier| SharedIdentifierBody {
                    kind: identifier.kind.to_string(),
                    value: identifier.value.clone(),
                })
                .collect(),
        }
    }
}

/// A stolen-account claim as the evidence package carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimBody {
    /// From when the thief had the account, as the customer stated it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub compromised_at: Option<Timestamp>,
    pub police_reference: Option<String>,
    /// When the customer's access was restored after re-verification, and by whom.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub restored_at: Option<Timestamp>,
    pub restored_by: Option<String>,
}

impl ClaimBody {
    pub fn new(row: &tally_store::risk::ClaimRow) -> Self {
        let at = |micros: Option<i64>| micros.map(tally_service::risk::timestamp);
        ClaimBody {
            compromised_at: at(row.compromised_at),
            police_reference: row.police_reference.clone(),
            restored_at: at(row.restored_at),
            restored_by: row.restored_by.clone(),
        }
    }
}

/// A stored event and the decision made on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceEventBody {
    /// The decision as stored (see the decision answer).
    #[schema(value_type = Object)]
    pub decision: Value,
    /// The event as stored (see the event request).
    #[schema(value_type = Object)]
    pub event: Value,
    pub sequence: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tally_core::{Amount, Currency};
    use tally_risk::{Event, EventKind, GeoPoint, ProfileField};

    /// A body as the API sends it: the serialised struct must equal the serialised JSON
    /// value of it, whose object keys are sorted.
    fn assert_sorted_keys<T: Serialize>(body: &T) {
        let text = serde_json::to_string(body).expect("the body serialises");
        let value = serde_json::to_value(body).expect("the body serialises");
        assert_eq!(text, value.to_string());
    }

    fn at(micros: i64) -> Timestamp {
        timestamp(micros)
    }

    fn case() -> CaseRow {
        CaseRow {
            id: "case-1".into(),
            kind: "review".into(),
            priority: 2,
            status: "claimed".into(),
            customer: "customer-1".into(),
            event_sequence: Some(7),
            summary: "review on transaction event e-1".into(),
            assignee: Some("analyst".into()),
            created_at: 1_000_000,
            updated_at: 2_000_000,
        }
    }

    fn log_line() -> CaseLogLineBody {
        CaseLogLineBody::new(&CaseLogRow {
            id: "line-1".into(),
            case_id: "case-1".into(),
            at: 3_000_000,
            actor: "analyst".into(),
            action: "note".into(),
            note: "called the customer".into(),
        })
    }

    fn activation_request() -> ActivationRequestBody {
        ActivationRequestBody::new(&ActivationRequestRow {
            id: "request-1".into(),
            version: 2,
            note: "tighter velocity".into(),
            requested_at: 1_000_000,
            requested_by: "maker".into(),
            requested_by_key: "key-maker".into(),
            status: "approved".into(),
            decided_at: Some(2_000_000),
            decided_by: Some("checker".into()),
            decided_by_key: Some("key-checker".into()),
        })
    }

    #[test]
    fn every_answer_serialises_with_sorted_keys() {
        let decision = json!({"score": 40, "action": "review", "features": {"b": 1, "a": 2}});
        assert_sorted_keys(&RiskDecisionBody {
            case_id: Some("case-1".into()),
            decision: decision.clone(),
            sequence: 7,
        });
        assert_sorted_keys(&RuleSetVersionsBody {
            active: 1,
            versions: vec![RuleSetVersionBody::new(&VersionInfo {
                version: 1,
                name: "base".into(),
                rules: 3,
                shadow_rules: 1,
                features: 2,
                active: true,
            })],
        });
        assert_sorted_keys(&UploadedRuleSetBody {
            activation_request: Some(activation_request()),
            version: 2,
        });
        assert_sorted_keys(&ActivationRequestEnvelope {
            request: activation_request(),
        });
        assert_sorted_keys(&ActivationRequestList {
            requests: vec![activation_request()],
        });
        assert_sorted_keys(&DecidedActivationBody {
            activation: Some(ActivationBody::new(&Activation {
                version: 2,
                kept_features: vec!["logins_per_hour".into()],
                cold_features: vec!["payouts_per_day".into()],
            })),
            request: activation_request(),
        });
        assert_sorted_keys(&ListEntryList {
            entries: vec![ListEntryBody::new(&ListEntryRow {
                id: "entry-1".into(),
                kind: "block".into(),
                field: "device".into(),
                value: "device-1".into(),
                reason: "mule farm".into(),
                source: "manual".into(),
                added_at: 1_000_000,
                added_by: "analyst".into(),
                expires_at: Some(9_000_000),
            })],
        });
        assert_sorted_keys(&CaseList {
            cases: vec![CaseBody::new(&case())],
        });
        assert_sorted_keys(&CaseEnvelope {
            case: CaseBody::new(&case()),
        });
        assert_sorted_keys(&CaseWithLogBody {
            case: CaseBody::new(&case()),
            log: vec![log_line()],
        });
        assert_sorted_keys(&EvidenceBody {
            addresses: BTreeSet::from(["address-1".to_string()]),
            cards: BTreeSet::from(["card-1".to_string()]),
            case: CaseBody::new(&case()),
            claim: Some(ClaimBody {
                compromised_at: Some(at(1_000_000)),
                police_reference: Some("PR-1".into()),
                restored_at: None,
                restored_by: None,
            }),
            customer: "customer-1".into(),
            devices: BTreeSet::from(["device-1".to_string()]),
            events: vec![EvidenceEventBody {
                decision,
                event: json!({"kind": "login", "id": "e-1"}),
                sequence: 7,
            }],
            generated_at: at(4_000_000),
            linked_customers: vec![LinkedCustomerBody {
                cases: vec![CaseBody::new(&case())],
                customer: "customer-2".into(),
                shared: vec![SharedIdentifierBody {
                    kind: "device".into(),
                    value: "device-1".into(),
                }],
            }],
            seal: Some(SealBody {
                sha256: "00".repeat(32),
                signed_note: None,
            }),
            trail: vec![log_line()],
        });
    }

    /// The documented event request and the engine's event accept the same fields: an
    /// event with every field set reads as the documented request, and a request with
    /// every documented field set reads as an event.
    #[test]
    fn the_event_request_documents_the_engines_event() {
        let mut event = Event::new("e-1", EventKind::ProfileChange, at(1_000_000), "customer-1");
        event.device = Some("device-1".into());
        event.ip = Some("10.0.0.1".into());
        event.card = Some("card-1".into());
        event.address = Some("address-1".into());
        event.merchant = Some("merchant-1".into());
        event.amount = Some(Amount::new(9900, Currency::CNY));
        event.geo = Some(GeoPoint {
            lat: 31.2,
            lon: 121.5,
        });
        event.profile_field = Some(ProfileField::Phone);
        let documented: RiskEventRequest =
            serde_json::from_str(&event.to_json()).expect("every event field is documented");
        assert_eq!(documented.profile_field.as_deref(), Some("phone"));

        let request = json!({
            "id": "e-2", "kind": "profile_change", "at": "2025-01-01T00:00:00Z",
            "customer": "customer-1", "device": "device-1", "ip": "10.0.0.1",
            "card": "card-1", "address": "address-1", "merchant": "merchant-1",
            "amount": {"value": "99.00", "currency": "CNY"},
            "geo": {"lat": 31.2, "lon": 121.5}, "profile_field": "bank_card",
        });
        serde_json::from_value::<RiskEventRequest>(request.clone())
            .expect("the request is documented");
        let event: Event =
            serde_json::from_value(request).expect("the engine reads every documented field");
        assert_eq!(event.profile_field, Some(ProfileField::BankCard));
    }
}
