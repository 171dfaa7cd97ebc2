//! Merchant webhooks on SQLite and PostgreSQL: endpoints registered under
//! `/v1/payments/webhook-endpoints`, every payment and refund change delivered by the
//! worker's pass (called here with the time each story needs, so nothing sleeps) to a small
//! receiver in this process, signed so that the signature verifies, retried with growing
//! waits while the receiver refuses, every attempt in the delivery log, a dead endpoint
//! holding back none but its own deliveries; and the refusals
//! (an unknown endpoint or event, an invalid URL or event type, a blank merchant, a reused
//! key, a key without the scope).
#![allow(clippy::unwrap_used)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tally_core::{Amount, Clock, Currency};
use tally_service::payments::webhooks::DeliveryReport;
use tally_store::testing::TestDatabase;

mod support;
use support::{code, Setup, TestApp};

/// A delivery as received: its event id header, signature header and bytes.
#[derive(Clone, Debug)]
struct Received {
    event_id: String,
    signature: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The receiver's state: what it received, and the statuses it answers next (200 once
/// they run out).
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    receiver.received.lock().unwrap().push(Received {
        event_id: header("Tally-Event-Id"),
        signature: header("Tally-Signature"),
        body: body.to_vec(),
    });
    let mut answers = receiver.answers.lock().unwrap();
    let status = if answers.is_empty() {
        200
    } else {
        answers.remove(0)
    };
    StatusCode::from_u16(status).unwrap()
}

/// A receiver on a free port: its URL and state.
async fn receiver() -> (String, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/tally-events", listener.local_addr().unwrap());
    let receiver = Receiver::default();
    let router = axum::Router::new()
        .route("/tally-events", axum::routing::post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, receiver)
}

struct Merchant {
    app: TestApp,
    writer: String,
    reader: String,
    operator: String,
    token: String,
    url: String,
    receiver: Receiver,
}

support::deref_to_app!(Merchant);

fn amount(value: &str) -> Value {
    json!({ "value": value, "currency": "CNY" })
}

impl Merchant {
    async fn new(test: TestDatabase) -> Self {
        Merchant::serving(
            test,
            Setup::default().payments().privacy(support::privacy()),
        )
        .await
    }

    /// A Tally configured without privacy keys.
    async fn without_privacy_keys(test: TestDatabase) -> Self {
        Merchant::serving(test, Setup::default().payments()).await
    }

    async fn serving(test: TestDatabase, setup: Setup) -> Self {
        let (url, receiver) = receiver().await;
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let writer = app.key("shop", &["payments:write", "payments:read"]).await;
        let reader = app.key("reader", &["payments:read"]).await;
        let operator = app.key("operator", &["admin"]).await;
        let card = app
            .bank
            .clone()
            .unwrap()
            .register_card(
                "4242424242424242",
                "12/30",
                Amount::parse("1000.00", Currency::CNY).unwrap(),
            )
            .await
            .unwrap();
        let merchant = Merchant {
            app,
            writer,
            reader,
            operator,
            token: card.token.as_str().to_string(),
            url,
            receiver,
        };
        let (status, body) = merchant
            .post(
                "/v1/payments/cards",
                None,
                json!({"customer": "c1", "card_token": merchant.token}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        merchant
    }

    async fn post(&self, uri: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.writer, key, Some(body)).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, &self.reader, None, None).await
    }

    /// Registers an endpoint of `merchant` for `events` at the receiver: its id and secret.
    async fn endpoint(&self, key: &str, merchant: &str, events: &[&str]) -> (String, String) {
        let (status, body) = self
            .post(
                "/v1/payments/webhook-endpoints",
                Some(key),
                json!({"merchant_id": merchant, "url": self.url, "events": events}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        )
    }

    /// A card payment of merchant `m1`, captured at once: its id.
    async fn pay(&self, key: &str, total: &str) -> String {
        let order = json!({
            "merchant_id": "m1",
            "order_reference": key,
            "customer": "c1",
            "amount": amount(total),
            "fundings": [{"kind": "card", "card_token": self.token}],
        });
        let (status, body) = self
            .post("/v1/payments", Some(&format!("{key}:create")), order)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        let (status, body) = self
            .post(
                &format!("/v1/payments/{id}/confirm"),
                Some(&format!("{key}:confirm")),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "captured");
        id
    }

    /// One pass of the delivery worker at `now`.
    async fn deliver(&self, now: Timestamp) -> DeliveryReport {
        self.payments
            .as_ref()
            .unwrap()
            .deliver_webhooks(now, 100)
            .await
            .unwrap()
    }

    fn received(&self) -> Vec<Received> {
        self.receiver.received.lock().unwrap().clone()
    }
}

/// Checks a delivery's signature as a receiver would: the signed time from the header, the
/// HMAC-SHA256 of `"<t>.<body>"` under the endpoint's secret.
fn assert_signed(received: &Received, secret: &str) {
    let signed_at: i64 = received
        .signature
        .split(',')
        .find_map(|part| part.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    let expected = tally_channel::signature_header(
        secret.as_bytes(),
        Timestamp::from_second(signed_at).unwrap(),
        &received.body,
    );
    assert_eq!(received.signature, expected);
    assert_ne!(
        received.signature,
        tally_channel::signature_header(
            b"another secret",
            Timestamp::from_second(signed_at).unwrap(),
            &received.body
        )
    );
}

tally_store::on_both_backends!(
    setup = Merchant::new;
    every_change_reaches_the_endpoints_that_want_it_signed,
    a_refusing_receiver_gets_the_event_again_after_growing_waits,
    an_unreachable_receiver_is_logged_and_given_up_in_the_end,
    a_dead_endpoint_holds_back_only_its_own_deliveries,
    refusals_name_what_is_wrong,
    an_https_endpoint_is_reached_over_tls_and_its_certificate_checked,
    events_done_with_are_removed_after_the_retention_and_no_sooner,
    every_merchants_view_at_once_needs_admin,
    secrets_are_kept_sealed_and_those_kept_in_clear_are_sealed_at_start,
);

tally_store::on_both_backends!(
    setup = Merchant::without_privacy_keys;
    without_privacy_keys_no_endpoint_is_registered,
);

async fn every_change_reaches_the_endpoints_that_want_it_signed(merchant: Merchant) {
    let wanted = [
        "payment.created",
        "payment.authorized",
        "payment.captured",
        "payment.refunded",
        "refund.succeeded",
    ];
    let (endpoint, secret) = merchant.endpoint("endpoint-1", "m1", &wanted).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    // Another merchant's endpoint gets none of m1's events.
    let (other, _) = merchant
        .endpoint("endpoint-2", "m2", &["payment.created"])
        .await;

    let id = merchant.pay("order-1", "120.00").await;
    let (status, body) = merchant
        .post(
            &format!("/v1/payments/{id}/refunds"),
            Some("refund-1"),
            json!({"amount": amount("120.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "refunded");

    let now = merchant.clock.now();
    let report = merchant.deliver(now).await;
    assert_eq!(report.attempted, 5, "{report:?}");
    assert_eq!(report.delivered, 5, "{report:?}");
    let received = merchant.received();
    let kinds: Vec<String> = received
        .iter()
        .map(|received| received.json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "payment.created",
            "payment.authorized",
            "payment.captured",
            "payment.refunded",
            "refund.succeeded"
        ]
    );
    for delivery in &received {
        assert_signed(delivery, &secret);
        let body = delivery.json();
        assert_eq!(body["id"], delivery.event_id.as_str());
        assert!(delivery.event_id.starts_with("evt_"));
        assert_eq!(body["data"]["payment"]["id"], id.as_str());
    }
    let refunded = received.last().unwrap().json();
    assert_eq!(
        refunded["data"]["refund_id"],
        refunded["data"]["payment"]["refunds"][0]["id"]
    );
    // Each event shows the payment as it stood when its change was stored.
    assert_eq!(received[2].json()["data"]["payment"]["status"], "captured");
    assert_eq!(received[3].json()["data"]["payment"]["status"], "refunded");

    // Nothing is due any more: a second pass sends nothing.
    let report = merchant.deliver(now + SignedDuration::from_hours(2)).await;
    assert_eq!((report.attempted, report.fanned_out), (0, 0), "{report:?}");
    assert_eq!(merchant.received().len(), 5);

    // The delivery log, by endpoint and by event.
    let (status, log) = merchant
        .get(&format!(
            "/v1/payments/webhook-deliveries?endpoint={endpoint}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 5);
    for delivery in deliveries {
        assert_eq!(delivery["status"], "delivered");
        assert_eq!(delivery["payment_id"], id.as_str());
        assert_eq!(
            delivery["attempts"],
            json!([{"attempt": 1, "attempted_at": now.to_string(), "status_code": 200}])
        );
    }
    let event = &received[0].event_id;
    let (status, log) = merchant
        .get(&format!("/v1/payments/webhook-deliveries?event={event}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(log["deliveries"][0]["event_type"], "payment.created");
    assert_eq!(log["deliveries"][0]["endpoint_id"], endpoint.as_str());
    let (status, log) = merchant
        .get(&format!("/v1/payments/webhook-deliveries?endpoint={other}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log, json!({"deliveries": []}));

    // The list shows the endpoints without their secrets.
    let (status, list) = merchant
        .get("/v1/payments/webhook-endpoints?merchant_id=m1")
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list["endpoints"],
        json!([{
            "created_at": now.to_string(),
            "events": ["payment.authorized", "payment.captured", "payment.created", "payment.refunded", "refund.succeeded"],
            "id": endpoint,
            "merchant_id": "m1",
            "url": merchant.url,
        }])
    );
}

async fn a_refusing_receiver_gets_the_event_again_after_growing_waits(merchant: Merchant) {
    let (endpoint, secret) = merchant
        .endpoint("endpoint-1", "m1", &["payment.captured"])
        .await;
    merchant.receiver.answers.lock().unwrap().extend([500, 503]);
    let id = merchant.pay("order-1", "80.00").await;
    let start = merchant.clock.now();
    let at = |seconds: i64| start + SignedDuration::from_secs(seconds);

    let report = merchant.deliver(at(0)).await;
    assert_eq!((report.attempted, report.retrying), (1, 1), "{report:?}");
    // Not due again before its wait is over: 1 s, then 2 s.
    assert_eq!(merchant.deliver(at(0)).await.attempted, 0);
    let report = merchant.deliver(at(1)).await;
    assert_eq!((report.attempted, report.retrying), (1, 1), "{report:?}");
    assert_eq!(merchant.deliver(at(2)).await.attempted, 0);
    let report = merchant.deliver(at(3)).await;
    assert_eq!((report.attempted, report.delivered), (1, 1), "{report:?}");
    assert_eq!(merchant.deliver(at(3600)).await.attempted, 0);

    // The same event, the same body, each time: the receiver deduplicates by its id.
    let received = merchant.received();
    assert_eq!(received.len(), 3);
    for delivery in &received {
        assert_eq!(delivery.event_id, received[0].event_id);
        assert_eq!(delivery.body, received[0].body);
        assert_signed(delivery, &secret);
    }
    assert_eq!(received[0].json()["data"]["payment"]["id"], id.as_str());

    let (status, log) = merchant
        .get(&format!(
            "/v1/payments/webhook-deliveries?endpoint={endpoint}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(
        log["deliveries"],
        json!([{
            "attempts": [
                {"attempt": 1, "attempted_at": at(0).to_string(), "status_code": 500},
                {"attempt": 2, "attempted_at": at(1).to_string(), "status_code": 503},
                {"attempt": 3, "attempted_at": at(3).to_string(), "status_code": 200},
            ],
            "endpoint_id": endpoint,
            "event_id": received[0].event_id,
            "event_type": "payment.captured",
            "payment_id": id,
            "status": "delivered",
        }])
    );
}

async fn an_unreachable_receiver_is_logged_and_given_up_in_the_end(merchant: Merchant) {
    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (status, body) = merchant
        .post(
            "/v1/payments/webhook-endpoints",
            Some("endpoint-1"),
            json!({"merchant_id": "m1", "url": format!("http://{closed}/"), "events": ["payment.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let endpoint = body["id"].as_str().unwrap().to_string();
    merchant.pay("order-1", "10.00").await;
    let mut at = merchant.clock.now();
    let mut waits = Vec::new();
    for attempt in 1..=tally_service::payments::webhooks::ATTEMPTS_MAX {
        let report = merchant.deliver(at).await;
        assert_eq!(report.attempted, 1, "attempt {attempt}: {report:?}");
        let (_, log) = merchant
            .get(&format!(
                "/v1/payments/webhook-deliveries?endpoint={endpoint}"
            ))
            .await;
        let delivery = &log["deliveries"][0];
        assert_eq!(
            delivery["attempts"].as_array().unwrap().len() as i64,
            attempt
        );
        let last = &delivery["attempts"][attempt as usize - 1];
        assert!(last["error"].is_string(), "{last}");
        assert!(last.get("status_code").is_none(), "{last}");
        match delivery["next_attempt_at"].as_str() {
            Some(next) => {
                let next: Timestamp = next.parse().unwrap();
                waits.push(next.duration_since(at).as_secs());
                at = next;
            }
            None => {
                assert_eq!(attempt, tally_service::payments::webhooks::ATTEMPTS_MAX);
                assert_eq!(delivery["status"], "failed");
            }
        }
    }
    assert_eq!(
        waits,
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600, 3600]
    );
    let report = merchant.deliver(at + SignedDuration::from_hours(24)).await;
    assert_eq!(report.attempted, 0, "{report:?}");
}

async fn a_dead_endpoint_holds_back_only_its_own_deliveries(merchant: Merchant) {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let events = ["payment.created", "payment.authorized", "payment.captured"];
    let (status, body) = merchant
        .post(
            "/v1/payments/webhook-endpoints",
            Some("dead"),
            json!({"merchant_id": "m1", "url": format!("http://{closed}/"), "events": events}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let dead = body["id"].as_str().unwrap().to_string();
    merchant.endpoint("alive", "m1", &events).await;
    merchant.pay("order-1", "10.00").await;

    let report = merchant.deliver(merchant.clock.now()).await;
    assert_eq!(
        (report.attempted, report.delivered, report.retrying),
        (4, 3, 1),
        "{report:?}"
    );
    assert_eq!(merchant.received().len(), 3);
    let (_, log) = merchant
        .get(&format!("/v1/payments/webhook-deliveries?endpoint={dead}"))
        .await;
    let attempts: Vec<usize> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| {
            assert_eq!(delivery["status"], "pending");
            delivery["attempts"].as_array().unwrap().len()
        })
        .collect();
    // Newest event first: only the oldest was tried.
    assert_eq!(attempts, [0, 0, 1]);
}

async fn refusals_name_what_is_wrong(merchant: Merchant) {
    let create = |key: &'static str, body: Value| {
        let merchant = &merchant;
        async move {
            merchant
                .post("/v1/payments/webhook-endpoints", Some(key), body)
                .await
        }
    };
    let endpoint =
        |url: &str, events: Value| json!({"merchant_id": "m1", "url": url, "events": events});
    for url in [
        "not a url",
        "ftp://shop.example/hooks",
        "/hooks",
        "https://user:secret@shop.example/hooks",
    ] {
        let (status, body) = create("bad-url", endpoint(url, json!(["payment.created"]))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(code(&body), "invalid_webhook_url", "{url}");
    }
    for events in [json!([]), json!(["payment.created", "payment.teleported"])] {
        let (status, body) = create("bad-events", endpoint(&merchant.url, events)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(code(&body), "invalid_webhook_events");
    }
    let (status, body) = create(
        "blank",
        json!({"merchant_id": " ", "url": merchant.url, "events": ["payment.created"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code(&body), "invalid_request");
    assert_eq!(
        merchant
            .scalar("SELECT COUNT(*) FROM webhook_endpoints")
            .await,
        0
    );

    // A retry answers the same endpoint and secret; the key with another request is refused.
    let first = create(
        "endpoint-1",
        endpoint(&merchant.url, json!(["payment.created"])),
    )
    .await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    let again = create(
        "endpoint-1",
        endpoint(&merchant.url, json!(["payment.created"])),
    )
    .await;
    assert_eq!(again, first);
    let (status, body) = create(
        "endpoint-1",
        endpoint(&merchant.url, json!(["payment.captured"])),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code(&body), "idempotency_key_reused");
    // Only a key that may write payments registers one.
    let (status, body) = merchant
        .call(
            "POST",
            "/v1/payments/webhook-endpoints",
            &merchant.reader,
            Some("endpoint-2"),
            Some(endpoint(&merchant.url, json!(["payment.created"]))),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        merchant
            .scalar("SELECT COUNT(*) FROM webhook_endpoints")
            .await,
        1
    );

    let (status, body) = merchant
        .get("/v1/payments/webhook-deliveries?endpoint=we_nobody")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), "webhook_endpoint_not_found");
    let (status, body) = merchant
        .get("/v1/payments/webhook-deliveries?event=evt_nothing")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), "webhook_event_not_found");
    let (status, body) = merchant
        .call(
            "GET",
            "/v1/payments/webhook-deliveries",
            &merchant.operator,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"deliveries": []}));
}

/// A TLS receiver on a free port of `localhost`, its certificate self-signed (so signed by
/// no root Tally trusts): its URL, and how many TLS handshakes it saw refused by the client.
async fn tls_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio_rustls::rustls;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        certified.key_pair.serialize_der(),
    ));
    // The process's provider: ring, the only one the workspace's rustls is built with.
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(Mutex::new(Vec::new()));
    let seen = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let outcome = match acceptor.accept(stream).await {
                Ok(_) => "completed".to_string(),
                Err(error) => error.to_string(),
            };
            seen.lock().unwrap().push(outcome);
        }
    });
    (format!("https://localhost:{port}/tally-events"), handshakes)
}

async fn an_https_endpoint_is_reached_over_tls_and_its_certificate_checked(merchant: Merchant) {
    let (url, handshakes) = tls_receiver().await;
    let (status, body) = merchant
        .post(
            "/v1/payments/webhook-endpoints",
            Some("tls"),
            json!({"merchant_id": "m1", "url": url, "events": ["payment.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let endpoint = body["id"].as_str().unwrap().to_string();
    merchant.pay("order-1", "10.00").await;
    let report = merchant.deliver(merchant.clock.now()).await;
    assert_eq!((report.attempted, report.retrying), (1, 1), "{report:?}");
    // The client spoke TLS, and refused the receiver's certificate: signed by no root it
    // trusts. It did not fail for want of TLS.
    // The receiver's side of the handshake ends a moment after the client's.
    let mut waited = 0;
    while handshakes.lock().unwrap().is_empty() && waited < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let handshakes = handshakes.lock().unwrap().clone();
    assert_eq!(handshakes.len(), 1, "{handshakes:?}");
    assert!(
        handshakes[0].contains("alert") && handshakes[0].contains("UnknownCA"),
        "{handshakes:?}"
    );
    let (status, log) = merchant
        .get(&format!(
            "/v1/payments/webhook-deliveries?endpoint={endpoint}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let error = log["deliveries"][0]["attempts"][0]["error"]
        .as_str()
        .unwrap();
    assert!(
        error.contains("invalid peer certificate") && error.contains("UnknownIssuer"),
        "{error}"
    );
    assert_eq!(log["deliveries"][0]["status"], "pending");
}

async fn events_done_with_are_removed_after_the_retention_and_no_sooner(merchant: Merchant) {
    let payments = merchant.payments.clone().unwrap();
    let (endpoint, _) = merchant
        .endpoint("endpoint-1", "m1", &["payment.created", "payment.captured"])
        .await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (status, body) = merchant
        .post(
            "/v1/payments/webhook-endpoints",
            Some("dead"),
            json!({"merchant_id": "m2", "url": format!("http://{closed}/"), "events": ["payment.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let dead = body["id"].as_str().unwrap().to_string();
    let start = merchant.clock.now();
    merchant.pay("order-1", "10.00").await;
    let delivered = merchant.deliver(start).await;
    assert_eq!(delivered.delivered, 2, "{delivered:?}");
    // m2's payment: its event stays pending at the dead endpoint.
    let order = json!({
        "merchant_id": "m2",
        "order_reference": "order-2",
        "customer": "c1",
        "amount": amount("5.00"),
        "fundings": [{"kind": "card", "card_token": merchant.token}],
    });
    let (status, body) = merchant
        .post("/v1/payments", Some("order-2:create"), order)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(merchant.deliver(start).await.retrying, 1);
    let events = merchant.scalar("SELECT COUNT(*) FROM payment_events").await;
    assert!(events >= 3, "{events}");
    let retention = SignedDuration::from_hours(24 * 30);
    let day = SignedDuration::from_hours(24);

    // A day short of the retention: nothing goes, the log lists both deliveries.
    let removed = payments
        .prune_webhook_events(start + retention - day, retention, 1000)
        .await
        .unwrap();
    assert_eq!(removed, 0);
    let (_, log) = merchant
        .get(&format!(
            "/v1/payments/webhook-deliveries?endpoint={endpoint}"
        ))
        .await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 2, "{log}");
    let event = log["deliveries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Past the retention: every event done with goes, its deliveries and attempts too, a
    // batch at a time; the event still being sent to m2's dead endpoint stays.
    let later = start + retention + day;
    assert_eq!(
        payments
            .prune_webhook_events(later, retention, 1)
            .await
            .unwrap(),
        1
    );
    let removed = payments
        .prune_webhook_events(later, retention, 1000)
        .await
        .unwrap();
    assert_eq!(removed, u64::try_from(events).unwrap() - 2);
    assert_eq!(
        merchant.scalar("SELECT COUNT(*) FROM payment_events").await,
        1
    );
    assert_eq!(
        merchant
            .scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status <> 'pending'")
            .await,
        0
    );
    let (status, log) = merchant
        .get(&format!(
            "/v1/payments/webhook-deliveries?endpoint={endpoint}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log, json!({"deliveries": []}));
    let (status, body) = merchant
        .get(&format!("/v1/payments/webhook-deliveries?event={event}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), "webhook_event_not_found");
    let (_, log) = merchant
        .get(&format!("/v1/payments/webhook-deliveries?endpoint={dead}"))
        .await;
    assert_eq!(log["deliveries"][0]["status"], "pending", "{log}");
    assert_eq!(
        merchant
            .scalar("SELECT COUNT(*) FROM webhook_attempts")
            .await,
        1
    );
}

async fn every_merchants_view_at_once_needs_admin(merchant: Merchant) {
    merchant
        .endpoint("endpoint-1", "m1", &["payment.created"])
        .await;
    merchant
        .endpoint("endpoint-2", "m2", &["payment.created"])
        .await;
    for uri in [
        "/v1/payments/webhook-endpoints",
        "/v1/payments/webhook-deliveries",
    ] {
        let (status, body) = merchant.get(uri).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
        assert_eq!(code(&body), "cross_merchant_view_needs_admin", "{uri}");
    }
    let (status, body) = merchant
        .get("/v1/payments/webhook-endpoints?merchant_id=m1")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["endpoints"].as_array().unwrap().len(), 1);
    let (status, body) = merchant
        .call(
            "GET",
            "/v1/payments/webhook-endpoints",
            &merchant.operator,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["endpoints"].as_array().unwrap().len(), 2);
}

async fn secrets_are_kept_sealed_and_those_kept_in_clear_are_sealed_at_start(merchant: Merchant) {
    let payments = merchant.payments.clone().unwrap();
    let (endpoint, secret) = merchant
        .endpoint("endpoint-1", "m1", &["payment.created"])
        .await;
    let stored = |id: String| {
        let merchant = &merchant;
        async move {
            tally_store::with_pool!(&merchant.database, |pool| {
                sqlx::query_as::<_, (String, i64)>(
                    "SELECT secret, secret_sealed FROM webhook_endpoints WHERE id = $1",
                )
                .bind(&id)
                .fetch_one(pool)
                .await
                .unwrap()
            })
        }
    };
    let (text, sealed) = stored(endpoint.clone()).await;
    assert_eq!(sealed, 1);
    assert!(text.starts_with("v1:a:"), "{text}");
    assert!(!text.contains(&secret[6..]), "{text}");
    // Opened only with the endpoint's own associated data.
    let privacy = support::privacy();
    let field = tally_service::payments::webhooks::sealed_secret_field(&endpoint);
    assert_eq!(
        privacy.cipher.decrypt(&field, &text).unwrap().expose(),
        &secret
    );
    assert!(privacy
        .cipher
        .decrypt(&field.replace("we_", "we_x"), &text)
        .is_err());
    // A retry of the creation answers the same secret, opened.
    let (status, again) = merchant
        .post(
            "/v1/payments/webhook-endpoints",
            Some("endpoint-1"),
            json!({"merchant_id": "m1", "url": merchant.url, "events": ["payment.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["secret"], secret.as_str());

    // An endpoint stored before secrets were sealed, as the migration leaves it: in clear.
    let before = merchant.clock.now().as_microsecond() - 1;
    let legacy_secret = "whsec_00112233445566778899aabbccddeeff";
    merchant
        .execute(&format!(
            "INSERT INTO webhook_endpoints (id, merchant_id, url, events, secret, request_hash, \
             created_at) VALUES ('we_legacy', 'm1', '{}', '[\"payment.created\"]', \
             '{legacy_secret}', 'legacy', {before})",
            merchant.url
        ))
        .await
        .unwrap();
    assert_eq!(
        stored("we_legacy".into()).await,
        (legacy_secret.to_string(), 0)
    );
    assert_eq!(payments.seal_webhook_secrets().await.unwrap(), 1);
    assert_eq!(payments.seal_webhook_secrets().await.unwrap(), 0);
    let (text, sealed) = stored("we_legacy".into()).await;
    assert_eq!(sealed, 1);
    assert!(text.starts_with("v1:a:"), "{text}");

    // Both endpoints' deliveries are signed with the secret their merchant was given.
    merchant.pay("order-1", "10.00").await;
    let report = merchant.deliver(merchant.clock.now()).await;
    assert_eq!(report.delivered, 2, "{report:?}");
    let mut received = merchant.received();
    received.sort_by(|first, second| first.signature.cmp(&second.signature));
    let verifies = |delivery: &Received, key: &str| {
        let signed_at: i64 = delivery
            .signature
            .split(',')
            .find_map(|part| part.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        tally_channel::signature_header(
            key.as_bytes(),
            Timestamp::from_second(signed_at).unwrap(),
            &delivery.body,
        ) == delivery.signature
    };
    let by_new = received.iter().filter(|d| verifies(d, &secret)).count();
    let by_legacy = received
        .iter()
        .filter(|d| verifies(d, legacy_secret))
        .count();
    assert_eq!((by_new, by_legacy), (1, 1));

    // `tally privacy reseal` moves both secrets to a new active key (compare and set), so a
    // service with the new key alone opens them; run again, it changes nothing.
    let rotated = support::privacy_keys(&[("a", 7), ("b", 8)], "b");
    let report = tally_service::key_rotation::reseal_customers(&merchant.database, &rotated, 1)
        .await
        .unwrap();
    assert_eq!(
        (report.webhook_secrets, report.webhook_secrets_resealed),
        (2, 2)
    );
    let only_new = support::privacy_keys(&[("b", 8)], "b");
    for (id, expected) in [
        (endpoint.clone(), secret.as_str()),
        ("we_legacy".into(), legacy_secret),
    ] {
        let (text, sealed) = stored(id.clone()).await;
        assert_eq!(sealed, 1);
        assert!(text.starts_with("v1:b:"), "{text}");
        let field = tally_service::payments::webhooks::sealed_secret_field(&id);
        assert_eq!(
            only_new.cipher.decrypt(&field, &text).unwrap().expose(),
            expected
        );
    }
    let again = tally_service::key_rotation::reseal_customers(&merchant.database, &rotated, 1)
        .await
        .unwrap();
    assert_eq!(
        (again.webhook_secrets, again.webhook_secrets_resealed),
        (2, 0)
    );
}

async fn without_privacy_keys_no_endpoint_is_registered(merchant: Merchant) {
    let (status, body) = merchant
        .post(
            "/v1/payments/webhook-endpoints",
            Some("endpoint-1"),
            json!({"merchant_id": "m1", "url": merchant.url, "events": ["payment.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(code(&body), "privacy_keys_not_configured");
    assert_eq!(
        merchant
            .scalar("SELECT COUNT(*) FROM webhook_endpoints")
            .await,
        0
    );
}
