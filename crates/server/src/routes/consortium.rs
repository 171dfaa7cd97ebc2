//! Consortium log routes: signed member requests (proposals, approvals, records,
//! retractions, queries), members and query counts, the signed checkpoint, proofs,
//! entries and tiles, and the log's status. Served by [`crate::consortium_app`] on a
//! listener of its own.
//!
//! The checkpoint, tiles and entry bundles are C2SP tlog-tiles resources under the prefix
//! `/v1/consortium` (`<prefix>/checkpoint`, `<prefix>/tile/0/x001/234.p/5`,
//! `<prefix>/tile/entries/000`), so that an existing tlog client, monitor or witness
//! configured with `http://host:port/v1/consortium` reads the log. The tiles were once at
//! `tile/{level}/{index}` with a plain number; nothing but tests read them there (the
//! mirror reads ranges of entries), so that spelling is gone.
//!
//! Member requests authenticate by their Ed25519 signature (checked by the log's rules,
//! replays refused by sequence number), not by API keys: the log's readers and writers
//! are institutions of the consortium, not clients of this Tally. The log's public reads
//! (checkpoint, proofs, entries, tiles) need no authentication, as in any transparency
//! log; members and query counts are public to the same extent, since they are in the log.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use tally_consortium::entry_range::push_entry;
use tally_consortium::{
    encode_entry_bundle, normalise, Action, Error, IdentifierKind, IdentifierOpening, Refusal,
    SignedRequest, TileResource, TILE_WIDTH,
};
use tally_service::consortium::{Accepted, ConsortiumLog};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::wire::consortium::{
    ConsistencyProofBody, EffectBody, IdentifierBody, InclusionProofBody, IntegrityBody,
    LogStatusBody, LoggedBody, MemberBody, MemberList, QueryAnswerBody, QueryCountBody, RecordBody,
    SignedMemberRequest,
};

/// What every consortium handler shares.
#[derive(Clone, Debug)]
pub struct ConsortiumAppState {
    /// The operator thread.
    pub log: ConsortiumLog,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
}

impl ConsortiumAppState {
    /// State with the default body limit (64 KiB).
    pub fn new(log: ConsortiumLog) -> Self {
        ConsortiumAppState {
            log,
            body_limit_bytes: 64 * 1024,
        }
    }
}

/// The HTTP status of a consortium error; its code is the core's stable code.
pub fn consortium_error(error: Error) -> ApiError {
    let status = match &error {
        Error::Refused { reason, .. } => match reason {
            Refusal::BadSignature => StatusCode::UNAUTHORIZED,
            Refusal::NotAMember | Refusal::Suspended | Refusal::NotThePublisher => {
                StatusCode::FORBIDDEN
            }
            Refusal::Replay
            | Refusal::AlreadyApproved
            | Refusal::AlreadyMember
            | Refusal::Genesis => StatusCode::CONFLICT,
            Refusal::UnknownReference => StatusCode::NOT_FOUND,
            Refusal::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        },
        Error::MalformedEntry(_) | Error::InvalidHash(_) | Error::OutOfRange(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::InvalidIdentifier(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Storage(detail) => {
            tracing::error!(%detail, "consortium storage failed");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the consortium log could not store or read this; retry with a new sequence number",
            );
        }
        Error::Internal(_) => return ApiError::internal(error),
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.code(), error.to_string())
}

/// Which actions a route takes.
#[derive(Debug, Clone, Copy)]
enum Route {
    Proposals,
    Approvals,
    Records,
    Retractions,
    Queries,
}

impl Route {
    fn takes(self, action: &Action) -> bool {
        matches!(
            (self, action),
            (
                Route::Proposals,
                Action::ProposeAdmission { .. }
                    | Action::ProposeSuspension { .. }
                    | Action::ProposeQuota { .. }
            ) | (Route::Approvals, Action::Approve { .. })
                | (Route::Records, Action::PublishRecord { .. })
                | (Route::Retractions, Action::RetractRecord { .. })
                | (Route::Queries, Action::Query { .. })
        )
    }

    fn name(self) -> &'static str {
        match self {
            Route::Proposals => "proposals (admission, suspension, quota)",
            Route::Approvals => "approvals",
            Route::Records => "record publications",
            Route::Retractions => "record retractions",
            Route::Queries => "queries",
        }
    }
}

fn decode_request(body: &SignedMemberRequest) -> Result<SignedRequest, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.request.trim())
        .map_err(|_| ApiError::bad_request("invalid_base64", "request is not valid base64"))?;
    SignedRequest::from_bytes(&bytes).map_err(consortium_error)
}

fn decode_opening(body: &IdentifierBody) -> Result<IdentifierOpening, ApiError> {
    let kind = IdentifierKind::from_name(&body.kind).map_err(consortium_error)?;
    let identifier = normalise(kind, &body.value, None).map_err(consortium_error)?;
    let salt: [u8; 16] = hex::decode(body.salt.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("invalid_salt", "salt must be 16 bytes in hex"))?;
    Ok(IdentifierOpening::new(identifier, salt))
}

async fn submit(
    state: &ConsortiumAppState,
    route: Route,
    body: SignedMemberRequest,
) -> Result<Response, ApiError> {
    let request = decode_request(&body)?;
    if !route.takes(&request.action) {
        return Err(ApiError::bad_request(
            "wrong_route",
            format!("this route takes {} only", route.name()),
        ));
    }
    let needs_opening = matches!(route, Route::Records | Route::Queries);
    let opening = match (&body.identifier, needs_opening) {
        (Some(identifier), true) => Some(decode_opening(identifier)?),
        (None, true) => {
            return Err(ApiError::bad_request(
                "identifier_required",
                "publications and queries need the identifier and salt of their commitment",
            ))
        }
        (Some(_), false) => {
            return Err(ApiError::bad_request(
                "unexpected_identifier",
                "this request carries no identifier",
            ))
        }
        (None, false) => None,
    };
    let accepted = state
        .log
        .submit(request, opening)
        .await
        .map_err(consortium_error)?;
    Ok(match accepted {
        Accepted::Logged { index, effect } => (
            StatusCode::CREATED,
            axum::Json(LoggedBody {
                effect: EffectBody::new(&effect),
                index,
            }),
        )
            .into_response(),
        Accepted::Answered(answer) => (
            StatusCode::OK,
            axum::Json(QueryAnswerBody {
                index: answer.index,
                records: answer.records.iter().map(RecordBody::new).collect(),
            }),
        )
            .into_response(),
    })
}

/// `POST /v1/consortium/proposals`: propose an admission, a suspension or a quota.
#[utoipa::path(
    post, path = "/v1/consortium/proposals", tag = "consortium",
    request_body(content = SignedMemberRequest, description = "`{request, identifier?}`: `request` is the base64 of the signed request's canonical bytes (member name, sequence number, time, action and the member's Ed25519 signature), no identifier"),
    responses(
        (status = 201, description = "Logged: `{index, effect}`, the proposal opened, and whether the proposer's own approval already carried it out", body = LoggedBody),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`), request not base64 (`invalid_base64`) or not a request (`malformed_entry`), an action this route does not take (`wrong_route`), an identifier sent with it (`unexpected_identifier`)", body = ErrorBody),
        (status = 401, description = "The signature does not verify under the member's key (`bad_signature`)", body = ErrorBody),
        (status = 403, description = "The signer or the member to suspend or give a quota is not a member (`not_a_member`), or the signer is suspended (`member_suspended`)", body = ErrorBody),
        (status = 404, description = "The member to suspend is already suspended (`unknown_reference`)", body = ErrorBody),
        (status = 409, description = "Sequence number not above the member's last (`replayed_request`), or the candidate's name or key is already a member's (`already_member`)", body = ErrorBody),
        (status = 422, description = "A field out of range: candidate name or key, reason, quota, request time too far from the log's (`invalid_field`)", body = ErrorBody),
        (status = 503, description = "The log could not store or read this (`storage_unavailable`); retry with a new sequence number", body = ErrorBody),
    ),
)]
pub async fn propose(
    State(state): State<ConsortiumAppState>,
    Json(body): Json<SignedMemberRequest>,
) -> Result<Response, ApiError> {
    submit(&state, Route::Proposals, body).await
}

/// `POST /v1/consortium/approvals`: approve an open proposal.
#[utoipa::path(
    post, path = "/v1/consortium/approvals", tag = "consortium",
    request_body(content = SignedMemberRequest, description = "`{request, identifier?}`: `request` is the base64 of the signed request's canonical bytes (member name, sequence number, time, action and the member's Ed25519 signature), no identifier"),
    responses(
        (status = 201, description = "Logged: `{index, effect}`, the approval, and whether it carried the proposal out", body = LoggedBody),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`), request not base64 (`invalid_base64`) or not a request (`malformed_entry`), an action this route does not take (`wrong_route`), an identifier sent with it (`unexpected_identifier`)", body = ErrorBody),
        (status = 401, description = "The signature does not verify under the member's key (`bad_signature`)", body = ErrorBody),
        (status = 403, description = "The signer is not a member (`not_a_member`) or is suspended (`member_suspended`)", body = ErrorBody),
        (status = 404, description = "No such proposal, the proposal is closed, or the member it suspends is already suspended (`unknown_reference`)", body = ErrorBody),
        (status = 409, description = "Sequence number not above the member's last (`replayed_request`), already approved by this member (`already_approved`), or the candidate is already a member (`already_member`)", body = ErrorBody),
        (status = 422, description = "A field out of range, or request time too far from the log's (`invalid_field`)", body = ErrorBody),
        (status = 503, description = "The log could not store or read this (`storage_unavailable`); retry with a new sequence number", body = ErrorBody),
    ),
)]
pub async fn approve(
    State(state): State<ConsortiumAppState>,
    Json(body): Json<SignedMemberRequest>,
) -> Result<Response, ApiError> {
    submit(&state, Route::Approvals, body).await
}

/// `POST /v1/consortium/records`: publish a risk record.
#[utoipa::path(
    post, path = "/v1/consortium/records", tag = "consortium",
    request_body(content = SignedMemberRequest, description = "`{request, identifier?}`: `request` is the base64 of the signed request's canonical bytes (member name, sequence number, time, action and the member's Ed25519 signature), and `identifier: {kind: phone|national_id|card|device|account, value, salt}` that opens the request's identifier commitment (checked, blinded and dropped, never stored)"),
    responses(
        (status = 201, description = "Logged: `{index, effect}`, the record published", body = LoggedBody),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`), request not base64 (`invalid_base64`) or not a request (`malformed_entry`), an action this route does not take (`wrong_route`), no identifier (`identifier_required`), salt not 16 bytes in hex (`invalid_salt`)", body = ErrorBody),
        (status = 401, description = "The signature does not verify under the member's key (`bad_signature`)", body = ErrorBody),
        (status = 403, description = "The signer is not a member (`not_a_member`) or is suspended (`member_suspended`)", body = ErrorBody),
        (status = 409, description = "Sequence number not above the member's last (`replayed_request`)", body = ErrorBody),
        (status = 422, description = "Identifier kind or value invalid (`invalid_identifier`), identifier and salt do not open the commitment (`commitment_mismatch`), severity, expiry, evidence reference or request time out of range (`invalid_field`)", body = ErrorBody),
        (status = 503, description = "The log could not store or read this (`storage_unavailable`); retry with a new sequence number", body = ErrorBody),
    ),
)]
pub async fn publish(
    State(state): State<ConsortiumAppState>,
    Json(body): Json<SignedMemberRequest>,
) -> Result<Response, ApiError> {
    submit(&state, Route::Records, body).await
}

/// `POST /v1/consortium/retractions`: retract one of the member's records.
#[utoipa::path(
    post, path = "/v1/consortium/retractions", tag = "consortium",
    request_body(content = SignedMemberRequest, description = "`{request, identifier?}`: `request` is the base64 of the signed request's canonical bytes (member name, sequence number, time, action and the member's Ed25519 signature), no identifier"),
    responses(
        (status = 201, description = "Logged: `{index, effect}`, the record retracted", body = LoggedBody),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`), request not base64 (`invalid_base64`) or not a request (`malformed_entry`), an action this route does not take (`wrong_route`), an identifier sent with it (`unexpected_identifier`)", body = ErrorBody),
        (status = 401, description = "The signature does not verify under the member's key (`bad_signature`)", body = ErrorBody),
        (status = 403, description = "The signer is not a member (`not_a_member`), is suspended (`member_suspended`), or did not publish the record (`not_the_publisher`)", body = ErrorBody),
        (status = 404, description = "No such record, or already retracted (`unknown_reference`)", body = ErrorBody),
        (status = 409, description = "Sequence number not above the member's last (`replayed_request`)", body = ErrorBody),
        (status = 422, description = "Reason too long, or request time too far from the log's (`invalid_field`)", body = ErrorBody),
        (status = 503, description = "The log could not store or read this (`storage_unavailable`); retry with a new sequence number", body = ErrorBody),
    ),
)]
pub async fn retract(
    State(state): State<ConsortiumAppState>,
    Json(body): Json<SignedMemberRequest>,
) -> Result<Response, ApiError> {
    submit(&state, Route::Retractions, body).await
}

/// `POST /v1/consortium/queries`: ask for live records about an identifier (logged).
#[utoipa::path(
    post, path = "/v1/consortium/queries", tag = "consortium",
    request_body(content = SignedMemberRequest, description = "`{request, identifier?}`: `request` is the base64 of the signed request's canonical bytes (member name, sequence number, time, action and the member's Ed25519 signature), and `identifier: {kind: phone|national_id|card|device|account, value, salt}` that opens the request's identifier commitment (checked, blinded and dropped, never stored)"),
    responses(
        (status = 200, description = "Logged and answered: `{index, records}`, the live records about the identifier", body = QueryAnswerBody),
        (status = 400, description = "Malformed request (`malformed_json`, `unknown_field`, `invalid_request`), request not base64 (`invalid_base64`) or not a request (`malformed_entry`), an action this route does not take (`wrong_route`), no identifier (`identifier_required`), salt not 16 bytes in hex (`invalid_salt`)", body = ErrorBody),
        (status = 401, description = "The signature does not verify under the member's key (`bad_signature`)", body = ErrorBody),
        (status = 403, description = "The signer is not a member (`not_a_member`) or is suspended (`member_suspended`)", body = ErrorBody),
        (status = 409, description = "Sequence number not above the member's last (`replayed_request`)", body = ErrorBody),
        (status = 422, description = "Identifier kind or value invalid (`invalid_identifier`), identifier and salt do not open the commitment (`commitment_mismatch`), or request time out of range (`invalid_field`)", body = ErrorBody),
        (status = 429, description = "The member has used its query quota for the day (`quota_exceeded`)", body = ErrorBody),
        (status = 503, description = "The log could not store or read this (`storage_unavailable`); retry with a new sequence number", body = ErrorBody),
    ),
)]
pub async fn query(
    State(state): State<ConsortiumAppState>,
    Json(body): Json<SignedMemberRequest>,
) -> Result<Response, ApiError> {
    submit(&state, Route::Queries, body).await
}

/// `GET /v1/consortium/members`: members, their keys, status and query counts.
#[utoipa::path(
    get, path = "/v1/consortium/members", tag = "consortium",
    responses(
        (status = 200, description = "`{members}`: name, public key (hex), status, admitted_at, last_sequence, query_quota_per_day, queries_total", body = MemberList),
        (status = 503, description = "The log could not be read (`storage_unavailable`)", body = ErrorBody),
    ),
)]
pub async fn members(State(state): State<ConsortiumAppState>) -> Result<Response, ApiError> {
    let members = state
        .log
        .read(|operator| {
            let state = operator.state();
            state
                .members()
                .iter()
                .map(|(name, member)| MemberBody::new(name, member, state.query_count(name).total))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(consortium_error)?;
    Ok(axum::Json(MemberList { members }).into_response())
}

/// `GET /v1/consortium/members/{name}/query-count`: a member's logged query counts, and
/// the proof of its total: its member map leaf, the leaf's inclusion proof and the
/// signed checkpoint that commits the map (`proof`, the text `tally consortium verify
/// count` checks offline). Counts and proof are read together, at the same tree size.
#[utoipa::path(
    get, path = "/v1/consortium/members/{name}/query-count", tag = "consortium",
    params(("name" = String, Path, description = "Member name")),
    responses(
        (status = 200, description = "`{member, total, day, in_day, publications, tree_size, proof}`: the counts and the proof of the total (member map leaf, its inclusion proof and the signed checkpoint), read at one tree size", body = QueryCountBody),
        (status = 404, description = "No such member (`member_not_found`)", body = ErrorBody),
        (status = 503, description = "The log could not be read (`storage_unavailable`)", body = ErrorBody),
    ),
)]
pub async fn query_count(
    State(state): State<ConsortiumAppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let lookup = name.clone();
    let (count, proof) = state
        .log
        .read(move |operator| {
            let count = operator.state().query_count(&lookup);
            Ok::<_, Error>(operator.count_proof(&lookup)?.map(|proof| (count, proof)))
        })
        .await
        .and_then(|result| result)
        .map_err(consortium_error)?
        .ok_or_else(|| ApiError::not_found("member_not_found", format!("no member {name:?}")))?;
    let tree_size = tally_consortium::Note::parse(&proof.checkpoint)
        .and_then(|note| tally_consortium::Checkpoint::parse(&note.text))
        .map_err(consortium_error)?
        .size;
    Ok(axum::Json(QueryCountBody {
        day: count.day,
        in_day: count.in_day,
        member: name,
        proof: proof.to_text(),
        publications: proof.leaf.publications,
        total: count.total,
        tree_size,
    })
    .into_response())
}

/// `GET /v1/consortium/checkpoint`: the latest signed checkpoint (C2SP signed note), the
/// tlog-tiles `<prefix>/checkpoint`.
#[utoipa::path(
    get, path = "/v1/consortium/checkpoint", tag = "consortium",
    responses(
        (status = 200, description = "The latest checkpoint as a C2SP signed note: origin, tree size, root hash and the operator's signature", body = String, content_type = "text/plain; charset=utf-8"),
    ),
)]
pub async fn checkpoint(State(state): State<ConsortiumAppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            // tlog-tiles: the checkpoint changes with every batch; cache it no longer.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        state.log.checkpoint(),
    )
        .into_response()
}

/// Query of an inclusion proof.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// Index of the entry.
    pub index: u64,
    /// Tree size of the checkpoint the proof is for; the current size when absent.
    pub size: Option<u64>,
}

/// Query of a consistency proof.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older size.
    pub old: u64,
    /// The newer size; the current size when absent.
    pub new: Option<u64>,
}

fn hashes_base64(hashes: &[tally_consortium::Hash]) -> Vec<String> {
    hashes.iter().map(|hash| hash.to_base64()).collect()
}

/// `GET /v1/consortium/proofs/inclusion?index=I&size=N`: the inclusion proof of entry
/// `I` in the tree of `N` entries, with the entry's leaf hash.
#[utoipa::path(
    get, path = "/v1/consortium/proofs/inclusion", tag = "consortium",
    params(
        ("index" = u64, Query, description = "Index of the entry"),
        ("size" = Option<u64>, Query, description = "Tree size of the checkpoint the proof is for; the current size when absent"),
    ),
    responses(
        (status = 200, description = "`{index, size, leaf, hashes}`: the entry's leaf hash and the proof's hashes, base64", body = InclusionProofBody),
        (status = 400, description = "Missing or bad parameter (`invalid_query`), index not below size or size above the log's (`out_of_range`)", body = ErrorBody),
        (status = 503, description = "The log could not be read (`storage_unavailable`)", body = ErrorBody),
    ),
)]
pub async fn inclusion_proof(
    State(state): State<ConsortiumAppState>,
    Query(query): Query<InclusionQuery>,
) -> Result<Response, ApiError> {
    let (size, leaf, hashes) = state
        .log
        .read(move |operator| {
            let log = operator.log();
            let size = query.size.unwrap_or(log.size());
            let proof = log.inclusion_proof(query.index, size)?;
            Ok::<_, Error>((size, log.leaf_hash(query.index)?, proof))
        })
        .await
        .and_then(|result| result)
        .map_err(consortium_error)?;
    Ok(axum::Json(InclusionProofBody {
        hashes: hashes_base64(&hashes),
        index: query.index,
        leaf: leaf.to_base64(),
        size,
    })
    .into_response())
}

/// `GET /v1/consortium/proofs/consistency?old=M&new=N`: the consistency proof from the
/// tree of `M` entries to the tree of `N`.
#[utoipa::path(
    get, path = "/v1/consortium/proofs/consistency", tag = "consortium",
    params(
        ("old" = u64, Query, description = "The older tree size"),
        ("new" = Option<u64>, Query, description = "The newer tree size; the current size when absent"),
    ),
    responses(
        (status = 200, description = "`{old_size, new_size, hashes}`: the proof's hashes, base64", body = ConsistencyProofBody),
        (status = 400, description = "Missing or bad parameter (`invalid_query`), sizes out of order or above the log's (`out_of_range`)", body = ErrorBody),
        (status = 503, description = "The log could not be read (`storage_unavailable`)", body = ErrorBody),
    ),
)]
pub async fn consistency_proof(
    State(state): State<ConsortiumAppState>,
    Query(query): Query<ConsistencyQuery>,
) -> Result<Response, ApiError> {
    let (new, hashes) = state
        .log
        .read(move |operator| {
            let log = operator.log();
            let new = query.new.unwrap_or(log.size());
            Ok::<_, Error>((new, log.consistency_proof(query.old, new)?))
        })
        .await
        .and_then(|result| result)
        .map_err(consortium_error)?;
    Ok(axum::Json(ConsistencyProofBody {
        hashes: hashes_base64(&hashes),
        new_size: new,
        old_size: query.old,
    })
    .into_response())
}

/// `GET /v1/consortium/entries/{index}`: the entry's canonical bytes.
#[utoipa::path(
    get, path = "/v1/consortium/entries/{index}", tag = "consortium",
    params(("index" = u64, Path, description = "Index of the entry")),
    responses(
        (status = 200, description = "The entry's canonical bytes", content_type = "application/octet-stream"),
        (status = 400, description = "The index is not a number (`invalid_index`)", body = ErrorBody),
        (status = 404, description = "No such entry (`entry_not_found`)", body = ErrorBody),
        (status = 503, description = "The log could not be read (`storage_unavailable`)", body = ErrorBody),
    ),
)]
pub async fn entry(
    State(state): State<ConsortiumAppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_index", "the index is not a number"))?;
    let bytes = state
        .log
        .read(move |operator| {
            if index >= operator.log().size() {
                return Ok(None);
            }
            operator.log().entry(index)
        })
        .await
        .and_then(|result| result)
        .map_err(consortium_error)?
        .ok_or_else(|| ApiError::not_found("entry_not_found", format!("no entry {index}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Most entries in one response of [`entries`].
pub const ENTRIES_PER_RESPONSE_MAX: u64 = 1000;

/// Query of a range of entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// Index of the first entry.
    pub start: u64,
    /// How many (at most [`ENTRIES_PER_RESPONSE_MAX`], the default); fewer at the end of
    /// the log.
    pub count: Option<u64>,
}

/// `GET /v1/consortium/entries?start=S&count=N`: entries `S..S+N` in one response, each
/// as a 4-byte big-endian length and its canonical bytes, so that a mirror fetches a
/// million entries in a thousand requests rather than a million.
#[utoipa::path(
    get, path = "/v1/consortium/entries", tag = "consortium",
    params(
        ("start" = u64, Query, description = "Index of the first entry"),
        ("count" = Option<u64>, Query, description = "How many, at most 1000 (the default); fewer at the end of the log"),
    ),
    responses(
        (status = 200, description = "The entries, each as a 4-byte big-endian length and its canonical bytes", content_type = "application/octet-stream"),
        (status = 400, description = "Missing or bad parameter (`invalid_query`)", body = ErrorBody),
        (status = 404, description = "`start` is not below the log's size (`entry_not_found`)", body = ErrorBody),
        (status = 503, description = "The log could not be read (`storage_unavailable`)", body = ErrorBody),
    ),
)]
pub async fn entries(
    State(state): State<ConsortiumAppState>,
    Query(query): Query<EntriesQuery>,
) -> Result<Response, ApiError> {
    let count = query
        .count
        .unwrap_or(ENTRIES_PER_RESPONSE_MAX)
        .min(ENTRIES_PER_RESPONSE_MAX);
    let start = query.start;
    let body = state
        .log
        .read(move |operator| {
            let log = operator.log();
            if start >= log.size() {
                return Ok(None);
            }
            let end = start.saturating_add(count).min(log.size());
            // Framed by `tally_consortium::entry_range`, which the mirror decodes with.
            let mut body = Vec::new();
            for index in start..end {
                let bytes = log
                    .entry(index)?
                    .ok_or_else(|| Error::Storage(format!("entry {index} is missing")))?;
                push_entry(&mut body, &bytes)
                    .map_err(|_| Error::Storage(format!("entry {index} is too long")))?;
            }
            Ok::<_, Error>(Some(body))
        })
        .await
        .and_then(|result| result)
        .map_err(consortium_error)?
        .ok_or_else(|| ApiError::not_found("entry_not_found", format!("no entry {start}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// Caching of the immutable tlog-tiles resources: a tile or bundle at a width never
/// changes (a wider one has another path).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /v1/consortium/tile/{level}/{index}`: a tile of hashes at its C2SP tlog-tiles path
/// (`tile/0/x001/234`, a partial tile `tile/0/x001/234.p/5`).
#[utoipa::path(
    get, path = "/v1/consortium/tile/{level}/{index}", tag = "consortium",
    params(
        ("level" = u8, Path, description = "Tile level, 0 to 63, no leading zero (`entries` names the entry bundles)"),
        ("index" = String, Path, description = "The tile index as C2SP tlog-tiles path elements, slashes included: three digits each, all but the last starting with `x` (1234067 is `x001/x234/067`); `.p/W` after it asks for the first W hashes (1 to 255) of a partial tile"),
    ),
    responses(
        (status = 200, description = "The tile: 32-byte hashes of tree level 8 × level, back to back (256 for a full tile, W for `.p/W`), as any tlog-tiles client reads them", content_type = "application/octet-stream"),
        (status = 400, description = "Not a tile path in its one spelling (`invalid_tile`)", body = ErrorBody),
        (status = 404, description = "No such tile, or not yet that wide (`tile_not_found`)", body = ErrorBody),
        (status = 503, description = "The log could not be read (`storage_unavailable`)", body = ErrorBody),
    ),
)]
pub async fn tile(
    State(state): State<ConsortiumAppState>,
    Path((level, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let resource =
        TileResource::parse(&format!("tile/{level}/{index}")).map_err(consortium_error)?;
    let TileResource::Hashes { id, width } = resource else {
        return Err(ApiError::bad_request(
            "invalid_tile",
            "not a tile of hashes",
        ));
    };
    let tile = state
        .log
        .read(move |operator| tally_consortium::LogStore::read_tile(operator.log().store(), id))
        .await
        .and_then(|result| result)
        .map_err(consortium_error)?
        .filter(|tile| tile.hashes.len() >= width)
        .ok_or_else(|| {
            ApiError::not_found("tile_not_found", format!("no tile at {}", resource.path()))
        })?;
    let bytes: Vec<u8> = tile.hashes[..width]
        .iter()
        .flat_map(|hash| hash.0)
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /v1/consortium/tile/entries/{index}`: an entry bundle at its C2SP tlog-tiles path.
#[utoipa::path(
    get, path = "/v1/consortium/tile/entries/{index}", tag = "consortium",
    params(
        ("index" = String, Path, description = "The bundle index as C2SP tlog-tiles path elements, slashes included (`x001/x234/067`); `.p/W` after it asks for the first W entries (1 to 255) of a partial bundle"),
    ),
    responses(
        (status = 200, description = "Entries 256 × index onwards (256, or W for `.p/W`), each as a big-endian 2-byte length and its canonical bytes; each hashes to its leaf in the level-0 tile of the same index", content_type = "application/octet-stream"),
        (status = 400, description = "Not a bundle path in its one spelling (`invalid_tile`)", body = ErrorBody),
        (status = 404, description = "The log does not hold that many entries yet (`tile_not_found`)", body = ErrorBody),
        (status = 500, description = "An entry is over 65,535 bytes, more than a bundle carries (`entry_too_long_for_bundle`)", body = ErrorBody),
        (status = 503, description = "The log could not be read (`storage_unavailable`)", body = ErrorBody),
    ),
)]
pub async fn entry_bundle(
    State(state): State<ConsortiumAppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let resource =
        TileResource::parse(&format!("tile/entries/{index}")).map_err(consortium_error)?;
    let TileResource::Entries { index, width } = resource else {
        return Err(ApiError::bad_request("invalid_tile", "not an entry bundle"));
    };
    let entries = state
        .log
        .read(move |operator| {
            let log = operator.log();
            let start = index.checked_mul(TILE_WIDTH as u64);
            let end = start.and_then(|start| start.checked_add(width as u64));
            let (Some(start), Some(end)) = (start, end) else {
                return Ok(None);
            };
            if end > log.size() {
                return Ok(None);
            }
            (start..end)
                .map(|entry| {
                    log.entry(entry)?
                        .ok_or_else(|| Error::Storage(format!("entry {entry} is missing")))
                })
                .collect::<Result<Vec<_>, Error>>()
                .map(Some)
        })
        .await
        .and_then(|result| result)
        .map_err(consortium_error)?
        .ok_or_else(|| {
            ApiError::not_found(
                "tile_not_found",
                format!("no entry bundle at {}", resource.path()),
            )
        })?;
    let bundle = encode_entry_bundle(&entries).map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "entry_too_long_for_bundle",
            error.to_string(),
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        bundle,
    )
        .into_response())
}

/// `GET /v1/consortium/status`: the signed size and the latest check of the stored log.
#[utoipa::path(
    get, path = "/v1/consortium/status", tag = "consortium",
    responses(
        (status = 200, description = "`{tree_size, integrity}`: the latest signed checkpoint's size, and the latest scheduled check of every stored entry and tile against the signed tree (`integrity.state`: `intact`, `tampered` with `first_bad_entry` or `detail`, `check_failed`, `not_checked`)", body = LogStatusBody),
    ),
)]
pub async fn status(State(state): State<ConsortiumAppState>) -> Result<Response, ApiError> {
    let tree_size = tally_consortium::Note::parse(&state.log.checkpoint())
        .and_then(|note| tally_consortium::Checkpoint::parse(&note.text))
        .map_err(consortium_error)?
        .size;
    Ok(axum::Json(LogStatusBody {
        integrity: IntegrityBody::new(&state.log.integrity()),
        tree_size,
    })
    .into_response())
}
