//! Customer routes: create (idempotent), read masked, find by phone or national id through
//! blind indexes, read in clear with scope `pii:read` and a reason, and list the audit logs.
//! The use cases (sealing, blind indexes, masking, the audit written before each answer)
//! are `tally_service::customers::CustomerService`; these handlers parse and answer.
//!
//! Neither a lookup's phone or national id nor a read in clear's reason travels in the URL,
//! which access logs and proxies keep: a lookup is `POST /v1/customers/search`, a read in
//! clear `POST /v1/customers/{id}/reveal`, each with its JSON body. The old forms in the query
//! string answer `410 lookup_moved` and `410 reveal_moved` and read nothing. Each lookup's
//! answer is masked, but enough exact lookups would confirm a value one guess at a time, so
//! lookups are rate limited per API key here (`429 rate_limited` with `Retry-After`) before
//! the service records and answers them.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::idempotency_key;
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_core::CustomerId;
use tally_service::customers::{CustomerError, CustomerService, CustomerView, Lookup, NewCustomer};
use tally_store::customers::{PiiLookup, PiiRead};
use tally_store::erasure::{CustomerErasure, Erased};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// What an operator must configure to serve customers.
pub const PRIVACY_KEYS_HELP: &str = "set privacy.encryption_keys (key id = base64 of 32 \
    random bytes), privacy.active_encryption_key and privacy.blind_index_key in the \
    configuration file or as TALLY__PRIVACY__... variables";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    /// Full name as on the identity document.
    pub name: String,
    /// Mobile number: `+86 138 0013 8000`, `13800138000` (read as Chinese) or another
    /// country's number with `+`.
    pub phone: String,
    /// PRC resident identity number (18 characters, ISO 7064 MOD 11-2 check character).
    pub national_id: String,
}

/// A customer: masked, or in clear when read with `POST /v1/customers/{id}/reveal` (scope
/// `pii:read` and a reason).
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerBody {
    pub id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Whether the personal fields below are masked. Masks show what an agent needs to
    /// confirm a caller: the last four of phone and national id, the name's first character.
    pub masked: bool,
    /// `张*`, `J********` when masked (first character only).
    pub name: String,
    /// E.164 in clear (`+8613800138000`); the last four digits when masked (`*******8000`).
    pub phone: String,
    /// The last four characters when masked (`**************002X`): no region, no birth date.
    pub national_id: String,
    /// `YYYY-MM-DD` in clear; nothing of it when masked (`****-**-**`).
    pub date_of_birth: String,
}

/// Why a customer's personal data is erased (the person's request, its ticket): recorded with
/// the erasure.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseCustomerRequest {
    pub reason: String,
}

/// A customer's erasure: when, by which key, why. Never a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerErasureBody {
    pub customer_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub erased_at: Timestamp,
    /// The API key that erased it: its id and name.
    pub erased_by_key_id: String,
    pub erased_by: String,
    pub reason: String,
    /// False when this request found the customer erased already.
    pub erased_now: bool,
}

impl CustomerErasureBody {
    fn new(customer_id: Uuid, erasure: CustomerErasure, erased_now: bool) -> Self {
        Self {
            customer_id,
            erased_at: erasure.at,
            erased_by_key_id: erasure.api_key_id,
            erased_by: erasure.principal,
            reason: erasure.reason,
            erased_now,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    /// At most one customer: phone and national id each belong to one customer.
    pub customers: Vec<CustomerBody>,
}

/// The query of `GET /v1/customers/{id}`: none is read any more. The two parameters of the
/// old read in clear are still recognised, whatever their value, so that such a request is
/// answered `410 reveal_moved` rather than served masked; any other is `400 invalid_query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    pub unmasked: Option<String>,
    pub reason: Option<String>,
}

/// A read in clear: why, in the body so that it stays out of access logs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    /// Why the fields are read in clear (written to the audit log with each field shown),
    /// e.g. a ticket number. Required: absent or blank is `400 reason_required`.
    pub reason: Option<String>,
}

/// An exact lookup: exactly one of `phone` and `national_id`, in the body so that it stays out
/// of access logs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// A phone number in any accepted form (`+86 138-0013-8000`).
    pub phone: Option<String>,
    /// A national id.
    pub national_id: Option<String>,
    /// Why the customer is looked up (a call or ticket number), written to the audit log.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PiiReadQuery {
    /// Cursor: the id of the last read already seen.
    pub after: Option<Uuid>,
    /// Page size, 1 to the server's maximum (default 100).
    pub limit: Option<i64>,
}

/// One personal field read in clear.
#[derive(Debug, Serialize, ToSchema)]
pub struct PiiReadBody {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The API key that read it, and that key's name.
    pub api_key_id: String,
    pub principal: String,
    pub customer_id: String,
    /// `name`, `phone`, `national_id` or `date_of_birth`.
    pub field: String,
    pub reason: String,
}

/// One exact lookup of a customer, as the audit log keeps it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PiiLookupBody {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The API key that looked up, and that key's name.
    pub api_key_id: String,
    pub principal: String,
    /// `phone` or `national_id`.
    pub field: String,
    /// The blind index of the value searched (hex), never the value: equal to the found
    /// customer's index, and to other lookups of the same value.
    pub value_index: String,
    pub reason: Option<String>,
    /// The customer found; null when nothing matched.
    pub customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PiiLookupPage {
    pub lookups: Vec<PiiLookupBody>,
    /// The cursor of the next page, absent on the last page.
    pub next_after: Option<String>,
}

impl From<PiiLookup> for PiiLookupBody {
    fn from(lookup: PiiLookup) -> Self {
        Self {
            id: lookup.id,
            at: lookup.at,
            api_key_id: lookup.api_key_id,
            principal: lookup.principal,
            field: lookup.field,
            value_index: lookup.value_index,
            reason: lookup.reason,
            customer_id: lookup.customer_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PiiReadPage {
    pub reads: Vec<PiiReadBody>,
    /// The cursor of the next page, absent on the last page.
    pub next_after: Option<String>,
}

impl From<PiiRead> for PiiReadBody {
    fn from(read: PiiRead) -> Self {
        Self {
            id: read.id,
            at: read.at,
            api_key_id: read.api_key_id,
            principal: read.principal,
            customer_id: read.customer_id,
            field: read.field,
            reason: read.reason,
        }
    }
}

impl From<CustomerView> for CustomerBody {
    fn from(customer: CustomerView) -> Self {
        Self {
            id: customer.id,
            created_at: customer.created_at,
            masked: customer.masked,
            name: customer.name,
            phone: customer.phone,
            national_id: customer.national_id,
            date_of_birth: customer.date_of_birth,
        }
    }
}

/// The HTTP form of a customer use case's refusal. Where the message names a route or the
/// configuration, it is written here; the service's own words are kept otherwise.
impl From<CustomerError> for ApiError {
    fn from(error: CustomerError) -> Self {
        let code = error.code();
        match error {
            CustomerError::Identity(_)
            | CustomerError::InvalidReason
            | CustomerError::TooManyLookupFields => ApiError::bad_request(code, error.to_string()),
            CustomerError::ReasonRequired => ApiError::bad_request(
                code,
                "reading personal data in clear needs a reason ({\"reason\": ...} in the body), \
                 written to the audit log",
            ),
            CustomerError::LookupFieldRequired => ApiError::bad_request(
                code,
                "look a customer up by {\"phone\": ...} or {\"national_id\": ...}",
            ),
            CustomerError::KeyReused(_) => {
                ApiError::new(StatusCode::CONFLICT, code, error.to_string())
            }
            CustomerError::PhoneTaken | CustomerError::NationalIdTaken => ApiError::new(
                StatusCode::CONFLICT,
                code,
                format!("{error}; find it with POST /v1/customers/search"),
            ),
            CustomerError::NotFound(_) => ApiError::not_found(code, error.to_string()),
            CustomerError::Erased(_) => ApiError::new(StatusCode::GONE, code, error.to_string()),
            CustomerError::PrivacyKeysNotConfigured => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code,
                format!("customers need personal-data keys: {PRIVACY_KEYS_HELP}"),
            ),
            CustomerError::KeyUnavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, error.to_string())
            }
            CustomerError::Store(error) => error.into(),
            other => ApiError::internal(other),
        }
    }
}

/// The customer use cases with this process's database, keys and clock.
fn customers(state: &AppState) -> CustomerService {
    CustomerService::new(
        state.database.clone(),
        state.privacy.clone(),
        state.clock.clone(),
    )
}

fn parse_customer_id(text: &str) -> Result<CustomerId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a UUID")))
}

/// A page size from 1 to the server's maximum (default 100).
fn page_limit(state: &AppState, limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=state.limits.page_size_max).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {}", state.limits.page_size_max),
        ));
    }
    Ok(limit)
}

#[utoipa::path(
    post, path = "/v1/customers", tag = "customers",
    request_body = CreateCustomerRequest,
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 201, description = "Customer created (or the same request replayed); fields masked", body = CustomerBody),
        (status = 400, description = "Malformed request, invalid phone (`invalid_phone`), national id (`invalid_national_id`, `national_id_checksum_invalid`) or name", body = ErrorBody),
        (status = 409, description = "Phone or national id belongs to a customer (`customer_phone_taken`, `customer_national_id_taken`), or idempotency key reused", body = ErrorBody),
        (status = 503, description = "Personal-data keys not configured", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn create_customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<CreateCustomerRequest>,
) -> Result<(StatusCode, axum::Json<CustomerBody>), ApiError> {
    let key = idempotency_key(&headers)?;
    let customer = NewCustomer {
        name: request.name,
        phone: request.phone,
        national_id: request.national_id,
    };
    let created = customers(&state).create(&key, &customer).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(
    get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = Uuid, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The customer, masked", body = CustomerBody),
        (status = 400, description = "Bad id or unknown query parameter", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 410, description = "Reading in clear moved to `POST /v1/customers/{id}/reveal` (`reveal_moved`): the query carried `unmasked` or `reason`, which access logs keep; nothing was read. Or the customer's personal data was erased (`customer_erased`)", body = ErrorBody),
        (status = 503, description = "Personal-data keys not configured", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn get_customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(show): Query<ShowQuery>,
) -> Result<axum::Json<CustomerBody>, ApiError> {
    if show.unmasked.is_some() || show.reason.is_some() {
        return Err(reveal_moved());
    }
    let id = parse_customer_id(&id)?;
    Ok(axum::Json(customers(&state).show(id).await?.into()))
}

/// The answer to the old read in clear, `GET /v1/customers/{id}?unmasked=true&reason=...`.
fn reveal_moved() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "reveal_moved",
        "read a customer in clear with POST /v1/customers/{id}/reveal and the reason in the \
         JSON body: a URL's query string ends up in access logs; nothing was read in clear",
    )
}

/// Reads a customer's personal fields in clear. Each field shown is written to the audit log
/// (`GET /v1/customers/{id}/pii-reads`) with the key and the reason before the answer; if
/// that write fails, nothing is shown.
#[utoipa::path(
    post, path = "/v1/customers/{id}/reveal", tag = "customers",
    request_body = RevealRequest,
    params(("id" = Uuid, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The customer in clear; every field shown is on the audit log", body = CustomerBody),
        (status = 400, description = "Bad id or body, no reason (`reason_required`), or a reason too long or with control characters (`invalid_reason`)", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 410, description = "The customer's personal data was erased (`customer_erased`); nothing was read", body = ErrorBody),
        (status = 503, description = "Personal-data keys not configured, or the customer's key no longer is", body = ErrorBody),
    ),
    security(("api_key" = ["pii:read"]))
)]
pub async fn reveal_customer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(request): Json<RevealRequest>,
) -> Result<axum::Json<CustomerBody>, ApiError> {
    let id = parse_customer_id(&id)?;
    let customer = customers(&state)
        .reveal(id, &principal.caller(), request.reason.as_deref())
        .await?;
    Ok(axum::Json(customer.into()))
}

/// A customer's delivery address and bound bank card in clear.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedProfileBody {
    pub id: Uuid,
    /// The delivery address as the customer wrote it (trimmed); null when never set.
    pub address: Option<String>,
    /// The bound card number's digits; null when no card was bound.
    pub bank_card: Option<String>,
}

/// Reads a customer's delivery address and bound bank card in clear (set by
/// `POST /v1/customers/{id}/address` and `/bank-card`). Each value shown is written to the
/// audit log (`GET /v1/customers/{id}/pii-reads`) with the key and the reason before the
/// answer; if that write fails, nothing is shown.
#[utoipa::path(
    post, path = "/v1/customers/{id}/profile/reveal", tag = "customers",
    request_body = RevealRequest,
    params(("id" = Uuid, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The address and bank card in clear; every value shown is on the audit log", body = RevealedProfileBody),
        (status = 400, description = "Bad id or body, no reason (`reason_required`), or a reason too long or with control characters (`invalid_reason`)", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 410, description = "The customer's personal data was erased (`customer_erased`); nothing was read", body = ErrorBody),
        (status = 503, description = "Personal-data keys not configured, or the customer's key no longer is", body = ErrorBody),
    ),
    security(("api_key" = ["pii:read"]))
)]
pub async fn reveal_customer_profile(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(request): Json<RevealRequest>,
) -> Result<axum::Json<RevealedProfileBody>, ApiError> {
    let id = parse_customer_id(&id)?;
    let profile = customers(&state)
        .reveal_profile(id, &principal.caller(), request.reason.as_deref())
        .await?;
    Ok(axum::Json(RevealedProfileBody {
        id: profile.id,
        address: profile.address,
        bank_card: profile.bank_card,
    }))
}

/// Erases a customer's personal data (PIPL art. 47, GDPR art. 17): name, phone, national id,
/// date of birth, address and bank card destroyed with their blind indexes and the keyed
/// hashes that could confirm them; the ledger, credit accounts and payments stay under the
/// customer's pseudonymous id. The erasure (who, when, why; never a value) is recorded in the
/// same transaction. Asked again, it answers the first erasure and changes nothing.
#[utoipa::path(
    post, path = "/v1/customers/{id}/erasure", tag = "customers",
    request_body = EraseCustomerRequest,
    params(("id" = Uuid, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The erasure; `erased_now` is false when the customer had been erased before (the first erasure is answered)", body = CustomerErasureBody),
        (status = 400, description = "Bad id or body, a blank reason (`reason_required`), or a reason too long or with control characters (`invalid_reason`)", body = ErrorBody),
        (status = 404, description = "No such customer (`customer_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
pub async fn erase_customer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(request): Json<EraseCustomerRequest>,
) -> Result<axum::Json<CustomerErasureBody>, ApiError> {
    let id = parse_customer_id(&id)?;
    let erased = customers(&state)
        .erase(id, &principal.caller(), Some(&request.reason))
        .await?;
    Ok(axum::Json(match erased {
        Erased::Now(erasure) => CustomerErasureBody::new(id.as_uuid(), erasure, true),
        Erased::Already(erasure) => CustomerErasureBody::new(id.as_uuid(), erasure, false),
    }))
}

#[utoipa::path(
    post, path = "/v1/customers/search", tag = "customers",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "The customer with that phone or national id (masked), or none; the lookup is on the audit log", body = CustomerList),
        (status = 400, description = "Not exactly one of phone and national id (`lookup_field_required`, `too_many_lookup_fields`), one that is invalid, or a bad reason", body = ErrorBody),
        (status = 429, description = "The key's lookups per minute are used up (`rate_limited`); the `Retry-After` header says when to try again", body = ErrorBody),
        (status = 503, description = "Personal-data keys not configured", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn search_customers(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Json(request): Json<SearchRequest>,
) -> Response {
    if let Err(retry_after) = state.lookups.check(&principal.key_id) {
        tracing::warn!(key = %principal.key_id, "customer lookups rate limited");
        return rate_limited(retry_after.0, state.lookups.per_minute());
    }
    let lookup = Lookup {
        phone: request.phone,
        national_id: request.national_id,
        reason: request.reason,
    };
    match customers(&state).search(&principal.caller(), &lookup).await {
        Ok(found) => axum::Json(CustomerList {
            customers: found.into_iter().map(CustomerBody::from).collect(),
        })
        .into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

fn rate_limited(retry_after_seconds: u64, per_minute: u32) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "this API key may look up {per_minute} customers a minute; \
             retry after {retry_after_seconds} s"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    response
}

#[utoipa::path(
    get, path = "/v1/customers", tag = "customers",
    responses(
        (status = 410, description = "Lookups moved to `POST /v1/customers/search` (`lookup_moved`): a phone or national id in the URL ends up in access logs", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn lookup_moved() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "lookup_moved",
        "look customers up with POST /v1/customers/search and the phone or national_id in \
         the JSON body: a URL's query string ends up in access logs; this request was not \
         looked up",
    )
}

#[utoipa::path(
    get, path = "/v1/pii-lookups", tag = "customers",
    params(PiiReadQuery),
    responses(
        (status = 200, description = "Every exact lookup of a customer, oldest first", body = PiiLookupPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
pub async fn list_pii_lookups(
    State(state): State<AppState>,
    Query(page): Query<PiiReadQuery>,
) -> Result<axum::Json<PiiLookupPage>, ApiError> {
    let limit = page_limit(&state, page.limit)?;
    let after = page.after.map(|after| after.to_string());
    let lookups = customers(&state).lookups(after.as_deref(), limit).await?;
    let next_after = (lookups.len() as i64 == limit)
        .then(|| lookups.last().map(|lookup| lookup.id.clone()))
        .flatten();
    Ok(axum::Json(PiiLookupPage {
        lookups: lookups.into_iter().map(PiiLookupBody::from).collect(),
        next_after,
    }))
}

#[utoipa::path(
    get, path = "/v1/customers/{id}/pii-reads", tag = "customers",
    params(("id" = Uuid, Path, description = "Customer id"), PiiReadQuery),
    responses(
        (status = 200, description = "Every field of the customer read in clear, oldest first", body = PiiReadPage),
        (status = 400, description = "Bad id, cursor or limit", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
pub async fn list_pii_reads(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(page): Query<PiiReadQuery>,
) -> Result<axum::Json<PiiReadPage>, ApiError> {
    let id = parse_customer_id(&id)?;
    let limit = page_limit(&state, page.limit)?;
    let after = page.after.map(|after| after.to_string());
    let reads = customers(&state).reads(id, after.as_deref(), limit).await?;
    let next_after = (reads.len() as i64 == limit)
        .then(|| reads.last().map(|read| read.id.clone()))
        .flatten();
    Ok(axum::Json(PiiReadPage {
        reads: reads.into_iter().map(PiiReadBody::from).collect(),
        next_after,
    }))
}
