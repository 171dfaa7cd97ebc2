//! Ledger routes: accounts, balances, journal entries and holds.
//!
//! A key limited to account-code namespaces opens, moves and reads only accounts whose codes
//! lie in them: writes go to the ledger as that key's [`tally_ledger::Actor`], which refuses
//! the rest in the same step as its other checks (and before answering a retry); reads
//! check the account, or every account of an entry or hold, before answering.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::extract::{checked_idempotency_key, idempotency_key, Path, Query};
use crate::json::Json;
use crate::state::AppState;
use crate::wire::{
    AccountBody, AccountLegBody, AccountLegPage, AsOfBalanceBody, BalanceBody, BatchEntryResult,
    BatchEntryStatus, CreateAccountRequest, CreateHoldRequest, EntriesBatchBody, EntryBody,
    HoldBody, PostEntriesBatchRequest, PostEntryRequest, PostHoldRequest, PostedHoldBody,
    BATCH_ENTRIES_MAX,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use jiff::Timestamp;
use serde::Deserialize;
use tally_core::{AccountId, EntryId, HoldId};
use tally_ledger::{code_for_comparison, Command, Outcome};
use tally_service::credit::ledger_accounts::RESERVED_ACCOUNT_CODE_PREFIX;
use utoipa::IntoParams;
use uuid::Uuid;

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a UUID")))
}

fn unexpected(outcome: Outcome) -> ApiError {
    ApiError::internal(format!("unexpected outcome {outcome:?}"))
}

type Created<T> = Result<(StatusCode, axum::Json<T>), ApiError>;

/// The refusals of a write a key may not make.
const WRITE_FORBIDDEN: &str = "Missing scope `ledger:write` (`forbidden`), an account that a \
    Tally service owns (`account_owned_by_service`), or one whose code lies outside the key's \
    account namespaces (`account_outside_key_namespace`)";
/// The refusals of a read a key may not make.
const READ_FORBIDDEN: &str = "Missing scope `ledger:read` (`forbidden`), or an account (of an \
    entry or hold: any of its accounts) whose code lies outside the key's account namespaces \
    (`account_outside_key_namespace`)";

/// For a key limited to account-code namespaces, refuses unless every one of `accounts` lies
/// in them (an entry or a hold shows the accounts it moves). Nothing is read for other keys.
async fn may_read_all(
    state: &AppState,
    principal: &Principal,
    accounts: impl Iterator<Item = AccountId>,
) -> Result<(), ApiError> {
    if principal.account_namespaces.is_none() {
        return Ok(());
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in accounts.filter(|id| seen.insert(*id)) {
        if let Some(account) = state.database.account(id).await? {
            principal.may_read(&account.account)?;
        }
    }
    Ok(())
}

#[utoipa::path(
    post, path = "/v1/accounts", tag = "ledger",
    request_body = CreateAccountRequest,
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 201, description = "Account opened", body = AccountBody),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Missing scope `ledger:write` (`forbidden`), or a code outside the key's account namespaces (`account_outside_key_namespace`)", body = ErrorBody),
        (status = 409, description = "Code taken or idempotency key reused", body = ErrorBody),
        (status = 422, description = "Invalid account, or a code starting with `credit-` (`account_code_reserved`)", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:write"]))
)]
pub async fn create_account(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(body): Json<CreateAccountRequest>,
) -> Created<AccountBody> {
    let key = idempotency_key(&headers)?;
    // Compared without case or compatibility forms: `CREDIT-…` or a full-width `ｃｒｅｄｉｔ-…`
    // would read as the credit service's own account to anyone looking at the books.
    if code_for_comparison(&body.code).starts_with(RESERVED_ACCOUNT_CODE_PREFIX) {
        return Err(ApiError::unprocessable(
            "account_code_reserved",
            format!(
                "account codes starting with {RESERVED_ACCOUNT_CODE_PREFIX:?} (in any letter \
                 case or look-alike form) are reserved for the credit service's own ledger \
                 accounts"
            ),
        ));
    }
    let command = Command::CreateAccount(body.into_new_account()?);
    match state
        .writer
        .submit_as(principal.actor(), key, command)
        .await?
    {
        Outcome::Account(account) => Ok((
            StatusCode::CREATED,
            axum::Json(AccountBody::new(&account, None)),
        )),
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(
    get, path = "/v1/accounts/{id}", tag = "ledger",
    params(("id" = Uuid, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account with its current balance", body = AccountBody),
        (status = 403, description = READ_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:read"]))
)]
pub async fn get_account(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<axum::Json<AccountBody>, ApiError> {
    let id = AccountId(parse_id(&id)?);
    let account = state.database.account(id).await?.ok_or_else(|| {
        ApiError::not_found("account_not_found", format!("account {id} does not exist"))
    })?;
    principal.may_read(&account.account)?;
    Ok(axum::Json(AccountBody::from_state(&account)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BalanceQuery {
    /// RFC 3339 time; the balance now when absent.
    #[param(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/accounts/{id}/balance", tag = "ledger",
    params(("id" = Uuid, Path, description = "Account id"), BalanceQuery),
    responses(
        (status = 200, description = "Balance as of the time asked", body = AsOfBalanceBody),
        (status = 400, description = "Bad time", body = ErrorBody),
        (status = 403, description = READ_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:read"]))
)]
pub async fn get_balance(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(query): Query<BalanceQuery>,
) -> Result<axum::Json<AsOfBalanceBody>, ApiError> {
    let id = AccountId(parse_id(&id)?);
    let account = state.database.account(id).await?.ok_or_else(|| {
        ApiError::not_found("account_not_found", format!("account {id} does not exist"))
    })?;
    principal.may_read(&account.account)?;
    let (as_of, balance) = match query.as_of {
        None => (state.clock.now(), account.balance),
        Some(text) => {
            let at: Timestamp = text.parse().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("as_of {text:?} is not an RFC 3339 time such as 2026-01-31T23:59:59Z"),
                )
            })?;
            (at, state.database.balance_as_of(id, at).await?)
        }
    };
    Ok(axum::Json(AsOfBalanceBody {
        account_id: id.as_uuid(),
        as_of,
        balance: BalanceBody::new(&balance, account.account.currency),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Cursor: the `sequence` of the last leg already seen (0 or absent for the first page).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

#[utoipa::path(
    get, path = "/v1/accounts/{id}/entries", tag = "ledger",
    params(("id" = Uuid, Path, description = "Account id"), PageQuery),
    responses(
        (status = 200, description = "The account's legs in posting order", body = AccountLegPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 403, description = READ_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:read"]))
)]
pub async fn list_account_entries(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<AccountLegPage>, ApiError> {
    let id = AccountId(parse_id(&id)?);
    let limit = query.limit.unwrap_or(100);
    if !(1..=state.limits.page_size_max).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {}", state.limits.page_size_max),
        ));
    }
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "after must not be negative",
        ));
    }
    let account = state.database.account(id).await?.ok_or_else(|| {
        ApiError::not_found("account_not_found", format!("account {id} does not exist"))
    })?;
    principal.may_read(&account.account)?;
    let legs = state.database.account_legs(id, after, limit).await?;
    let next_after = (legs.len() as i64 == limit)
        .then(|| legs.last().map(|leg| leg.sequence))
        .flatten();
    Ok(axum::Json(AccountLegPage {
        legs: legs.iter().map(AccountLegBody::new).collect(),
        next_after,
    }))
}

#[utoipa::path(
    post, path = "/v1/entries", tag = "ledger",
    request_body = PostEntryRequest,
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 201, description = "Entry posted", body = EntryBody),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = WRITE_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "Unknown account", body = ErrorBody),
        (status = 409, description = "Idempotency key reused", body = ErrorBody),
        (status = 422, description = "Unbalanced, wrong currency, over a limit, legs that net to zero on one account (`entry_nets_to_zero_on_account`) or above the largest amount of one entry (`entry_amount_too_large`)", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:write"]))
)]
pub async fn post_entry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(body): Json<PostEntryRequest>,
) -> Created<EntryBody> {
    let key = idempotency_key(&headers)?;
    let command = Command::PostEntry(body.into_new_entry()?);
    match state
        .writer
        .submit_as(principal.actor(), key, command)
        .await?
    {
        Outcome::Entry(entry) => Ok((StatusCode::CREATED, axum::Json(EntryBody::new(&entry)))),
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(
    post, path = "/v1/entries/batch", tag = "ledger",
    request_body = PostEntriesBatchRequest,
    responses(
        (status = 200, description = "Every entry's result, in the batch's order: applied (new or replayed) or refused with the code `POST /v1/entries` would give it", body = EntriesBatchBody),
        (status = 400, description = "Malformed request, or an item's key that is not a valid idempotency key (`invalid_idempotency_key`)", body = ErrorBody),
        (status = 403, description = "Missing scope `ledger:write`", body = ErrorBody),
        (status = 413, description = "Body above `[server] batch_body_limit_bytes`", body = ErrorBody),
        (status = 422, description = "No entries (`batch_empty`), more than 1,000 (`batch_too_large`), or two entries under one key (`batch_idempotency_key_repeated`); nothing is applied", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:write"]))
)]
/// Posts up to 1,000 entries in one request, in the manner of TigerBeetle's batched
/// transfers: each is applied in order under its own idempotency key and refused on its own
/// (a later entry sees the earlier ones), and the writer commits them together. The batch
/// itself is refused whole only when it is malformed.
pub async fn post_entries_batch(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Json(body): Json<PostEntriesBatchRequest>,
) -> Result<axum::Json<EntriesBatchBody>, ApiError> {
    if body.entries.is_empty() {
        return Err(ApiError::unprocessable(
            "batch_empty",
            "a batch needs at least one entry",
        ));
    }
    if body.entries.len() > BATCH_ENTRIES_MAX {
        return Err(ApiError::unprocessable(
            "batch_too_large",
            format!(
                "a batch holds at most {BATCH_ENTRIES_MAX} entries; this one has {}",
                body.entries.len()
            ),
        ));
    }
    let mut first_index_of_key = std::collections::HashMap::new();
    for (index, item) in body.entries.iter().enumerate() {
        let what = format!("entries[{index}].idempotency_key");
        checked_idempotency_key(&item.idempotency_key, &what)?;
        if let Some(first) = first_index_of_key.insert(item.idempotency_key.as_str(), index) {
            return Err(ApiError::unprocessable(
                "batch_idempotency_key_repeated",
                format!(
                    "entries {first} and {index} share the idempotency key {:?}; each entry \
                     of a batch needs its own",
                    item.idempotency_key
                ),
            ));
        }
    }
    // An entry whose legs do not parse is refused on its own, like one the ledger refuses.
    let mut results: Vec<Option<BatchEntryResult>> = Vec::with_capacity(body.entries.len());
    let mut writes = Vec::with_capacity(body.entries.len());
    for item in body.entries {
        match item.entry.into_new_entry() {
            Ok(entry) => {
                results.push(None);
                writes.push((item.idempotency_key, Command::PostEntry(entry)));
            }
            Err(error) => results.push(Some(refused(item.idempotency_key, error))),
        }
    }
    let keys: Vec<String> = writes.iter().map(|(key, _)| key.clone()).collect();
    let mut outcomes = state
        .writer
        .submit_batch_as(principal.actor(), writes)
        .await
        .into_iter()
        .zip(keys);
    let results: Vec<BatchEntryResult> = results
        .into_iter()
        .map(|result| match result {
            Some(result) => result,
            None => match outcomes.next() {
                Some((Ok(Outcome::Entry(entry)), key)) => BatchEntryResult {
                    entry: Some(EntryBody::new(&entry)),
                    error: None,
                    http_status: StatusCode::CREATED.as_u16(),
                    idempotency_key: key,
                    status: BatchEntryStatus::Applied,
                },
                Some((Ok(other), key)) => refused(key, unexpected(other)),
                Some((Err(error), key)) => refused(key, error.into()),
                None => refused(
                    String::new(),
                    ApiError::internal("the ledger answered fewer entries than it was sent"),
                ),
            },
        })
        .collect();
    let applied = results
        .iter()
        .filter(|result| result.status == BatchEntryStatus::Applied)
        .count();
    Ok(axum::Json(EntriesBatchBody {
        applied,
        refused: results.len() - applied,
        results,
    }))
}

fn refused(idempotency_key: String, error: ApiError) -> BatchEntryResult {
    BatchEntryResult {
        entry: None,
        error: Some(ErrorDetail {
            code: error.code.to_string(),
            message: error.message,
        }),
        http_status: error.status.as_u16(),
        idempotency_key,
        status: BatchEntryStatus::Refused,
    }
}

#[utoipa::path(
    get, path = "/v1/entries/{id}", tag = "ledger",
    params(("id" = Uuid, Path, description = "Entry id")),
    responses(
        (status = 200, description = "The entry", body = EntryBody),
        (status = 403, description = READ_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:read"]))
)]
pub async fn get_entry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<axum::Json<EntryBody>, ApiError> {
    let id = EntryId(parse_id(&id)?);
    let entry = state.database.entry(id).await?.ok_or_else(|| {
        ApiError::not_found("entry_not_found", format!("entry {id} does not exist"))
    })?;
    may_read_all(
        &state,
        &principal,
        entry.legs.iter().map(|leg| leg.account_id),
    )
    .await?;
    Ok(axum::Json(EntryBody::new(&entry)))
}

#[utoipa::path(
    post, path = "/v1/holds", tag = "ledger",
    request_body = CreateHoldRequest,
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 201, description = "Amount reserved", body = HoldBody),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = WRITE_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "Unknown account", body = ErrorBody),
        (status = 409, description = "Idempotency key reused", body = ErrorBody),
        (status = 422, description = "Wrong currency, over a limit, above the largest amount of one hold (`entry_amount_too_large`), or expiry in the past", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:write"]))
)]
pub async fn create_hold(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(body): Json<CreateHoldRequest>,
) -> Created<HoldBody> {
    let key = idempotency_key(&headers)?;
    let command = Command::CreateHold(body.into_new_hold()?);
    match state
        .writer
        .submit_as(principal.actor(), key, command)
        .await?
    {
        Outcome::Hold(hold) => Ok((StatusCode::CREATED, axum::Json(HoldBody::new(&hold)))),
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(
    get, path = "/v1/holds/{id}", tag = "ledger",
    params(("id" = Uuid, Path, description = "Hold id")),
    responses(
        (status = 200, description = "The hold", body = HoldBody),
        (status = 403, description = READ_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such hold", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:read"]))
)]
pub async fn get_hold(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<axum::Json<HoldBody>, ApiError> {
    let id = HoldId(parse_id(&id)?);
    let hold = state.database.hold(id).await?.ok_or_else(|| {
        ApiError::not_found("hold_not_found", format!("hold {id} does not exist"))
    })?;
    may_read_all(
        &state,
        &principal,
        [hold.debit_account_id, hold.credit_account_id].into_iter(),
    )
    .await?;
    Ok(axum::Json(HoldBody::new(&hold)))
}

#[utoipa::path(
    post, path = "/v1/holds/{id}/post", tag = "ledger",
    request_body = PostHoldRequest,
    params(
        ("id" = Uuid, Path, description = "Hold id"),
        ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe"),
    ),
    responses(
        (status = 201, description = "Hold posted as a journal entry; the rest released", body = PostedHoldBody),
        (status = 403, description = WRITE_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such hold", body = ErrorBody),
        (status = 409, description = "Hold not pending, or idempotency key reused", body = ErrorBody),
        (status = 422, description = "Amount above the hold or in another currency", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:write"]))
)]
pub async fn post_hold(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<PostHoldRequest>,
) -> Created<PostedHoldBody> {
    let key = idempotency_key(&headers)?;
    let hold_id = HoldId(parse_id(&id)?);
    let command = Command::PostHold {
        hold_id,
        amount: body.amount()?,
    };
    match state
        .writer
        .submit_as(principal.actor(), key, command)
        .await?
    {
        Outcome::PostedHold { hold, entry } => Ok((
            StatusCode::CREATED,
            axum::Json(PostedHoldBody {
                hold: HoldBody::new(&hold),
                entry: EntryBody::new(&entry),
            }),
        )),
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(
    post, path = "/v1/holds/{id}/void", tag = "ledger",
    params(
        ("id" = Uuid, Path, description = "Hold id"),
        ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe"),
    ),
    responses(
        (status = 200, description = "Hold voided; its reservation released", body = HoldBody),
        (status = 403, description = WRITE_FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such hold", body = ErrorBody),
        (status = 409, description = "Hold not pending, or idempotency key reused", body = ErrorBody),
    ),
    security(("api_key" = ["ledger:write"]))
)]
pub async fn void_hold(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<HoldBody>, ApiError> {
    let key = idempotency_key(&headers)?;
    let hold_id = HoldId(parse_id(&id)?);
    match state
        .writer
        .submit_as(principal.actor(), key, Command::VoidHold { hold_id })
        .await?
    {
        Outcome::Hold(hold) => Ok(axum::Json(HoldBody::new(&hold))),
        other => Err(unexpected(other)),
    }
}
