//! Customer routes: create (idempotent), read masked, find by phone or national id through
//! blind indexes, read in clear with scope `pii:read` and a reason (each field revealed is
//! written to the `pii_reads` audit log before the answer), and list that log.
//!
//! A lookup (`POST /v1/customers/search`) carries the phone or national id in its body, never
//! in the URL, which access logs and proxies keep. Each answer is masked, but enough exact
//! lookups would confirm a value one guess at a time, so lookups are rate limited per API key
//! (`429 rate_limited` with `Retry-After`) and each one is written to the `pii_lookups` audit
//! log (who, which field, the blind index searched, the reason if given, the customer found)
//! before it is answered: if that write fails, nothing is answered.
//!
//! Only what credit needs is collected: name, phone and national id. The date of birth
//! (for the age) is taken from the national id rather than asked for, so the two cannot
//! disagree. Personal fields are sealed with the field's name and the customer's id as
//! associated data, so a value copied to another field or another customer's row does not
//! open.

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
use std::sync::Arc;
use tally_core::CustomerId;
use tally_privacy::identity::{self, IdentityError};
use tally_privacy::{Privacy, PrivacyError};
use tally_service::customers::sealed_field;
use tally_store::customers::{
    CustomerCreated, CustomerWriteError, PiiLookup, PiiRead, StoredCustomer,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// What an operator must configure to serve customers.
pub const PRIVACY_KEYS_HELP: &str = "set privacy.encryption_keys (key id = base64 of 32 \
    random bytes), privacy.active_encryption_key and privacy.blind_index_key in the \
    configuration file or as TALLY__PRIVACY__... variables";

/// Blind index domains: the same value in two fields gives unrelated indexes.
const PHONE_INDEX: &str = "customer.phone";
const NATIONAL_ID_INDEX: &str = "customer.national_id";
/// Domain of the keyed hash that tells a retried creation from a different one.
const REQUEST_HASH: &str = "customer.create_request";

/// Longest reason accepted for reading personal data in clear, in characters.
const REASON_LENGTH_MAX: usize = 500;

/// The personal fields of a customer, as named in the audit log.
const FIELDS: [&str; 4] = ["name", "phone", "national_id", "date_of_birth"];

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

/// A customer. Masked unless read with `unmasked=true` (scope `pii:read` and a reason).
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

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    /// At most one customer: phone and national id each belong to one customer.
    pub customers: Vec<CustomerBody>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// `true` to read the personal fields in clear: needs scope `pii:read` and a reason.
    pub unmasked: Option<bool>,
    /// Why the fields are read in clear (written to the audit log), e.g. a ticket number.
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

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        ApiError::bad_request(error.code(), error.to_string())
    }
}

impl From<CustomerWriteError> for ApiError {
    fn from(error: CustomerWriteError) -> Self {
        match error {
            CustomerWriteError::KeyReused(key) => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                format!("idempotency key {key:?} was already used for a different request"),
            ),
            CustomerWriteError::PhoneTaken => ApiError::new(
                StatusCode::CONFLICT,
                "customer_phone_taken",
                "a customer with this phone number exists; find it with POST /v1/customers/search",
            ),
            CustomerWriteError::NationalIdTaken => ApiError::new(
                StatusCode::CONFLICT,
                "customer_national_id_taken",
                "a customer with this national id exists; find it with POST /v1/customers/search",
            ),
            CustomerWriteError::Store(error) => error.into(),
            other => ApiError::internal(other),
        }
    }
}

/// The configured keys, or 503 naming what to configure.
fn privacy(state: &AppState) -> Result<Arc<Privacy>, ApiError> {
    state.privacy.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "privacy_keys_not_configured",
            format!("customers need personal-data keys: {PRIVACY_KEYS_HELP}"),
        )
    })
}

fn undecryptable(error: PrivacyError) -> ApiError {
    match error {
        PrivacyError::UnknownKey(key_id) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "privacy_key_unavailable",
            format!("the customer was sealed with key {key_id:?}, which is no longer configured"),
        ),
        other => ApiError::internal(other),
    }
}

/// A customer's fields opened: name, phone (E.164), national id, date of birth.
struct Opened {
    name: String,
    phone: String,
    national_id: String,
    date_of_birth: String,
}

fn open(privacy: &Privacy, stored: &StoredCustomer) -> Result<Opened, ApiError> {
    let field = |name: &str, value: &str| {
        privacy
            .cipher
            .decrypt(&sealed_field(name, &stored.id), value)
            .map(|secret| secret.expose().clone())
            .map_err(undecryptable)
    };
    Ok(Opened {
        name: field("name", &stored.name)?,
        phone: field("phone", &stored.phone)?,
        national_id: field("national_id", &stored.national_id)?,
        date_of_birth: field("date_of_birth", &stored.date_of_birth)?,
    })
}

fn body(stored: &StoredCustomer, opened: Opened, masked: bool) -> Result<CustomerBody, ApiError> {
    let id = Uuid::parse_str(&stored.id)
        .map_err(|_| ApiError::internal(format!("stored customer id {:?}", stored.id)))?;
    let opened = if masked {
        Opened {
            name: identity::mask_name(&opened.name),
            phone: identity::mask_phone(&opened.phone),
            national_id: identity::mask_national_id(&opened.national_id),
            date_of_birth: identity::MASKED_DATE_OF_BIRTH.to_string(),
        }
    } else {
        opened
    };
    Ok(CustomerBody {
        id,
        created_at: stored.created_at,
        masked,
        name: opened.name,
        phone: opened.phone,
        national_id: opened.national_id,
        date_of_birth: opened.date_of_birth,
    })
}

/// A customer's date of birth, opened for a rule that needs the age (credit eligibility).
/// Not a read in clear: the date is used, not shown, so nothing is written to the audit log.
pub fn date_of_birth(
    privacy: &Privacy,
    stored: &StoredCustomer,
) -> Result<jiff::civil::Date, ApiError> {
    let text = privacy
        .cipher
        .decrypt(
            &sealed_field("date_of_birth", &stored.id),
            &stored.date_of_birth,
        )
        .map_err(undecryptable)?;
    text.expose().parse().map_err(|_| {
        ApiError::internal(format!(
            "customer {} has a malformed date of birth",
            stored.id
        ))
    })
}

fn masked_body(privacy: &Privacy, stored: &StoredCustomer) -> Result<CustomerBody, ApiError> {
    body(stored, open(privacy, stored)?, true)
}

/// Now, to the microsecond the database keeps, so a reply shows the time a read returns.
fn stored_now(state: &AppState) -> Timestamp {
    let now = state.clock.now();
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

/// A reason trimmed, `None` when absent or blank; refused when too long or with control
/// characters.
fn checked_reason(reason: Option<&str>) -> Result<Option<String>, ApiError> {
    let reason = reason.map(str::trim).unwrap_or("");
    if reason.is_empty() {
        return Ok(None);
    }
    if reason.chars().count() > REASON_LENGTH_MAX || reason.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_reason",
            format!(
                "reason must be at most {REASON_LENGTH_MAX} characters without control characters"
            ),
        ));
    }
    Ok(Some(reason.to_string()))
}

fn parse_customer_id(text: &str) -> Result<CustomerId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a UUID")))
}

fn customer_not_found(id: CustomerId) -> ApiError {
    ApiError::not_found(
        "customer_not_found",
        format!("customer {id} does not exist"),
    )
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
    let privacy = privacy(&state)?;
    let name = identity::normalise_name(&request.name)?;
    let phone = identity::normalise_phone(&request.phone)?;
    let national_id = identity::normalise_national_id(&request.national_id)?;
    let (year, month, day) = national_id.birth_date();
    let date_of_birth = format!("{year:04}-{month:02}-{day:02}");
    // Keyed, so that the stored hash cannot be reversed by guessing phone numbers.
    let request_hash = privacy.blind_index.compute(
        REQUEST_HASH,
        &[name.as_str(), phone.as_str(), national_id.expose()].join("\0"),
    );
    let id = Uuid::now_v7().to_string();
    let seal = |field: &str, value: &str| {
        privacy
            .cipher
            .encrypt(&sealed_field(field, &id), value)
            .map_err(ApiError::internal)
    };
    let customer = StoredCustomer {
        id: id.clone(),
        created_at: stored_now(&state),
        name: seal("name", &name)?,
        phone: seal("phone", &phone)?,
        national_id: seal("national_id", national_id.expose())?,
        date_of_birth: seal("date_of_birth", &date_of_birth)?,
        phone_index: privacy.blind_index.compute(PHONE_INDEX, &phone),
        national_id_index: privacy
            .blind_index
            .compute(NATIONAL_ID_INDEX, national_id.expose()),
    };
    let stored = match state
        .database
        .create_customer(&key, &request_hash, &customer)
        .await?
    {
        CustomerCreated::Created(stored) => {
            let opened = Opened {
                name,
                phone,
                national_id: national_id.expose().to_string(),
                date_of_birth,
            };
            return Ok((
                StatusCode::CREATED,
                axum::Json(body(&stored, opened, true)?),
            ));
        }
        CustomerCreated::Replayed(stored) => stored,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(masked_body(&privacy, &stored)?),
    ))
}

#[utoipa::path(
    get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = Uuid, Path, description = "Customer id"), ShowQuery),
    responses(
        (status = 200, description = "The customer, masked unless `unmasked=true`", body = CustomerBody),
        (status = 400, description = "Bad id or query, or `unmasked=true` without a reason (`reason_required`)", body = ErrorBody),
        (status = 403, description = "`unmasked=true` without scope pii:read", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 503, description = "Personal-data keys not configured", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read", "pii:read"]))
)]
pub async fn get_customer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(show): Query<ShowQuery>,
) -> Result<axum::Json<CustomerBody>, ApiError> {
    let id = parse_customer_id(&id)?;
    let unmasked = show.unmasked.unwrap_or(false);
    let reason = if unmasked {
        principal.require("pii:read")?;
        let Some(reason) = checked_reason(show.reason.as_deref())? else {
            return Err(ApiError::bad_request(
                "reason_required",
                "reading personal data in clear needs a reason (reason=...), written to the audit log",
            ));
        };
        Some(reason)
    } else {
        None
    };
    let privacy = privacy(&state)?;
    let stored = state
        .database
        .customer(&id.to_string())
        .await?
        .ok_or_else(|| customer_not_found(id))?;
    let opened = open(&privacy, &stored)?;
    let Some(reason) = reason else {
        return Ok(axum::Json(body(&stored, opened, true)?));
    };
    // Nothing is revealed unless its reading is on record first.
    let at = stored_now(&state);
    let reads: Vec<PiiRead> = FIELDS
        .iter()
        .map(|field| PiiRead {
            id: Uuid::now_v7().to_string(),
            at,
            api_key_id: principal.key_id.clone(),
            principal: principal.name.clone(),
            customer_id: stored.id.clone(),
            field: (*field).to_string(),
            reason: reason.clone(),
        })
        .collect();
    state.database.record_pii_reads(&reads).await?;
    tracing::info!(customer = %stored.id, key = %principal.key_id, "personal data read in clear");
    Ok(axum::Json(body(&stored, opened, false)?))
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
    match search(&state, &principal, request).await {
        Ok(list) => axum::Json(list).into_response(),
        Err(error) => error.into_response(),
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

async fn search(
    state: &AppState,
    principal: &Principal,
    request: SearchRequest,
) -> Result<CustomerList, ApiError> {
    let (field, index) = match (&request.phone, &request.national_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "too_many_lookup_fields",
                "look a customer up by phone or by national_id, one at a time",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "lookup_field_required",
                "look a customer up by {\"phone\": ...} or {\"national_id\": ...}",
            ))
        }
        (Some(phone), None) => ("phone", identity::normalise_phone(phone)?),
        (None, Some(national_id)) => (
            "national_id",
            identity::normalise_national_id(national_id)?
                .expose()
                .to_string(),
        ),
    };
    let reason = checked_reason(request.reason.as_deref())?;
    let privacy = privacy(state)?;
    let index_domain = if field == "phone" {
        PHONE_INDEX
    } else {
        NATIONAL_ID_INDEX
    };
    let value_index = privacy.blind_index.compute(index_domain, &index);
    let found = if field == "phone" {
        state
            .database
            .find_customers(Some(&value_index), None)
            .await?
    } else {
        state
            .database
            .find_customers(None, Some(&value_index))
            .await?
    };
    // The answer is ready before the lookup is recorded and leaves only once it is.
    let customers = found
        .iter()
        .map(|stored| masked_body(&privacy, stored))
        .collect::<Result<Vec<_>, _>>()?;
    let lookup = PiiLookup {
        id: Uuid::now_v7().to_string(),
        at: stored_now(state),
        api_key_id: principal.key_id.clone(),
        principal: principal.name.clone(),
        field: field.to_string(),
        value_index,
        reason,
        customer_id: found.first().map(|stored| stored.id.clone()),
    };
    state.database.record_pii_lookup(&lookup).await?;
    Ok(CustomerList { customers })
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
    let limit = page.limit.unwrap_or(100);
    if !(1..=state.limits.page_size_max).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {}", state.limits.page_size_max),
        ));
    }
    let after = page.after.map(|after| after.to_string());
    let lookups = state.database.pii_lookups(after.as_deref(), limit).await?;
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
    let limit = page.limit.unwrap_or(100);
    if !(1..=state.limits.page_size_max).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {}", state.limits.page_size_max),
        ));
    }
    let customer_id = id.to_string();
    if !state.database.customer_exists(&customer_id).await? {
        return Err(customer_not_found(id));
    }
    let after = page.after.map(|after| after.to_string());
    let reads = state
        .database
        .pii_reads(&customer_id, after.as_deref(), limit)
        .await?;
    let next_after = (reads.len() as i64 == limit)
        .then(|| reads.last().map(|read| read.id.clone()))
        .flatten();
    Ok(axum::Json(PiiReadPage {
        reads: reads.into_iter().map(PiiReadBody::from).collect(),
        next_after,
    }))
}
