//! The simulator's HTTP handlers: parse, call the bank under its lock, start what follows
//! (notifications, a payout's settlement), and shape the answer; plus the gate that checks
//! the secret, answers for a bank that is down and adds latency.

use crate::error::refusal;
use crate::http::OPERATION_NOT_FOUND;
use crate::identifiers::{CardToken, ChannelId, Reference};
use crate::payout_file::{FileEncoding, PayoutFile};
use crate::simulator::control::CardRegistration;
use crate::simulator::disputes::{self, DisputeDecision, DisputeRequest};
use crate::simulator::faults::FaultsUpdate;
use crate::simulator::state::{Acted, Bank, Refusal, SIMULATOR_FULL};
use crate::simulator::{Simulator, CHANNEL_DOWN, REQUEST_SIZE_MAX};
use crate::wire::{
    amount_from_wire, AmountBody, AuthorizeBody, ErrorBody, ErrorDetail, OperationBody, PayoutBody,
    VoidBody,
};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tally_core::Amount;

pub(crate) fn routes(simulator: Simulator) -> Router {
    Router::new()
        .route("/v1/cards", post(register_card))
        .route("/v1/cards/{token}", get(card))
        .route("/v1/authorizations", post(authorize))
        .route("/v1/authorizations/{channel_id}/capture", post(capture))
        .route("/v1/authorizations/{channel_id}/void", post(void))
        .route("/v1/authorizations/{channel_id}/refunds", post(refund))
        .route("/v1/payouts", post(payout))
        .route("/v1/disputes", post(raise_dispute))
        .route("/v1/disputes/{dispute_id}/decision", post(decide_dispute))
        .route("/v1/operations/{reference}", get(operation))
        .route("/v1/settlement-files/{date}", get(settlement_file))
        .route("/v1/payout-files", post(payout_file))
        .route("/v1/faults", get(faults).post(set_faults))
        .route("/v1/down", post(down))
        .route("/v1/up", post(up))
        .fallback(|| async { refused(Refusal::new("not_found", "no such route")) })
        .layer(middleware::from_fn_with_state(simulator.clone(), gate))
        .layer(DefaultBodyLimit::max(REQUEST_SIZE_MAX))
        .with_state(simulator)
}

fn status_of(code: &str) -> StatusCode {
    match code {
        refusal::INVALID_REQUEST | refusal::INVALID_CARD_NUMBER => StatusCode::BAD_REQUEST,
        refusal::UNAUTHORIZED => StatusCode::UNAUTHORIZED,
        refusal::CARD_NOT_FOUND
        | refusal::AUTHORIZATION_NOT_FOUND
        | OPERATION_NOT_FOUND
        | disputes::DISPUTE_NOT_FOUND
        | disputes::CAPTURE_NOT_FOUND
        | "not_found" => StatusCode::NOT_FOUND,
        refusal::REFERENCE_REUSED => StatusCode::CONFLICT,
        CHANNEL_DOWN | SIMULATOR_FULL => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn refused(refusal: Refusal) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: refusal.code.to_string(),
            message: refusal.message,
        },
    };
    (status_of(refusal.code), Json(body)).into_response()
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::new(refusal::INVALID_REQUEST, message)
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0_u8, |difference, (left, right)| {
                difference | (left ^ right)
            })
            == 0
}

async fn gate(State(simulator): State<Simulator>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same_secret(bearer.as_bytes(), simulator.secret.expose().as_bytes()) {
        return refused(Refusal::new(
            refusal::UNAUTHORIZED,
            "Authorization: Bearer <secret> expected",
        ));
    }
    let control = matches!(request.uri().path(), "/v1/faults" | "/v1/down" | "/v1/up");
    if control {
        return next.run(request).await;
    }
    let (down, latency_ms) = {
        let bank = simulator.bank();
        (bank.down, bank.faults.latency_ms)
    };
    let response = if down {
        refused(Refusal::new(CHANNEL_DOWN, "the channel is down"))
    } else {
        next.run(request).await
    };
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    response
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|error| invalid(error.to_string()))
}

fn amount(value: &str, currency: &str) -> Result<Amount, Refusal> {
    amount_from_wire(value, currency).map_err(invalid)
}

fn identifier<T: std::str::FromStr<Err = crate::identifiers::InvalidIdentifier>>(
    text: &str,
) -> Result<T, Refusal> {
    text.parse()
        .map_err(|error: crate::identifiers::InvalidIdentifier| invalid(error.to_string()))
}

/// Runs a mutating call: the bank acts under its lock, then notifications and a payout's
/// settlement start, then the answer goes out, late if the `timeout_rate` fault lost it.
async fn act(
    simulator: &Simulator,
    operate: impl FnOnce(&mut Bank, Timestamp) -> Result<Acted, Refusal>,
) -> Response {
    let now = simulator.clock.now();
    let (result, lost) = {
        let mut bank = simulator.bank();
        let result = operate(&mut bank, now);
        (result, bank.answer_lost())
    };
    let response = match result {
        Ok(acted) => {
            if let Some(notifier) = &simulator.notifier {
                notifier.dispatch(acted.deliveries);
            }
            if let Some(delay_ms) = acted.settle_payout_after_ms {
                settle_payout_later(simulator.clone(), acted.status.reference.clone(), delay_ms);
            }
            Json(OperationBody::from(&acted.status)).into_response()
        }
        Err(refusal) => refused(refusal),
    };
    if lost {
        tokio::time::sleep(simulator.lost_answer_delay).await;
    }
    response
}

fn settle_payout_later(simulator: Simulator, reference: Reference, delay_ms: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let now = simulator.clock.now();
        let deliveries = simulator.bank().settle_payout(&reference, now);
        if let Some(notifier) = &simulator.notifier {
            notifier.dispatch(deliveries);
        }
    });
}

async fn register_card(State(simulator): State<Simulator>, body: Bytes) -> Response {
    let registration: CardRegistration = match parse(&body) {
        Ok(registration) => registration,
        Err(refusal) => return refused(refusal),
    };
    match simulator.bank().register_card(&registration) {
        Ok(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Err(refusal) => refused(refusal),
    }
}

async fn card(State(simulator): State<Simulator>, Path(token): Path<String>) -> Response {
    let token: CardToken = match identifier(&token) {
        Ok(token) => token,
        Err(refusal) => return refused(refusal),
    };
    match simulator.bank().card_view(&token) {
        Ok(view) => Json(view).into_response(),
        Err(refusal) => refused(refusal),
    }
}

async fn authorize(State(simulator): State<Simulator>, body: Bytes) -> Response {
    let (body, amount) = match parse::<AuthorizeBody>(&body)
        .and_then(|body| Ok((amount(&body.amount, &body.currency)?, body)))
    {
        Ok((amount, body)) => (body, amount),
        Err(refusal) => return refused(refusal),
    };
    act(&simulator, |bank, now| {
        bank.authorize(body.reference, body.token, amount, now)
    })
    .await
}

/// The authorisation id from the path and the body with its amount.
fn amount_request(
    channel_id: &str,
    body: &Bytes,
) -> Result<(ChannelId, Reference, Amount), Refusal> {
    let channel_id = identifier(channel_id)?;
    let body: AmountBody = parse(body)?;
    let amount = amount(&body.amount, &body.currency)?;
    Ok((channel_id, body.reference, amount))
}

async fn capture(
    State(simulator): State<Simulator>,
    Path(channel_id): Path<String>,
    body: Bytes,
) -> Response {
    match amount_request(&channel_id, &body) {
        Ok((channel_id, reference, amount)) => {
            act(&simulator, |bank, now| {
                bank.capture(reference, channel_id, amount, now)
            })
            .await
        }
        Err(refusal) => refused(refusal),
    }
}

async fn refund(
    State(simulator): State<Simulator>,
    Path(channel_id): Path<String>,
    body: Bytes,
) -> Response {
    match amount_request(&channel_id, &body) {
        Ok((channel_id, reference, amount)) => {
            act(&simulator, |bank, now| {
                bank.refund(reference, channel_id, amount, now)
            })
            .await
        }
        Err(refusal) => refused(refusal),
    }
}

async fn void(
    State(simulator): State<Simulator>,
    Path(channel_id): Path<String>,
    body: Bytes,
) -> Response {
    let request = identifier::<ChannelId>(&channel_id)
        .and_then(|channel_id| Ok((channel_id, parse::<VoidBody>(&body)?)));
    match request {
        Ok((channel_id, body)) => {
            act(&simulator, |bank, now| {
                bank.void(body.reference, channel_id, now)
            })
            .await
        }
        Err(refusal) => refused(refusal),
    }
}

async fn payout(State(simulator): State<Simulator>, body: Bytes) -> Response {
    let request = parse::<PayoutBody>(&body)
        .and_then(|body| Ok((amount(&body.amount, &body.currency)?, body)));
    match request {
        Ok((amount, body)) => {
            act(&simulator, |bank, now| {
                bank.payout(body.reference, body.token, amount, now)
            })
            .await
        }
        Err(refusal) => refused(refusal),
    }
}

/// Sends what a dispute's change notifies, then answers its view.
fn disputed(
    simulator: &Simulator,
    result: Result<
        (
            disputes::DisputeView,
            Vec<crate::simulator::state::Delivery>,
        ),
        Refusal,
    >,
    status: StatusCode,
) -> Response {
    match result {
        Ok((view, deliveries)) => {
            if let Some(notifier) = &simulator.notifier {
                notifier.dispatch(deliveries);
            }
            (status, Json(view)).into_response()
        }
        Err(refusal) => refused(refusal),
    }
}

async fn raise_dispute(State(simulator): State<Simulator>, body: Bytes) -> Response {
    let request = parse::<DisputeRequest>(&body)
        .and_then(|body| Ok((amount(&body.amount, &body.currency)?, body)));
    let (amount, request) = match request {
        Ok(parsed) => parsed,
        Err(refusal) => return refused(refusal),
    };
    let now = simulator.clock.now();
    let result = simulator.bank().raise_dispute(&request, amount, now);
    disputed(&simulator, result, StatusCode::CREATED)
}

async fn decide_dispute(
    State(simulator): State<Simulator>,
    Path(dispute_id): Path<String>,
    body: Bytes,
) -> Response {
    let request = identifier::<ChannelId>(&dispute_id)
        .and_then(|id| Ok((id, parse::<DisputeDecision>(&body)?)));
    let (id, decision) = match request {
        Ok(parsed) => parsed,
        Err(refusal) => return refused(refusal),
    };
    let now = simulator.clock.now();
    let result = simulator.bank().decide_dispute(&id, &decision.outcome, now);
    disputed(&simulator, result, StatusCode::OK)
}

async fn operation(State(simulator): State<Simulator>, Path(reference): Path<String>) -> Response {
    let reference: Reference = match identifier(&reference) {
        Ok(reference) => reference,
        Err(refusal) => return refused(refusal),
    };
    match simulator.bank().operation(&reference) {
        Some(status) => Json(OperationBody::from(&status)).into_response(),
        None => refused(Refusal::new(
            OPERATION_NOT_FOUND,
            format!("the bank did nothing under {reference}"),
        )),
    }
}

async fn settlement_file(State(simulator): State<Simulator>, Path(date): Path<String>) -> Response {
    let date: jiff::civil::Date = match date.parse() {
        Ok(date) => date,
        Err(error) => return refused(invalid(format!("date {date:?}: {error}"))),
    };
    let file = simulator.bank().settlement_file(date);
    match file {
        Ok(file) => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            file.to_csv(),
        )
            .into_response(),
        Err(error) => refused(invalid(error.to_string())),
    }
}

/// A batch payout file in (`?encoding=gbk` or UTF-8), its return file out in the same
/// encoding. A file that does not parse is refused whole.
async fn payout_file(
    State(simulator): State<Simulator>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let encoding = match query.get("encoding").map(String::as_str) {
        None => FileEncoding::Utf8,
        Some(name) => match FileEncoding::parse(name) {
            Some(encoding) => encoding,
            None => return refused(invalid(format!("encoding {name:?} is not utf-8 or gbk"))),
        },
    };
    let file = match PayoutFile::parse(&body, encoding) {
        Ok(file) => file,
        Err(error) => return refused(invalid(format!("payout file: {error}"))),
    };
    let answer = simulator.bank().answer_payout_file(&file);
    match answer.to_bytes(encoding) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/csv")], bytes).into_response(),
        Err(error) => refused(invalid(error.to_string())),
    }
}

async fn faults(State(simulator): State<Simulator>) -> Response {
    Json(simulator.bank().faults.clone()).into_response()
}

async fn set_faults(State(simulator): State<Simulator>, body: Bytes) -> Response {
    let update: FaultsUpdate = match parse(&body) {
        Ok(update) => update,
        Err(refusal) => return refused(refusal),
    };
    let mut bank = simulator.bank();
    match bank.faults.updated(update) {
        Ok(faults) => {
            bank.faults = faults.clone();
            Json(faults).into_response()
        }
        Err(reason) => refused(invalid(reason)),
    }
}

async fn down(State(simulator): State<Simulator>) -> StatusCode {
    simulator.bank().down = true;
    StatusCode::NO_CONTENT
}

async fn up(State(simulator): State<Simulator>) -> StatusCode {
    simulator.bank().down = false;
    StatusCode::NO_CONTENT
}
