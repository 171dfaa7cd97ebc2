//! Risk routes: decisions on events, rule set versions, lists, and the analysts' case queue
//! with stolen-account claims and evidence packages. Deciding each event id once and the
//! four-eyes activation of rule set versions are use cases of `tally_service::risk::RiskService`;
//! these handlers parse and answer.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::wire::risk::{
    ActivationBody, ActivationRequestBody, ActivationRequestEnvelope, ActivationRequestList,
    AddListEntryRequest, BacktestRuleSetRequest, CaseBody, CaseEnvelope, CaseList, CaseLogLineBody,
    CaseWithLogBody, ClaimBody, ClaimStolenAccountRequest, DecidedActivationBody, EvidenceBody,
    EvidenceEventBody, LinkedCustomerBody, ListEntryBody, ListEntryList, MoveCaseRequest,
    RequestActivationRequest, RestoreAccessRequest, RiskDecisionBody, RiskEventRequest,
    RuleSetVersionBody, RuleSetVersionsBody, SealBody, UploadRuleSetRequest, UploadedRuleSetBody,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use tally_risk::{EntityField, Event, Lists};
use tally_service::consortium::member_client::EventIdentifiers;
use tally_service::credit::decision::CreditService;
use tally_service::risk::{list_entry, micros, RiskService};
use tally_service::risk_fingerprints::{
    fingerprint_event, fingerprint_list_value, FingerprintError,
};
use tally_service::stolen_accounts::{NewClaim, StolenAccountClaims};
use tally_store::risk::{CaseQueue, CaseRow, ListEntryRow};
use tally_store::sealed_texts::TextColumn;

/// Most cases one listing returns.
pub(crate) const CASES_PER_PAGE_MAX: i64 = tally_service::risk::CASES_PER_PAGE_MAX;

#[derive(Clone)]
pub struct RiskContext {
    pub risk: Arc<RiskService>,
    /// The credit service, whose lines follow stolen-account claims; `None` in a process
    /// that does not serve credit (another process then follows the claims up).
    pub credit: Option<Arc<CreditService>>,
    /// Tally's evidence key, which signs evidence packages' seals; `None`: not configured,
    /// and seals carry the digest only.
    pub evidence_signer: Option<Arc<tally_consortium::SignerKey>>,
    /// The risk gate, whose held operations follow the cases that review them.
    pub gate: Option<Arc<tally_service::risk_gate::RiskGate>>,
    /// Personal-data keys, whose fingerprint key replaces cards and addresses in events and
    /// list entries; `None`: events and entries carrying them are refused.
    pub privacy: Option<Arc<tally_privacy::Privacy>>,
}

/// A refusal of a personal value before it reached the engine.
fn fingerprint_error(error: FingerprintError) -> ApiError {
    match error {
        FingerprintError::PrivacyKeysNotConfigured => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error.code(),
            format!("{error}: {}", crate::routes::customers::PRIVACY_KEYS_HELP),
        ),
        other => ApiError::unprocessable(other.code(), other.to_string()),
    }
}

impl RiskContext {
    /// The stolen-account flow over this process's services.
    fn claims(&self) -> StolenAccountClaims<'_> {
        StolenAccountClaims {
            risk: &self.risk,
            credit: self.credit.as_deref(),
            gate: self.gate.as_deref(),
        }
    }
}

/// Evaluates one event: features, lists and the active rule set decide; the event and the
/// decision are stored (with a case when the action opens one) before the answer.
#[utoipa::path(
    post, path = "/v1/risk/decisions", tag = "risk",
    request_body(content = RiskEventRequest, description = "An event: `{id, kind: login|credit_activation|transaction|profile_change|payout|credit_authorization, at, customer, device?, ip?, card?, address?, phone?, merchant?, amount?: {value, currency} (required for transaction, payout and credit_authorization), geo?: {lat, lon}, profile_field?: password|phone|address|bank_card (profile_change only)}`. `card` (a card number or a card token) and `address` are replaced by Tally's keyed fingerprints before anything is stored or decided; `phone` (a delivery's receiving phone) is never stored in clear; with a consortium log, the device, a card number, the address and the phone are looked up there; `customer` is the lender's customer reference, never a phone number"),
    responses(
        (status = 200, description = "Stored: `{sequence, decision, case_id}`, the decision with its action, reasons and features; `case_id` when the action opened a case. A retry of the same event (same id, same body) answers the stored decision and changes nothing", body = RiskDecisionBody),
        (status = 400, description = "Malformed JSON (`malformed_json`)", body = ErrorBody),
        (status = 422, description = "Invalid event: unknown kind, missing or malformed field, no amount, negative amount, blank address (`risk_invalid_event`); a `card` written as a card number (digits, spaces, dashes) that is none: 12 to 19 digits with a valid check digit (`invalid_card_number`); a `phone` that is not a phone number (`invalid_phone`); dated more than 5 minutes after the service clock (`risk_event_in_future`); a customer that is a phone number (`risk_customer_is_phone_number`). Nothing is stored or counted", body = ErrorBody),
        (status = 409, description = "The event id was already decided for a different event (`risk_event_id_reused`); nothing changed. The same event again answers the stored decision", body = ErrorBody),
        (status = 503, description = "The decision could not be stored (`storage_unavailable`); it was counted in the velocity features once, and a retry with the same event id stores it. An event with a card or an address while no personal-data keys are configured (`privacy_keys_not_configured`): nothing is stored", body = ErrorBody),
    ),
    security(("api_key" = ["risk:write"]))
)]
pub async fn decide(
    State(context): State<RiskContext>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<RiskDecisionBody>), ApiError> {
    let mut body = body;
    // The receiving phone is no field of the engine's events: it serves the consortium
    // lookup only, and is never stored in clear.
    let phone = match body
        .as_object_mut()
        .and_then(|object| object.remove("phone"))
    {
        None | Some(Value::Null) => None,
        Some(Value::String(phone)) => Some(phone),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "risk_invalid_event",
                "phone must be a string",
            ))
        }
    };
    let mut event: Event = serde_json::from_value(body)
        .map_err(|error| ApiError::unprocessable("risk_invalid_event", error.to_string()))?;
    // What another member of the consortium log can match, taken while the card number,
    // address and phone are in hand; a malformed card number or phone is refused whether
    // or not Tally is a member, so that an event means the same everywhere.
    let identifiers = EventIdentifiers::parse(
        event.card.as_deref(),
        event.address.as_deref(),
        phone.as_deref(),
    )
    .map_err(|error| ApiError::unprocessable(error.code(), error.to_string()))?;
    let identifiers = if context.risk.consortium.is_some() {
        identifiers
    } else {
        EventIdentifiers::default()
    };
    // Cards and addresses go no further in clear: the engine, the store and evidence
    // packages see their keyed fingerprints.
    fingerprint_event(context.privacy.as_deref(), &mut event).map_err(fingerprint_error)?;
    // A customer named by a Tally customer id must be one: an event about a customer Tally
    // does not know would feed features no operation of Tally's ever reads. Other ids (a
    // lender's own) are taken as they are.
    if event.customer.parse::<uuid::Uuid>().is_ok()
        && !context
            .risk
            .store
            .database()
            .customer_exists(&event.customer)
            .await?
    {
        return Err(ApiError::unprocessable(
            "customer_unknown",
            format!(
                "customer {} is a Tally customer id, and no such customer exists",
                event.customer
            ),
        ));
    }
    let decided = context
        .risk
        .decide_with_identifiers(&event, &identifiers)
        .await?;
    Ok((
        StatusCode::OK,
        axum::Json(RiskDecisionBody {
            case_id: decided.case_id,
            decision: {
                let mut decision = decided.decision;
                context.risk.open_decision(&mut decision);
                decision
            },
            sequence: decided.sequence,
        }),
    ))
}

#[utoipa::path(
    get, path = "/v1/risk/rule-sets", tag = "risk",
    responses(
        (status = 200, description = "`{active, versions}`: the live version and every stored version", body = RuleSetVersionsBody),
    ),
    security(("api_key" = ["risk:read"]))
)]
pub async fn list_rule_sets(State(context): State<RiskContext>) -> axum::Json<RuleSetVersionsBody> {
    let state = context.risk.state.lock().await;
    axum::Json(RuleSetVersionsBody {
        active: state.engine.active_version(),
        versions: state
            .engine
            .versions()
            .iter()
            .map(RuleSetVersionBody::new)
            .collect(),
    })
}

/// Uploads a new rule set version: compiled and checked first, refused with the rule id,
/// line and message when it does not compile, while the live version keeps running.
#[utoipa::path(
    post, path = "/v1/risk/rule-sets", tag = "risk",
    request_body(content = UploadRuleSetRequest, description = "`{source, activate?}`: the rule set file (TOML) and whether to request its activation at once (default false); a different `risk:admin` key must approve it"),
    responses(
        (status = 201, description = "`{version, activation_request}`: the new version, and the pending activation request when `activate` was true", body = UploadedRuleSetBody),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`)", body = ErrorBody),
        (status = 422, description = "Not valid TOML or a structural fault (`risk_invalid_rule_set`), or a rule whose condition does not compile, with its id and line (`risk_rule_does_not_compile`); the live version keeps running", body = ErrorBody),
    ),
    security(("api_key" = ["risk:admin"]))
)]
pub async fn upload_rule_set(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Json(body): Json<UploadRuleSetRequest>,
) -> Result<(StatusCode, axum::Json<UploadedRuleSetBody>), ApiError> {
    let uploaded = context
        .risk
        .upload_rule_set(&body.source, body.activate, &principal.caller())
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(UploadedRuleSetBody {
            activation_request: uploaded
                .activation_request
                .as_ref()
                .map(ActivationRequestBody::new),
            version: uploaded.version,
        }),
    ))
}

/// Back-tests a candidate rule set against the stored history of the last 90 days: each
/// event replayed through the candidate and the live rule set with the features as they
/// were, precision and recall against the analysts' decided cases, and the decisions that
/// would change. Nothing is stored and nothing goes live.
#[utoipa::path(
    post, path = "/v1/risk/rule-sets/backtests", tag = "risk",
    request_body(content = BacktestRuleSetRequest, description = "`{source}`: the candidate rule set file (TOML)"),
    responses(
        (status = 200, description = "`{report, live_version, labelled_fraud, labelled_clean, changed_from_stored, changed}`: the replay's report (`events`, `actions`, `rule_hits`, `labels` with `precision` and `recall`, `live_diff` against the live version), how many events the analysts' decisions label, and the stored decisions the candidate would change (the first 200 listed, oldest first, with their reason codes)", body = Object),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`)", body = ErrorBody),
        (status = 422, description = "Not valid TOML or a structural fault (`risk_invalid_rule_set`), or a rule whose condition does not compile, with its id and line (`risk_rule_does_not_compile`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:admin"]))
)]
pub async fn backtest_rule_set(
    State(context): State<RiskContext>,
    Json(body): Json<BacktestRuleSetRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let result = context.risk.backtest_stored(&body.source).await?;
    Ok(axum::Json(
        serde_json::to_value(&result).map_err(ApiError::internal)?,
    ))
}

fn parse_version(version: &str) -> Result<u32, ApiError> {
    version.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("{version:?} is not a rule set version"),
        )
    })
}

/// Asks for a stored version to go live (an older version: the rollback). Nothing changes
/// until a different `risk:admin` key approves the request.
#[utoipa::path(
    post, path = "/v1/risk/rule-sets/{version}/activation-requests", tag = "risk",
    request_body(content = RequestActivationRequest, description = "`{note?}`: why, for the approver and the trail"),
    params(("version" = u32, Path, description = "Rule set version; an older one is the rollback")),
    responses(
        (status = 201, description = "`{request}`: the pending request, with the requesting key (`requested_by: {key_id, name}`)", body = ActivationRequestEnvelope),
        (status = 400, description = "Not a version number (`invalid_id`), malformed body", body = ErrorBody),
        (status = 404, description = "No such version (`risk_unknown_rule_set_version`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:admin"]))
)]
pub async fn request_activation(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Path(version): Path<String>,
    Json(body): Json<RequestActivationRequest>,
) -> Result<(StatusCode, axum::Json<ActivationRequestEnvelope>), ApiError> {
    let version = parse_version(&version)?;
    let request = context
        .risk
        .request_activation(version, &body.note, &principal.caller())
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ActivationRequestEnvelope {
            request: ActivationRequestBody::new(&request),
        }),
    ))
}

/// Most activation requests one listing returns.
const ACTIVATION_REQUESTS_MAX: i64 = 500;

/// The activation trail: every request, who asked, who approved or rejected, newest first.
#[utoipa::path(
    get, path = "/v1/risk/activation-requests", tag = "risk",
    responses(
        (status = 200, description = "`{requests}`: the latest 500 activation requests, newest first, each with `requested_by` and `decided_by` (`{key_id, name}`)", body = ActivationRequestList),
    ),
    security(("api_key" = ["risk:read"]))
)]
pub async fn list_activation_requests(
    State(context): State<RiskContext>,
) -> Result<axum::Json<ActivationRequestList>, ApiError> {
    let requests = context
        .risk
        .store
        .activation_requests(ACTIVATION_REQUESTS_MAX)
        .await?;
    Ok(axum::Json(ActivationRequestList {
        requests: requests
            .into_iter()
            .map(|request| {
                ActivationRequestBody::new(&context.risk.opened_activation_request(request))
            })
            .collect(),
    }))
}

/// Approves or rejects a pending activation request. Approval needs a key other than the
/// requester's (by key id: names are not unique) and makes the version live; features
/// defined the same way in the live version keep their state, the others are filled from
/// the stored history before the answer. Rejection (or withdrawal by the requester)
/// changes nothing live.
#[utoipa::path(
    post, path = "/v1/risk/activation-requests/{id}/{decision}", tag = "risk",
    params(
        ("id" = String, Path, description = "Activation request id"),
        ("decision" = String, Path, description = "approve or reject"),
    ),
    responses(
        (status = 200, description = "`{request, activation}`: the decided request and, when approved, the activation (the version, its kept and cold features)", body = DecidedActivationBody),
        (status = 403, description = "The approving key is the requesting key (`risk_approver_is_requester`)", body = ErrorBody),
        (status = 404, description = "No such request (`risk_activation_request_not_found`) or decision (`not_found`)", body = ErrorBody),
        (status = 409, description = "The request was already decided (`risk_activation_request_decided`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:admin"]))
)]
pub async fn decide_activation(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Path((id, decision)): Path<(String, String)>,
) -> Result<axum::Json<DecidedActivationBody>, ApiError> {
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::not_found("not_found", "no such decision")),
    };
    let decided = context
        .risk
        .decide_activation(&id, approve, &principal.caller())
        .await?;
    Ok(axum::Json(DecidedActivationBody {
        activation: decided.activation.as_ref().map(ActivationBody::new),
        request: ActivationRequestBody::new(&decided.request),
    }))
}

#[utoipa::path(
    get, path = "/v1/risk/lists", tag = "risk",
    responses(
        (status = 200, description = "`{entries}`: the live block, allow and watch list entries: not removed, and without expiry or expiring after the service clock's now", body = ListEntryList),
    ),
    security(("api_key" = ["risk:read"]))
)]
pub async fn list_entries(
    State(context): State<RiskContext>,
) -> Result<axum::Json<ListEntryList>, ApiError> {
    let now = micros(context.risk.clock.now());
    let rows = context.risk.store.live_list_entries(now).await?;
    Ok(axum::Json(ListEntryList {
        entries: rows
            .into_iter()
            .map(|row| ListEntryBody::new(&context.risk.opened_list_entry(row)))
            .collect(),
    }))
}

#[utoipa::path(
    post, path = "/v1/risk/lists", tag = "risk",
    request_body(content = AddListEntryRequest, description = "`{kind: block|allow|watch, field: customer|device|ip|card|address|merchant, value, reason, expires_at?}`. A card or address value is listed as its keyed fingerprint (what events carry); a fingerprint copied from an evidence package is kept"),
    responses(
        (status = 201, description = "The entry, replacing one of the same kind, field and value", body = ListEntryBody),
        (status = 503, description = "A card or address entry while no personal-data keys are configured (`privacy_keys_not_configured`)", body = ErrorBody),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`)", body = ErrorBody),
        (status = 403, description = "Without `risk:admin`: an allow-list entry (it exempts its entity from the rules), or an entry replacing a live one with an earlier end (it would lift it early) (`forbidden`)", body = ErrorBody),
        (status = 422, description = "Unknown kind or field, expiry not in the future, empty value or reason (`risk_invalid_list_entry`); a customer that is a phone number (`risk_customer_is_phone_number`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:write"]))
)]
pub async fn add_list_entry(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Json(body): Json<AddListEntryRequest>,
) -> Result<(StatusCode, axum::Json<ListEntryBody>), ApiError> {
    let invalid = |message: String| ApiError::unprocessable("risk_invalid_list_entry", message);
    if !matches!(body.kind.as_str(), "block" | "allow" | "watch") {
        return Err(invalid(format!(
            "kind {:?} is not block, allow or watch",
            body.kind
        )));
    }
    // An allow entry exempts its entity from the rules: as much a switch of fraud control
    // as removing a block, so it takes the same scope.
    if body.kind == "allow" {
        principal.require("risk:admin")?;
    }
    let Some(field) = EntityField::parse(&body.field) else {
        return Err(invalid(format!(
            "field {:?} is not an entity field",
            body.field
        )));
    };
    // A card or an address is listed as the fingerprint events carry, never in clear.
    let value = if body.value.trim().is_empty() {
        body.value
    } else {
        fingerprint_list_value(context.privacy.as_deref(), field, &body.value).map_err(|error| {
            match error {
                FingerprintError::BlankAddress => invalid("value must not be blank".into()),
                other => fingerprint_error(other),
            }
        })?
    };
    let risk = &context.risk;
    let now = risk.clock.now();
    if body.expires_at.is_some_and(|expires| expires <= now) {
        return Err(invalid("expires_at is not in the future".into()));
    }
    // The reason is free text: sealed where stored (and so in the engine, which copies it
    // into decisions), answered as written.
    let reason = if body.reason.trim().is_empty() {
        body.reason.clone()
    } else {
        risk.seal_column(TextColumn::ListEntryReason, "", &body.reason)?
    };
    let row = ListEntryRow {
        id: uuid::Uuid::now_v7().to_string(),
        kind: body.kind,
        field: body.field,
        value,
        reason,
        source: "manual".into(),
        added_at: micros(now),
        added_by: principal.name.clone(),
        expires_at: body.expires_at.map(micros),
    };
    let entry = list_entry(&row).map_err(|error| invalid(error.to_string()))?;
    Lists::check(&entry)?;
    let mut state = risk.state.lock().await;
    // Replacing a live entry with one that ends sooner lifts it early: as much a removal as
    // DELETE, so it takes the same scope.
    let shortens = state.engine.lists().entries().any(|existing| {
        existing.kind == entry.kind
            && existing.field == entry.field
            && existing.value == entry.value
            && match (existing.expires_at, entry.expires_at) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(old), Some(new)) => new < old,
            }
    });
    if shortens {
        principal.require("risk:admin")?;
    }
    risk.store.insert_list_entry(&row).await?;
    state.engine.lists_mut().add(entry)?;
    let row = ListEntryRow {
        reason: body.reason,
        ..row
    };
    Ok((StatusCode::CREATED, axum::Json(ListEntryBody::new(&row))))
}

#[utoipa::path(
    delete, path = "/v1/risk/lists/{id}", tag = "risk",
    params(("id" = String, Path, description = "List entry id")),
    responses(
        (status = 200, description = "The removed entry", body = ListEntryBody),
        (status = 404, description = "No live list entry with that id (`risk_list_entry_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:admin"]))
)]
pub async fn remove_list_entry(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<axum::Json<ListEntryBody>, ApiError> {
    let risk = &context.risk;
    let mut state = risk.state.lock().await;
    let row = risk
        .store
        .remove_list_entry(&id, micros(risk.clock.now()), &principal.name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "risk_list_entry_not_found",
                format!("no live list entry {id}"),
            )
        })?;
    let entry = list_entry(&row).map_err(ApiError::internal)?;
    state
        .engine
        .lists_mut()
        .remove(entry.kind, entry.field, &entry.value);
    Ok(axum::Json(ListEntryBody::new(&risk.opened_list_entry(row))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    /// open (default), claimed, approved or rejected.
    pub status: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(
    get, path = "/v1/risk/cases", tag = "risk",
    params(
        ("status" = Option<String>, Query, description = "open (default), claimed, approved or rejected"),
        ("limit" = Option<i64>, Query, description = "1 to 500 (default 100)"),
    ),
    responses(
        (status = 200, description = "`{cases}`: stolen-account claims first, then held deliveries, then reviews, oldest first within each", body = CaseList),
        (status = 400, description = "Unknown status, limit out of range or unknown parameter (`invalid_query`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:analyst"]))
)]
pub async fn list_cases(
    State(context): State<RiskContext>,
    Query(query): Query<CaseQuery>,
) -> Result<axum::Json<CaseList>, ApiError> {
    let cases = context
        .risk
        .cases(&CaseQueue {
            status: query.status.unwrap_or_else(|| "open".into()),
            kind: None,
            assignee_key: None,
            limit: query.limit.unwrap_or(100),
            offset: 0,
            sort: None,
        })
        .await?;
    Ok(axum::Json(CaseList {
        cases: cases.iter().map(CaseBody::new).collect(),
    }))
}

async fn find_case(context: &RiskContext, id: &str) -> Result<CaseRow, ApiError> {
    Ok(context.risk.case(id).await?)
}

#[utoipa::path(
    get, path = "/v1/risk/cases/{id}", tag = "risk",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "`{case, log}`: the case and its trail", body = CaseWithLogBody),
        (status = 404, description = "No such case (`risk_case_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:analyst"]))
)]
pub async fn get_case(
    State(context): State<RiskContext>,
    Path(id): Path<String>,
) -> Result<axum::Json<CaseWithLogBody>, ApiError> {
    let case = find_case(&context, &id).await?;
    let log = context.risk.case_log(&id).await?;
    Ok(axum::Json(CaseWithLogBody {
        case: CaseBody::new(&case),
        log: log.iter().map(CaseLogLineBody::new).collect(),
    }))
}

/// Moves a case: `claim` takes an open case; `approve` and `reject` close a case the caller
/// has claimed. Approving a hold releases it; rejecting cancels the order; approving a
/// stolen-account claim confirms it: the customer goes on the block list (the account is
/// locked) and the write-off is for the credit service.
#[utoipa::path(
    post, path = "/v1/risk/cases/{id}/{action}", tag = "risk",
    request_body(content = MoveCaseRequest, description = "`{note?}`: the note logged with the move (required and not empty for `note`)"),
    params(
        ("id" = String, Path, description = "Case id"),
        ("action" = String, Path, description = "claim (an open case), approve or reject (a case the caller has claimed), or note"),
    ),
    responses(
        (status = 200, description = "`{case}`: the case after the move", body = CaseEnvelope),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`)", body = ErrorBody),
        (status = 404, description = "No such case (`risk_case_not_found`) or action (`not_found`)", body = ErrorBody),
        (status = 409, description = "The case is not in the status the action needs, or moved meanwhile (`risk_case_wrong_status`), or another analyst claimed it (`risk_case_claimed_by_another`)", body = ErrorBody),
        (status = 422, description = "An empty note (`invalid_request`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:analyst"]))
)]
pub async fn move_case(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Path((id, action)): Path<(String, String)>,
    Json(body): Json<MoveCaseRequest>,
) -> Result<axum::Json<CaseEnvelope>, ApiError> {
    let case = context
        .claims()
        .move_case(&id, &action, &body.note, &principal.caller())
        .await?;
    Ok(axum::Json(CaseEnvelope {
        case: CaseBody::new(&case),
    }))
}

/// A customer reports their account stolen: a case on the priority channel, and every
/// credit line of the customer frozen at once (authorisations already made wait).
#[utoipa::path(
    post, path = "/v1/risk/claims", tag = "risk",
    request_body(content = ClaimStolenAccountRequest, description = "`{customer, description, compromised_at?, police_reference?}`"),
    responses(
        (status = 201, description = "`{case}`: a stolen_account case on the priority channel. The customer's credit lines are frozen and their authorisations wait for the case (`credit_stolen_account_claim_open`). Approving the case voids every authorisation and writes off every purchase authorised from `compromised_at` on; rejecting it lifts the freeze", body = CaseEnvelope),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`)", body = ErrorBody),
        (status = 422, description = "Customer not 1 to 256 characters, description over 4,096 bytes, police reference not 1 to 128 bytes, or a compromise time after the claim (`invalid_request`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:write"]))
)]
pub async fn claim_stolen_account(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Json(body): Json<ClaimStolenAccountRequest>,
) -> Result<(StatusCode, axum::Json<CaseEnvelope>), ApiError> {
    let case = context
        .claims()
        .claim(
            NewClaim {
                customer: body.customer,
                description: body.description,
                compromised_at: body.compromised_at,
                police_reference: body.police_reference,
            },
            &principal.caller(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CaseEnvelope {
            case: CaseBody::new(&case),
        }),
    ))
}

/// The customer of a confirmed stolen-account claim has proven who they are: the case's
/// block is removed (kept in the list's history), the re-verification is logged in the
/// case's trail, and the freeze the claim put on the credit lines is lifted.
#[utoipa::path(
    post, path = "/v1/risk/claims/{id}/restore", tag = "risk",
    params(("id" = String, Path, description = "The claim's case id")),
    request_body(content = RestoreAccessRequest, description = "`{note}`: how the customer proved who they are"),
    responses(
        (status = 200, description = "`{case}`: the confirmed case; its trail has `access_restored`", body = CaseEnvelope),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`)", body = ErrorBody),
        (status = 404, description = "No such case (`risk_case_not_found`), or it is not a stolen-account claim (`risk_case_not_a_claim`)", body = ErrorBody),
        (status = 409, description = "The claim is not confirmed (`risk_claim_not_confirmed`) or its customer was re-verified already (`risk_claim_already_restored`)", body = ErrorBody),
        (status = 422, description = "A blank note (`invalid_request`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:analyst"]))
)]
pub async fn restore_access(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<RestoreAccessRequest>,
) -> Result<axum::Json<CaseEnvelope>, ApiError> {
    let case = context
        .claims()
        .restore_access(&id, &body.note, &principal.caller())
        .await?;
    Ok(axum::Json(CaseEnvelope {
        case: CaseBody::new(&case),
    }))
}

/// The evidence package of a case, for the police: the case and its trail, the customer's
/// events with the decisions made on them, the cases linked to it by a shared identifier, and
/// the package's seal.
#[utoipa::path(
    get, path = "/v1/risk/cases/{id}/evidence", tag = "risk",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "`{addresses, cards, case, claim?, customer, devices, events, generated_at, linked_customers, seal, trail}`: the case, its claim (stolen-account cases: compromise time, police reference, re-verification), its trail, the customer's events with their decisions, other customers whose recent events share a device, card or address with this one (with their cases), and the seal: the SHA-256 of the package's canonical JSON and Tally's signed note over it (`tally evidence verify` checks both). Every export is recorded first in the case's trail (`evidence_exported`, with who and when), and the trail served includes it; the digest is recorded after it (`evidence_sealed`)", body = EvidenceBody),
        (status = 404, description = "No such case (`risk_case_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["risk:analyst"]))
)]
pub async fn evidence(
    State(context): State<RiskContext>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<axum::Json<EvidenceBody>, ApiError> {
    Ok(axum::Json(
        evidence_package(
            &context.risk,
            context.evidence_signer.as_deref(),
            &principal,
            &id,
        )
        .await?,
    ))
}

/// The sealed evidence package of case `id` as `principal` exports it, the export recorded in
/// the case's trail first and the seal after: what the API serves and the console downloads.
pub async fn evidence_package(
    risk: &RiskService,
    signer: Option<&tally_consortium::SignerKey>,
    principal: &Principal,
    id: &str,
) -> Result<EvidenceBody, ApiError> {
    let caller = principal.caller();
    let package = risk.evidence_package(id, &caller).await?;
    let mut events = Vec::with_capacity(package.events.len());
    for row in &package.events {
        events.push(EvidenceEventBody {
            decision: serde_json::from_str(&row.decision).map_err(ApiError::internal)?,
            event: serde_json::from_str(&row.body).map_err(ApiError::internal)?,
            sequence: row.sequence,
        });
    }
    let mut body = EvidenceBody {
        addresses: package.addresses,
        cards: package.cards,
        case: CaseBody::new(&package.case),
        claim: package.claim.as_ref().map(ClaimBody::new),
        customer: package.case.customer.clone(),
        devices: package.devices,
        events,
        generated_at: package.generated_at,
        linked_customers: package.linked.iter().map(LinkedCustomerBody::new).collect(),
        seal: None,
        trail: package.trail.iter().map(CaseLogLineBody::new).collect(),
    };
    // The seal covers exactly what is served: the body's own JSON.
    let unsealed = serde_json::to_value(&body).map_err(ApiError::internal)?;
    let seal =
        tally_service::evidence::seal(&unsealed, &package.case.id, package.generated_at, signer)
            .map_err(ApiError::internal)?;
    risk.record_seal(id, &caller, &seal).await?;
    body.seal = Some(SealBody {
        sha256: seal.sha256,
        signed_note: seal.signed_note,
    });
    Ok(body)
}
