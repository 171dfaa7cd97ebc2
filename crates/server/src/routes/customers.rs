//! Customer routes: create (idempotent), read masked, find by phone or national id through
//! blind indexes, read in clear with scope `pii:read` and a reason (each field revealed is
//! written to the `pii_reads` audit log before the answer), and list that log.
//!
//! Only what credit needs is collected: name, phone and national id. The date of birth
//! (for the age) is taken from the national id rather than asked for, so the two cannot
//! disagree. Personal fields are sealed with the field's name and the customer's id as
//! associated data, so a value copied to another field or another customer's row does not
//! open.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::routes::ledger::idempotency_key;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tally_core::CustomerId;
use tally_privacy::identity::{self, IdentityError};
use tally_privacy::{Privacy, PrivacyError};
use tally_store::customers::{CustomerCreated, CustomerWriteError, PiiRead, StoredCustomer};
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
    /// Whether the personal fields below are masked (`138****8000`).
    pub masked: bool,
    /// `张*`, `J*** S****` when masked.
    pub name: String,
    /// E.164 in clear (`+8613800138000`); a Chinese mobile masked as `138****8000`.
    pub phone: String,
    /// First 3 and last 4 characters when masked.
    pub national_id: String,
    /// `YYYY-MM-DD` in clear; only the year when masked (`1990-**-**`).
    pub date_of_birth: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    /// At most one customer: phone and national id each belong to one customer.
    pub customers: Vec<CustomerBody>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// `true` to read the personal fields in clear: needs scope `pii:read` and a reason.
    pub unmasked: Option<bool>,
    /// Why the fields are read in clear (written to the audit log), e.g. a ticket number.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FindQuery {
    /// A phone number in any accepted form (`+86 138-0013-8000`).
    pub phone: Option<String>,
    /// A national id.
    pub national_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
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
                "a customer with this phone number exists; find it with GET /v1/customers?phone=",
            ),
            CustomerWriteError::NationalIdTaken => ApiError::new(
                StatusCode::CONFLICT,
                "customer_national_id_taken",
                "a customer with this national id exists; find it with GET /v1/customers?national_id=",
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

/// Associated data of a sealed field: its name and its customer.
pub(crate) fn sealed_field(field: &str, id: &str) -> String {
    format!("customer.{field}:{id}")
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
        let year = opened.date_of_birth.get(..4).unwrap_or("****");
        Opened {
            name: identity::mask_name(&opened.name),
            phone: identity::mask_phone(&opened.phone),
            national_id: identity::mask_national_id(&opened.national_id),
            date_of_birth: format!("{year}-**-**"),
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
        let reason = show.reason.as_deref().map(str::trim).unwrap_or("");
        if reason.is_empty() {
            return Err(ApiError::bad_request(
                "reason_required",
                "reading personal data in clear needs a reason (reason=...), written to the audit log",
            ));
        }
        if reason.chars().count() > REASON_LENGTH_MAX || reason.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "invalid_reason",
                format!("reason must be at most {REASON_LENGTH_MAX} characters without control characters"),
            ));
        }
        Some(reason.to_string())
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
    get, path = "/v1/customers", tag = "customers",
    params(FindQuery),
    responses(
        (status = 200, description = "The customer with that phone and/or national id (masked), or none", body = CustomerList),
        (status = 400, description = "No phone or national id given, or one that is invalid", body = ErrorBody),
        (status = 503, description = "Personal-data keys not configured", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn find_customers(
    State(state): State<AppState>,
    Query(find): Query<FindQuery>,
) -> Result<axum::Json<CustomerList>, ApiError> {
    let privacy = privacy(&state)?;
    let phone_index = find
        .phone
        .as_deref()
        .map(|phone| {
            identity::normalise_phone(phone)
                .map(|phone| privacy.blind_index.compute(PHONE_INDEX, &phone))
        })
        .transpose()?;
    let national_id_index = find
        .national_id
        .as_deref()
        .map(|national_id| {
            identity::normalise_national_id(national_id).map(|national_id| {
                privacy
                    .blind_index
                    .compute(NATIONAL_ID_INDEX, national_id.expose())
            })
        })
        .transpose()?;
    if phone_index.is_none() && national_id_index.is_none() {
        return Err(ApiError::bad_request(
            "lookup_field_required",
            "find customers by phone=... or national_id=...",
        ));
    }
    let customers = state
        .database
        .find_customers(phone_index.as_deref(), national_id_index.as_deref())
        .await?
        .iter()
        .map(|stored| masked_body(&privacy, stored))
        .collect::<Result<_, _>>()?;
    Ok(axum::Json(CustomerList { customers }))
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
