//! `tally privacy fingerprint-events` (`risk_fingerprints::backfill`) on SQLite and
//! PostgreSQL: risk events and list entries stored before cards and addresses were
//! fingerprinted at the edge are rewritten to the fingerprints the edge gives now, stopped and
//! resumed, run twice with nothing left the second time; no clear value stays in a row; and
//! what the old rows matched (a block-listed card, a card's burst, an address shared by many
//! customers) still matches events that arrive fingerprinted after a restart.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::{json, Value};
use tally_core::{Clock, ManualClock};
use tally_privacy::Privacy;
use tally_risk::Event;
use tally_service::payments::merchants::testing::test_privacy;
use tally_service::risk::RiskService;
use tally_service::risk_fingerprints::{backfill, fingerprint_event, BackfillReport};
use tally_store::risk::{ListEntryRow, RiskStore};
use tally_store::testing::TestDatabase;
use tally_store::Database;

const START: &str = "2026-06-01T08:00:00Z";
/// A Luhn-valid card number, block-listed in clear before fingerprinting.
const BLOCKED_CARD: &str = "4111 1111 1111 1111";
/// Another one, tried in a burst of small payments.
const BURST_CARD: &str = "4242 4242 4242 4242";
const SHARED_ADDRESS: &str = "88 Jianguo Road, Chaoyang";
/// What none of the rows may hold once the walk is done (lower case).
const CLEAR: [&str; 4] = ["4111", "4242", "jianguo", "chaoyang"];

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(START.parse().unwrap()))
}

fn event(id: &str, customer: &str, at_seconds: i64, extra: Value) -> Event {
    let at: jiff::Timestamp = START.parse().unwrap();
    let mut body = json!({
        "id": id,
        "kind": "transaction",
        "at": (at + jiff::SignedDuration::from_secs(at_seconds)).to_string(),
        "customer": customer,
        "amount": {"value": "5.00", "currency": "CNY"},
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    Event::from_json(&body.to_string()).unwrap()
}

fn reasons(decided: &tally_service::risk::Decided) -> Vec<String> {
    decided.decision["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason.as_str().unwrap().to_string())
        .collect()
}

fn list_entry(id: &str, field: &str, value: &str) -> ListEntryRow {
    ListEntryRow {
        id: id.into(),
        kind: "block".into(),
        field: field.into(),
        value: value.into(),
        reason: "stolen card".into(),
        source: "analyst".into(),
        added_at: 0,
        added_by: "analyst".into(),
        expires_at: None,
    }
}

/// Every event body and list value, lower case, as one text.
async fn stored_text(database: &Database) -> String {
    let bodies: Vec<(String,)> = tally_store::with_pool!(database, |pool| {
        sqlx::query_as("SELECT body FROM risk_events")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    let values: Vec<(String,)> = tally_store::with_pool!(database, |pool| {
        sqlx::query_as("SELECT value FROM risk_list_entries")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    bodies
        .into_iter()
        .chain(values)
        .map(|(text,)| text.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn walk(
    database: &Database,
    privacy: &Privacy,
    after: i64,
    pages: Option<u64>,
) -> (BackfillReport, Vec<BackfillReport>) {
    let mut progress = Vec::new();
    let report = backfill(
        database,
        privacy,
        after,
        2,
        pages,
        START.parse().unwrap(),
        |step| progress.push(step.clone()),
    )
    .await
    .unwrap();
    (report, progress)
}

tally_store::on_both_backends!(
    old_rows_are_fingerprinted_and_still_match,
    an_unreadable_event_stops_the_walk_with_its_code,
);

async fn old_rows_are_fingerprinted_and_still_match(test: TestDatabase) {
    let database = test.database.clone();
    let privacy = test_privacy();
    let clock = clock();
    let store = RiskStore::new(database.clone());

    // Rows as they were stored before the edge fingerprinted them: a card block-listed in
    // clear, and the same card also listed since as its fingerprint (both live).
    store
        .insert_list_entry(&list_entry("entry-1", "card", BLOCKED_CARD))
        .await
        .unwrap();
    store
        .insert_list_entry(&list_entry(
            "entry-2",
            "card",
            &privacy.card_fingerprint(BLOCKED_CARD),
        ))
        .await
        .unwrap();
    store
        .insert_list_entry(&list_entry("entry-3", "address", "1 Old Street"))
        .await
        .unwrap();
    // Events decided with their values as sent.
    let service = RiskService::open(&database, clock.clone() as Arc<dyn Clock>)
        .await
        .unwrap();
    let blocked = service
        .decide(&event(
            "old-blocked",
            "c-0",
            0,
            json!({"card": BLOCKED_CARD}),
        ))
        .await
        .unwrap();
    assert_eq!(blocked.decision["action"], "reject");
    let blocked_reasons = reasons(&blocked);
    for index in 0..4 {
        service
            .decide(&event(
                &format!("old-burst-{index}"),
                "c-burst",
                10 + index,
                json!({"card": BURST_CARD}),
            ))
            .await
            .unwrap();
        service
            .decide(&event(
                &format!("old-address-{index}"),
                &format!("c-{}", index + 1),
                20 + index,
                json!({"address": SHARED_ADDRESS}),
            ))
            .await
            .unwrap();
    }
    drop(service);
    let before = stored_text(&database).await;
    assert!(before.contains("4111") && before.contains("jianguo"));

    // Stopped after one page of events, then resumed from where it stopped.
    let (first, progress) = walk(&database, &privacy, 0, Some(1)).await;
    assert_eq!(first.list_entries, 3);
    assert_eq!(first.list_entries_rewritten, 2);
    assert_eq!(first.list_entries_merged, 1);
    assert_eq!((first.events, first.events_rewritten), (2, 2));
    assert_eq!(progress.last(), Some(&first));
    let (rest, _) = walk(&database, &privacy, first.last_sequence, None).await;
    assert_eq!((rest.events, rest.events_rewritten), (7, 7));
    assert_eq!(rest.list_entries_rewritten, 0);
    // Run again: everything is read, nothing is written.
    let (again, _) = walk(&database, &privacy, 0, None).await;
    assert_eq!((again.events, again.events_rewritten), (9, 0));
    assert_eq!((again.list_entries, again.list_entries_rewritten), (3, 0));

    let after = stored_text(&database).await;
    for clear in CLEAR {
        assert!(!after.contains(clear), "{clear} is still stored: {after}");
    }
    assert!(after.contains(&privacy.card_fingerprint(BURST_CARD)));
    // One live entry per value, as the engine keeps them: the duplicate is marked removed.
    let live: Vec<(String,)> = tally_store::with_pool!(&database, |pool| {
        sqlx::query_as(
            "SELECT id FROM risk_list_entries WHERE field = 'card' AND removed_at IS NULL",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    assert_eq!(live, vec![("entry-2".to_string(),)]);

    // A restarted service, fed events fingerprinted at the edge, matches what the old rows
    // matched: the listed card, the card's burst and the shared address.
    let service = RiskService::open(&database, clock.clone() as Arc<dyn Clock>)
        .await
        .unwrap();
    let decide = |mut event: Event| {
        fingerprint_event(Some(&privacy), &mut event).unwrap();
        let service = &service;
        async move { service.decide(&event).await.unwrap() }
    };
    let blocked_again = decide(event(
        "new-blocked",
        "c-0",
        60,
        json!({"card": "4111-1111-1111-1111"}),
    ))
    .await;
    assert_eq!(blocked_again.decision["action"], "reject");
    assert_eq!(reasons(&blocked_again), blocked_reasons);
    let burst = decide(event(
        "new-burst",
        "c-burst",
        61,
        json!({"card": "4242424242424242"}),
    ))
    .await;
    assert_eq!(burst.decision["features"]["card_transactions_10m"], 5);
    let shared = decide(event(
        "new-address",
        "c-5",
        62,
        json!({"address": "88 JIANGUO ROAD,  Chaoyang"}),
    ))
    .await;
    assert_eq!(shared.decision["features"]["address_customers_30d"], 5);
    assert!(
        reasons(&shared)
            .iter()
            .any(|reason| reason.contains("ADDRESS")),
        "{:?}",
        shared.decision
    );
}

async fn an_unreadable_event_stops_the_walk_with_its_code(test: TestDatabase) {
    let database = test.database.clone();
    let privacy = test_privacy();
    let service = RiskService::open(&database, clock() as Arc<dyn Clock>)
        .await
        .unwrap();
    let decided = service
        .decide(&event("old", "c-1", 0, json!({"card": BURST_CARD})))
        .await
        .unwrap();
    drop(service);
    tally_store::with_pool!(&database, |pool| {
        sqlx::query("UPDATE risk_events SET body = 'not json' WHERE sequence = $1")
            .bind(decided.sequence)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
    });
    let error = backfill(
        &database,
        &privacy,
        0,
        10,
        None,
        START.parse().unwrap(),
        |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "risk_event_unreadable");
    assert!(error.to_string().contains(&decided.sequence.to_string()));
}
