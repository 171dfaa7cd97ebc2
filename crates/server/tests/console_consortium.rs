//! The console's Consortium page over HTTP, on SQLite and PostgreSQL: the log stored in
//! the lender's database, checked on the server before it is shown (checkpoint signature,
//! stored entries, the member's count proof, an entry's inclusion), and what it shows when
//! the key is wrong or an entry was edited; sessions and scopes as every page.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use jiff::SignedDuration;
use std::sync::Arc;
use tally_core::{Clock, ManualClock};
use tally_server::state::ConsortiumMember;
use tally_service::consortium::ConsortiumLog;
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;
use support::console::{console_send, is_sign_in_redirect, sign_in, text};
use support::consortium::{
    config, opening, operator_key, publish_action, query_action, signer, Sequences, TIME,
};
use support::{Answer, Setup, TestApp};

/// Phones the members publish and query about: never shown, not even blinded.
const PHONES: [&str; 2] = ["+8613800138000", "+8613911112222"];

struct Harness {
    app: TestApp,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let app = TestApp::start(test, "2027-01-15T08:00:00Z", Setup::default()).await;
        Self { app }
    }

    /// The application again, configured as member `member` of the log signed by `key`.
    fn as_member(&mut self, key: tally_consortium::VerifierKey, member: &str) {
        let state = self
            .app
            .state
            .clone()
            .with_consortium_member(Some(ConsortiumMember {
                log_key: key,
                member: member.into(),
            }));
        self.app.router = tally_server::app_with_risk(state.clone(), None);
        self.app.state = state;
    }

    async fn get(&self, uri: &str, token: &str) -> Answer {
        console_send(&self.app.router, "GET", uri, Some(token), None).await
    }
}

/// The log over `database`: bank-a publishes two records and queries twice, bank-b
/// queries once. Its size; its last checkpoint is stored before this returns (the
/// operator's thread stores it, then ends).
async fn make_log(database: &Database) -> u64 {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(
        jiff::Timestamp::from_second(TIME as i64).unwrap(),
    ));
    let (log, thread) = ConsortiumLog::start(database, clock, config())
        .await
        .unwrap();
    let sequences = Sequences::default();
    let bank_a = signer("bank-a", 1);
    let bank_b = signer("bank-b", 2);
    for phone in PHONES {
        log.submit(
            sequences.sign(&bank_a, publish_action(phone)),
            Some(opening(phone)),
        )
        .await
        .unwrap();
    }
    for (member, phone) in [
        (&bank_a, PHONES[0]),
        (&bank_a, PHONES[1]),
        (&bank_b, PHONES[0]),
    ] {
        log.submit(
            sequences.sign(member, query_action(phone)),
            Some(opening(phone)),
        )
        .await
        .unwrap();
    }
    let size = log.read(|operator| operator.log().size()).await.unwrap();
    drop(log);
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
    size
}

fn assert_nothing_personal(page: &str) {
    for phone in PHONES {
        assert!(!page.contains(phone), "{phone} in {page}");
        assert!(!page.contains(&phone[5..]), "part of {phone} in {page}");
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    the_page_needs_a_live_session_and_the_member_scope,
    without_configuration_the_page_says_what_to_set,
    the_checkpoint_and_the_members_count_are_verified,
    an_entry_is_looked_up_with_its_inclusion_proof,
    another_operator_key_or_an_edited_entry_fails_the_checks,
);

async fn the_page_needs_a_live_session_and_the_member_scope(mut harness: Harness) {
    make_log(&harness.app.database).await;
    harness.as_member(operator_key().verifier(), "bank-a");
    let answer = console_send(
        &harness.app.router,
        "GET",
        "/console/consortium",
        None,
        None,
    )
    .await;
    assert!(is_sign_in_redirect(&answer), "{}", answer.status);
    let answer = harness.get("/console/consortium", "forged").await;
    assert!(is_sign_in_redirect(&answer), "{}", answer.status);

    // A key without `consortium:member` sees neither the page nor its link.
    let clerk = harness.key("clerk", &["credit:read"]).await;
    let browser = sign_in(&harness.app, &clerk).await;
    let overview = text(&harness.get("/console/overview", &browser.token).await);
    assert!(
        !overview.contains("href=\"/console/consortium\""),
        "{overview}"
    );
    let answer = harness.get("/console/consortium", &browser.token).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let page = text(&answer);
    assert!(page.contains("lacks scope consortium:member"), "{page}");
    assert!(!page.contains("Root hash"), "{page}");

    // The member's key sees both, until its session sits idle past the timeout.
    let member = harness.key("member", &["consortium:member"]).await;
    let browser = sign_in(&harness.app, &member).await;
    let overview = text(&harness.get("/console/overview", &browser.token).await);
    assert!(
        overview.contains("href=\"/console/consortium\""),
        "{overview}"
    );
    let answer = harness.get("/console/consortium", &browser.token).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    harness.clock.advance(SignedDuration::from_secs(901));
    let answer = harness.get("/console/consortium", &browser.token).await;
    assert!(is_sign_in_redirect(&answer), "{}", answer.status);
}

async fn without_configuration_the_page_says_what_to_set(harness: Harness) {
    let member = harness.key("member", &["consortium:member"]).await;
    let browser = sign_in(&harness.app, &member).await;
    let answer = harness.get("/console/consortium", &browser.token).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let page = text(&answer);
    assert!(page.contains("consortium_not_configured"), "{page}");
    assert!(page.contains("log_key"), "{page}");
    // Configured, but no log has run on this database.
    let mut harness = harness;
    harness.as_member(operator_key().verifier(), "bank-a");
    let browser = sign_in(&harness.app, &member).await;
    let answer = harness.get("/console/consortium", &browser.token).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(text(&answer).contains("consortium_log_not_found"));
}

async fn the_checkpoint_and_the_members_count_are_verified(mut harness: Harness) {
    let size = make_log(&harness.app.database).await;
    harness.as_member(operator_key().verifier(), "bank-a");
    let member = harness.key("member", &["consortium:member"]).await;
    let browser = sign_in(&harness.app, &member).await;
    let answer = harness.get("/console/consortium", &browser.token).await;
    assert_eq!(answer.status, StatusCode::OK);
    let page = text(&answer);
    assert!(page.contains("Verified: every fact below"), "{page}");
    assert!(!page.contains("FAILED"), "{page}");
    assert!(page.contains(&format!("<dd>{size} entries</dd>")), "{page}");
    assert!(page.contains("signed by the operator key log.tally.example/test"));
    assert!(page.contains(&format!("the first {size} give the signed root")));
    // bank-a: two queries, two publications; bank-b's query is not counted for it.
    assert!(page.contains("<dt>Queries logged</dt><dd>2</dd>"), "{page}");
    assert!(
        page.contains("<dt>Records published</dt><dd>2</dd>"),
        "{page}"
    );
    assert!(page.contains("bank-a: 2 queries, 2 publications"), "{page}");
    assert!(page.contains("is in the member map the signed checkpoint commits"));
    assert_nothing_personal(&page);

    // bank-b's own view counts its one query.
    harness.as_member(operator_key().verifier(), "bank-b");
    let browser = sign_in(&harness.app, &member).await;
    let page = text(&harness.get("/console/consortium", &browser.token).await);
    assert!(page.contains("bank-b: 1 queries, 0 publications"), "{page}");
    // A name the log does not know fails the count, and says so.
    harness.as_member(operator_key().verifier(), "bank-z");
    let browser = sign_in(&harness.app, &member).await;
    let page = text(&harness.get("/console/consortium", &browser.token).await);
    assert!(page.contains("Not verified"), "{page}");
    assert!(
        page.contains("&quot;bank-z&quot; is not a member of the log"),
        "{page}"
    );
}

async fn an_entry_is_looked_up_with_its_inclusion_proof(mut harness: Harness) {
    let size = make_log(&harness.app.database).await;
    harness.as_member(operator_key().verifier(), "bank-a");
    let member = harness.key("member", &["consortium:member"]).await;
    let browser = sign_in(&harness.app, &member).await;
    let page = text(
        &harness
            .get("/console/consortium?entry=0", &browser.token)
            .await,
    );
    assert!(page.contains("<dd>Genesis</dd>"), "{page}");
    assert!(page.contains("<dd>the operator</dd>"), "{page}");
    assert!(page.contains(&format!(
        "entry 0 hashes to its leaf, which is in the signed tree of {size} entries"
    )));
    let last = size - 1;
    let page = text(
        &harness
            .get(&format!("/console/consortium?entry={last}"), &browser.token)
            .await,
    );
    assert!(page.contains("<dd>QueryRecord</dd>"), "{page}");
    assert!(page.contains("<dd>bank-b</dd>"), "{page}");
    assert!(page.contains("Verified: every fact below"), "{page}");
    assert_nothing_personal(&page);
    // Past the signed tree: said, and the log's checks still hold.
    let page = text(
        &harness
            .get(&format!("/console/consortium?entry={size}"), &browser.token)
            .await,
    );
    assert!(page.contains(&format!(
        "entry {size} is not in the signed tree of {size} entries"
    )));
    assert!(page.contains("Verified: every fact below"), "{page}");
    // Not a number: 400 with its code.
    for bad in ["x", "-1", "1.5"] {
        let answer = harness
            .get(&format!("/console/consortium?entry={bad}"), &browser.token)
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(text(&answer).contains("invalid_query"));
    }
}

async fn another_operator_key_or_an_edited_entry_fails_the_checks(mut harness: Harness) {
    make_log(&harness.app.database).await;
    let member = harness.key("member", &["consortium:member"]).await;
    // A key of the same name but other bytes: the signature does not verify.
    let impostor = signer("log.tally.example/test", 98).verifier();
    harness.as_member(impostor, "bank-a");
    let browser = sign_in(&harness.app, &member).await;
    let page = text(&harness.get("/console/consortium", &browser.token).await);
    assert!(page.contains("Not verified"), "{page}");
    assert!(page.contains("<td class=\"error\">FAILED</td>"), "{page}");
    assert!(page.contains("not signed by the operator key"), "{page}");
    assert!(!page.contains("Queries logged"), "{page}");

    // An entry's bytes edited in the database: the stored entries no longer hash to it.
    harness.as_member(operator_key().verifier(), "bank-a");
    let select = "SELECT bytes FROM consortium_entries WHERE entry_index = 2";
    let update = "UPDATE consortium_entries SET bytes = $1 WHERE entry_index = 2";
    tally_store::with_pool!(&harness.app.database, |pool| {
        let (mut bytes,): (Vec<u8>,) = sqlx::query_as(select).fetch_one(pool).await.unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        sqlx::query(update).bind(bytes).execute(pool).await.unwrap();
    });
    let browser = sign_in(&harness.app, &member).await;
    let page = text(&harness.get("/console/consortium", &browser.token).await);
    assert!(page.contains("Not verified"), "{page}");
    assert!(
        page.contains("entry 2 does not hash to its leaf hash"),
        "{page}"
    );
}
