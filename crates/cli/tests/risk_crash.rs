//! Crash test of risk decisions: concurrent clients send transaction events to `tally serve`,
//! the process is killed with SIGKILL mid-load, restarted on the same database, and every
//! event is sent again with its id. Each event acknowledged before the crash answers the
//! decision it was given then; every event is stored once; and the velocity features the
//! restarted engine rebuilt from the stored events count each event exactly once — an event
//! that was decided but not stored when the process died is counted only by its retry.
//! Runs on SQLite and on PostgreSQL (`TALLY_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tally_store::Database;

mod support;
use support::crash::{crash_tests, kill_mid_load_and_retry, Load, Served};
use support::{scalar, PRIVACY_KEYS};

const EVENTS: usize = 1_200;
const CLIENTS: usize = 8;
/// Cards the events are spread over; each card's 10-minute velocity is then known exactly.
const CARDS: usize = 4;
/// Acknowledged decisions after which the server is killed.
const KILL_AFTER: usize = 200;

fn transaction(index: usize, at: &str) -> Value {
    json!({
        "id": format!("crash-event-{index}"),
        "kind": "transaction",
        "at": at,
        "customer": format!("customer-{}", index % 50),
        "card": format!("card-{}", index % CARDS),
        "device": format!("device-{}", index % 7),
        "amount": {"value": format!("{}.00", 10 + index % 90), "currency": "CNY"},
        "merchant": "m-crash",
    })
}

async fn decisions_survive_a_crash(url: String, database: Database) {
    let scopes = ["risk:write", "risk:read"];
    // The events carry cards, fingerprinted under the personal-data keys.
    let mut served = Served::start(url, "risk-crash", &scopes, PRIVACY_KEYS).await;
    // One time for every event, so the retries send byte-identical events and every event
    // falls in the same 10-minute window.
    let at = jiff::Timestamp::now().to_string();
    let load = Load {
        requests: EVENTS,
        clients: CLIENTS,
        kill_after: KILL_AFTER,
        poll: Duration::from_millis(5),
        idempotency_prefix: "risk-crash-",
        noun: "decision",
        request: {
            let at = at.clone();
            Arc::new(move |index| {
                (
                    "/v1/risk/decisions".to_string(),
                    transaction(index, &at),
                    200,
                )
            })
        },
    };
    let acknowledged_before_crash = kill_mid_load_and_retry(&mut served, &load).await;

    // Every event is stored once.
    let stored = scalar(
        &database,
        "SELECT COUNT(*) FROM risk_events WHERE event_id LIKE 'crash-event-%'",
    )
    .await;
    assert_eq!(stored, i64::try_from(EVENTS).unwrap());
    let distinct = scalar(
        &database,
        "SELECT COUNT(DISTINCT event_id) FROM risk_events WHERE event_id LIKE 'crash-event-%'",
    )
    .await;
    assert_eq!(distinct, stored);

    // One more event per card: the engine counts every earlier event on the card once.
    for card in 0..CARDS {
        let mut probe = transaction(EVENTS + card, &at);
        probe["card"] = json!(format!("card-{card}"));
        let (status, body) = served
            .post(&format!("probe-{card}"), "/v1/risk/decisions", &probe)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let earlier = (0..EVENTS).filter(|index| index % CARDS == card).count();
        assert_eq!(
            body["decision"]["features"]["card_transactions_10m"],
            json!(earlier + 1),
            "card-{card}: {body}"
        );
    }
    eprintln!(
        "{acknowledged_before_crash} of {EVENTS} decisions acknowledged before the crash; \
         each answered the same after it, stored once, counted once"
    );
}

crash_tests!(decisions_survive_a_crash, "risk-crash.db"; sqlite, postgres);
