//! The payment service on SQLite and PostgreSQL: a combined payment over the wallet and the
//! credit line captured whole; a source that refuses fails the payment and releases every
//! other source; partial capture, cancellation, expiry and refunds; refusals that change
//! nothing; and answers lost after the ledger acted, finished by recovery without moving
//! money twice. After every story the books balance and each source shows exactly what the
//! payment says it gave.
#![allow(clippy::unwrap_used)]

use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use tally_channel::simulator::{FaultsUpdate, PartsPerMillion, SimulatorControl};
use tally_channel::CardToken;
use tally_core::{AccountId, Amount, Clock, Currency, ManualClock};
use tally_payments::{CaptureMethod, Funding, RefundPolicy, Share, Source};
use tally_service::credit::decision::CreditService;
use tally_service::payments::accounts::Balance;
use tally_service::payments::merchants::testing::onboard_test_merchants;
use tally_service::payments::{
    ConfirmInput, CreatePayment, PaymentService, PaymentServiceError, PaymentView, PaymentsConfig,
};
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;

use support::CUSTOMER;

fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

fn now() -> Timestamp {
    "2026-03-01T08:00:00Z".parse().unwrap()
}

struct Shop {
    _test: TestDatabase,
    database: Database,
    payments: PaymentService,
    credit: Arc<CreditService>,
    credit_account: i64,
    /// The bank simulator, in this process on its own port, and its control client.
    bank: SimulatorControl,
}

impl Shop {
    async fn open(test: TestDatabase) -> Shop {
        let database = test.database.clone();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now()));
        let (writer, credit) = support::credit_service(&database, clock).await;
        let credit_account = support::open_credit_line(&credit, cny("5000.00"), now()).await;
        // Answers the bank loses arrive 1.5 s late, well after the channel's 300 ms timeout.
        let (url, bank) = support::bank(1_500).await;
        let channel = support::channel(url, std::time::Duration::from_millis(300));
        let payments = PaymentService::new(
            database.clone(),
            writer,
            Some(credit.clone()),
            Some(channel),
            PaymentsConfig::default(),
        );
        onboard_test_merchants(&payments, &["merchant-1"], Currency::CNY, now())
            .await
            .unwrap();
        Shop {
            _test: test,
            database,
            payments,
            credit,
            credit_account,
            bank,
        }
    }

    /// Registers a card with the bank and saves its token for the customer.
    async fn card(&self, balance: &str) -> CardToken {
        let card = self
            .bank
            .register_card("4242424242424242", "12/30", cny(balance))
            .await
            .unwrap();
        self.payments
            .save_card(CUSTOMER, card.token.as_str(), now())
            .await
            .unwrap();
        card.token
    }

    /// The bank's view of a card: available, held, captured, refunded.
    async fn card_at_bank(&self, token: &CardToken) -> [String; 4] {
        let view = self.bank.card(token).await.unwrap();
        [view.available, view.held, view.captured, view.refunded]
    }

    /// Puts `amount` in the customer's wallet, as a top-up through the channel would.
    async fn top_up(&self, amount: &str) -> AccountId {
        support::fund(
            &self.payments,
            Balance::Wallet,
            cny(amount),
            format!("payments-test-top-up:{amount}"),
            "top-up",
        )
        .await
    }

    async fn wallet(&self, open: bool) -> Option<AccountId> {
        self.payments
            .accounts()
            .balance(
                self.payments.database(),
                self.payments.writer(),
                Balance::Wallet,
                CUSTOMER,
                Currency::CNY,
                open,
            )
            .await
            .unwrap()
    }

    /// What the wallet holds: posted balance and the part of it held.
    async fn wallet_balance(&self) -> (i64, i64) {
        let wallet = self.wallet(false).await.unwrap();
        let state = self.database.account(wallet).await.unwrap().unwrap();
        let balance = state.balance;
        (
            balance.credits_posted - balance.debits_posted,
            balance.debits_pending,
        )
    }

    async fn available_credit(&self) -> Amount {
        let stored = self
            .credit
            .operations
            .load(self.credit_account)
            .await
            .unwrap();
        stored
            .account
            .available_credit(now().to_zoned(jiff::tz::TimeZone::UTC).date())
    }

    fn combined(&self, amount: &str, wallet: &str, capture: CaptureMethod) -> CreatePayment {
        CreatePayment {
            merchant_id: "merchant-1".into(),
            order_reference: "order-1".into(),
            customer: CUSTOMER.into(),
            amount: cny(amount),
            expires_at: None,
            capture_method: capture,
            fundings: vec![
                Funding {
                    source: Source::Wallet,
                    share: Share::Fixed(cny(wallet)),
                },
                Funding {
                    source: Source::CreditLine {
                        account: self.credit_account,
                        term: 3,
                    },
                    share: Share::Rest,
                },
            ],
        }
    }

    /// Every currency's debits equal its credits, posted and pending.
    async fn assert_books_balance(&self) {
        for totals in self.database.currency_totals().await.unwrap() {
            assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
            assert_eq!(totals.debits_pending, totals.credits_pending, "{totals:?}");
        }
    }
}

async fn on_both_backends<F, Fut>(story: F)
where
    F: Fn(Shop) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    story(Shop::open(TestDatabase::sqlite().await.unwrap()).await).await;
    if let Some(test) = TestDatabase::postgres().await {
        story(Shop::open(test).await).await;
    }
}

fn leg_status(view: &PaymentView) -> Vec<(&str, &str, &str)> {
    view.legs
        .iter()
        .map(|leg| {
            (
                leg.kind.as_str(),
                leg.status.as_str(),
                leg.captured.value.as_str(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_combined_payment_is_captured_whole_from_every_source() {
    on_both_backends(|shop| async move {
        shop.top_up("100.00").await;
        let created = shop
            .payments
            .create(
                "k:create",
                shop.combined("250.00", "40.00", CaptureMethod::Automatic),
                now(),
            )
            .await
            .unwrap();
        assert_eq!(created.status, "created");
        let paid = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap();
        assert_eq!(paid.status, "captured");
        assert_eq!(
            leg_status(&paid),
            vec![
                ("wallet", "captured", "40.00"),
                ("credit_line", "captured", "210.00")
            ]
        );
        assert!(paid.legs[1].credit_plan_id.is_some());
        assert_eq!(shop.wallet_balance().await, (6_000, 0));
        assert_eq!(shop.available_credit().await, cny("4790.00"));
        // The same confirm again answers the same, and moves nothing.
        let again = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap();
        assert_eq!(again, paid);
        assert_eq!(shop.wallet_balance().await, (6_000, 0));
        shop.assert_books_balance().await;
    })
    .await;
}

#[tokio::test]
async fn a_source_that_refuses_fails_the_payment_and_releases_the_others() {
    on_both_backends(|shop| async move {
        shop.top_up("10.00").await;
        // The credit line is reserved first, then the wallet refuses: 30.00 is more than it holds.
        let mut request = shop.combined("100.00", "30.00", CaptureMethod::Automatic);
        request.fundings.reverse();
        let created = shop
            .payments
            .create("k:create", request, now())
            .await
            .unwrap();
        let error = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap_err();
        let PaymentServiceError::Declined { code, payment, .. } = &error else {
            panic!("expected a decline, got {error:?}");
        };
        assert_eq!(code, "insufficient_balance");
        assert_eq!(payment.status, "failed");
        assert_eq!(
            leg_status(payment),
            vec![
                ("credit_line", "released", "0.00"),
                ("wallet", "failed", "0.00")
            ]
        );
        // Nothing was taken from anyone.
        assert_eq!(shop.wallet_balance().await, (1_000, 0));
        assert_eq!(shop.available_credit().await, cny("5000.00"));
        // The same request answers the same decline; a new one is told the payment failed.
        let replay = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap_err();
        assert_eq!(replay.code(), "insufficient_balance");
        let again = shop
            .payments
            .confirm("k:confirm-2", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap_err();
        assert_eq!(again.code(), "insufficient_balance");
        shop.assert_books_balance().await;
    })
    .await;
}

#[tokio::test]
async fn a_partial_capture_takes_each_source_pro_rata_and_refunds_go_back_by_policy() {
    on_both_backends(|shop| async move {
        shop.top_up("100.00").await;
        let created = shop
            .payments
            .create(
                "k:create",
                shop.combined("100.00", "40.00", CaptureMethod::Manual),
                now(),
            )
            .await
            .unwrap();
        let authorized = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap();
        assert_eq!(authorized.status, "authorized");
        assert_eq!(shop.wallet_balance().await, (10_000, 4_000));
        let captured = shop
            .payments
            .capture("k:capture", &created.id, Some(cny("50.01")), now())
            .await
            .unwrap();
        assert_eq!(captured.status, "partially_captured");
        // 40 : 60 of 50.01 is 20.004 : 30.006; the left-over fen goes to the larger remainder.
        assert_eq!(
            leg_status(&captured),
            vec![
                ("wallet", "captured", "20.00"),
                ("credit_line", "captured", "30.01")
            ]
        );
        assert_eq!(shop.wallet_balance().await, (8_000, 0));
        assert_eq!(shop.available_credit().await, cny("4969.99"));
        // More than was paid is refused, and changes nothing.
        let refused = shop
            .payments
            .refund(
                "k:refund-too-much",
                &created.id,
                cny("50.02"),
                RefundPolicy::ProRata,
                now(),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "refund_exceeds_paid");
        // Reverse funding order: the credit line (listed last) first.
        let refunded = shop
            .payments
            .refund(
                "k:refund-1",
                &created.id,
                cny("35.00"),
                RefundPolicy::ReverseFunding,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(refunded.status, "partially_refunded");
        let parts: Vec<&str> = refunded.refunds[0]
            .parts
            .iter()
            .map(|part| part.value.as_str())
            .collect();
        assert_eq!(parts, vec!["4.99", "30.01"]);
        assert_eq!(refunded.refunds[0].status, "succeeded");
        assert_eq!(shop.wallet_balance().await, (8_499, 0));
        // A retry of the same refund is not a second refund.
        let again = shop
            .payments
            .refund(
                "k:refund-1",
                &created.id,
                cny("35.00"),
                RefundPolicy::ReverseFunding,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(again, refunded);
        let rest = shop
            .payments
            .refund(
                "k:refund-2",
                &created.id,
                cny("15.01"),
                RefundPolicy::ProRata,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(rest.status, "refunded");
        assert_eq!(shop.wallet_balance().await, (10_000, 0));
        shop.assert_books_balance().await;
    })
    .await;
}

#[tokio::test]
async fn cancelling_or_expiring_releases_every_reserved_source() {
    on_both_backends(|shop| async move {
        shop.top_up("100.00").await;
        let first = shop
            .payments
            .create(
                "k:create-1",
                shop.combined("100.00", "40.00", CaptureMethod::Manual),
                now(),
            )
            .await
            .unwrap();
        shop.payments
            .confirm("k:confirm-1", &first.id, ConfirmInput::default(), now())
            .await
            .unwrap();
        let cancelled = shop
            .payments
            .cancel("k:cancel-1", &first.id, now())
            .await
            .unwrap();
        assert_eq!(cancelled.status, "cancelled");
        assert_eq!(shop.wallet_balance().await, (10_000, 0));
        assert_eq!(shop.available_credit().await, cny("5000.00"));

        let second = shop
            .payments
            .create(
                "k:create-2",
                shop.combined("100.00", "40.00", CaptureMethod::Manual),
                now(),
            )
            .await
            .unwrap();
        shop.payments
            .confirm("k:confirm-2", &second.id, ConfirmInput::default(), now())
            .await
            .unwrap();
        assert_eq!(shop.wallet_balance().await, (10_000, 4_000));
        // Nothing happens before the deadline; after it, recovery expires the payment.
        let early = shop.payments.recover(now(), 100).await.unwrap();
        assert_eq!(early.examined, 0);
        let late = now() + SignedDuration::from_hours(24 * 8);
        let report = shop.payments.recover(late, 100).await.unwrap();
        assert_eq!((report.examined, report.settled), (1, 1));
        let expired = shop.payments.get(&second.id, late).await.unwrap();
        assert_eq!(expired.status, "expired");
        assert_eq!(shop.wallet_balance().await, (10_000, 0));
        assert_eq!(shop.available_credit().await, cny("5000.00"));
        // A capture after expiry is refused.
        let refused = shop
            .payments
            .capture("k:capture-2", &second.id, None, late)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "payment_expired");
        shop.assert_books_balance().await;
    })
    .await;
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    on_both_backends(|shop| async move {
        // No wallet yet.
        let unknown = shop
            .payments
            .create(
                "k:1",
                shop.combined("100.00", "40.00", CaptureMethod::Automatic),
                now(),
            )
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), "balance_not_found");
        shop.top_up("100.00").await;
        let mut short = shop.combined("100.00", "40.00", CaptureMethod::Automatic);
        short.fundings[1].share = Share::Fixed(cny("59.99"));
        let error = shop.payments.create("k:2", short, now()).await.unwrap_err();
        assert_eq!(error.code(), "fundings_do_not_sum");
        let mut foreign = shop.combined("100.00", "40.00", CaptureMethod::Automatic);
        foreign.customer = "shopper-2".into();
        let error = shop
            .payments
            .create("k:3", foreign, now())
            .await
            .unwrap_err();
        // Shopper 2 has no wallet: that is found first.
        assert_eq!(error.code(), "balance_not_found");
        let mut foreign_credit = shop.combined("100.00", "40.00", CaptureMethod::Automatic);
        foreign_credit.customer = "shopper-2".into();
        foreign_credit.fundings.remove(0);
        foreign_credit.fundings[0].share = Share::Rest;
        let error = shop
            .payments
            .create("k:4", foreign_credit, now())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "funding_foreign_source");
        let mut card = shop.combined("100.00", "40.00", CaptureMethod::Automatic);
        card.fundings[1].source = Source::Card {
            token: "tok_unknown".into(),
        };
        let error = shop.payments.create("k:5", card, now()).await.unwrap_err();
        assert_eq!(error.code(), "card_not_found");
        // One key for two requests.
        shop.payments
            .create(
                "k:6",
                shop.combined("100.00", "40.00", CaptureMethod::Manual),
                now(),
            )
            .await
            .unwrap();
        let reused = shop
            .payments
            .create(
                "k:6",
                shop.combined("100.00", "41.00", CaptureMethod::Manual),
                now(),
            )
            .await
            .unwrap_err();
        assert_eq!(reused.code(), "idempotency_key_reused");
        let missing = shop
            .payments
            .confirm("k:7", "pay_missing", ConfirmInput::default(), now())
            .await
            .unwrap_err();
        assert_eq!(missing.code(), "payment_not_found");
        assert_eq!(shop.wallet_balance().await, (10_000, 0));
        assert_eq!(shop.available_credit().await, cny("5000.00"));
        shop.assert_books_balance().await;
    })
    .await;
}

/// What a payment ended as, without its ids and times: compared between a run whose answers
/// all arrive and one where one answer is lost.
/// Status; per leg kind, status, captured and refunded; per refund its status.
type Outcome = (String, Vec<(String, String, String, String)>, Vec<String>);

fn outcome(view: &PaymentView) -> Outcome {
    (
        view.status.clone(),
        view.legs
            .iter()
            .map(|leg| {
                (
                    leg.kind.clone(),
                    leg.status.clone(),
                    leg.captured.value.clone(),
                    leg.refunded.value.clone(),
                )
            })
            .collect(),
        view.refunds
            .iter()
            .map(|refund| refund.status.clone())
            .collect(),
    )
}

/// One story: a combined payment confirmed, captured in part and refunded twice, with the
/// answer of step `lost` (if any) lost after it acted. Every request is retried with its
/// key until it answers (recovery runs between retries, as it does in the server).
async fn story_with_a_lost_answer(
    shop: &Shop,
    lost: Option<i64>,
) -> (PaymentView, (i64, i64), Amount, usize) {
    shop.top_up("100.00").await;
    if let Some(step) = lost {
        shop.payments.lose_answer_of_step(step);
    }
    let created = shop
        .payments
        .create(
            "k:create",
            shop.combined("100.00", "40.00", CaptureMethod::Manual),
            now(),
        )
        .await
        .unwrap();
    let id = created.id.clone();
    type Request<'a> = Box<
        dyn Fn() -> std::pin::Pin<
                Box<
                    dyn std::future::Future<Output = Result<PaymentView, PaymentServiceError>> + 'a,
                >,
            > + 'a,
    >;
    let requests: Vec<Request<'_>> = vec![
        Box::new(|| {
            Box::pin(
                shop.payments
                    .confirm("k:confirm", &id, ConfirmInput::default(), now()),
            )
        }),
        Box::new(|| {
            Box::pin(
                shop.payments
                    .capture("k:capture", &id, Some(cny("80.00")), now()),
            )
        }),
        Box::new(|| {
            Box::pin(shop.payments.refund(
                "k:refund-1",
                &id,
                cny("30.00"),
                RefundPolicy::CardLast,
                now(),
            ))
        }),
        Box::new(|| {
            Box::pin(shop.payments.refund(
                "k:refund-2",
                &id,
                cny("10.00"),
                RefundPolicy::ProRata,
                now(),
            ))
        }),
    ];
    let mut last = created;
    let mut in_flight = 0;
    for request in &requests {
        let mut attempts = 0;
        last = loop {
            attempts += 1;
            assert!(attempts < 4, "a request kept failing");
            match request().await {
                Ok(view) => break view,
                Err(PaymentServiceError::InFlight { .. }) => {
                    in_flight += 1;
                    shop.payments.recover(now(), 100).await.unwrap();
                }
                Err(error) => panic!("unexpected refusal {error:?}"),
            }
        };
    }
    shop.assert_books_balance().await;
    (
        last,
        shop.wallet_balance().await,
        shop.available_credit().await,
        in_flight,
    )
}

#[tokio::test]
async fn an_answer_lost_after_any_step_is_finished_once() {
    let reference = Shop::open(TestDatabase::sqlite().await.unwrap()).await;
    let (expected, expected_wallet, expected_credit, in_flight) =
        story_with_a_lost_answer(&reference, None).await;
    assert_eq!(in_flight, 0);
    assert_eq!(expected.status, "partially_refunded");
    // Steps: 2 reservations, 2 captures, 1 part of the first refund (30.00 from the credit
    // line, the last listed), 2 parts of the second (pro rata).
    for lost in 1..=7 {
        let backends = [
            Some(TestDatabase::sqlite().await.unwrap()),
            TestDatabase::postgres().await,
        ];
        for test in backends.into_iter().flatten() {
            let shop = Shop::open(test).await;
            let (view, wallet, credit, in_flight) =
                story_with_a_lost_answer(&shop, Some(lost)).await;
            assert_eq!(in_flight, 1, "the answer of step {lost} was not lost");
            assert_eq!(
                outcome(&view),
                outcome(&expected),
                "answer of step {lost} lost"
            );
            assert_eq!(wallet, expected_wallet, "answer of step {lost} lost");
            assert_eq!(credit, expected_credit, "answer of step {lost} lost");
        }
    }
}

/// A payment by wallet, credit line and card.
fn with_card(shop: &Shop, token: &CardToken, capture: CaptureMethod) -> CreatePayment {
    let mut request = shop.combined("300.00", "40.00", capture);
    request.fundings[1].share = Share::Fixed(cny("60.00"));
    request.fundings.push(Funding {
        source: Source::Card {
            token: token.as_str().to_string(),
        },
        share: Share::Rest,
    });
    request
}

#[tokio::test]
async fn a_card_pays_its_part_through_the_bank_and_gets_its_refund_back() {
    on_both_backends(|shop| async move {
        shop.top_up("100.00").await;
        let token = shop.card("1000.00").await;
        let created = shop
            .payments
            .create(
                "k:create",
                with_card(&shop, &token, CaptureMethod::Automatic),
                now(),
            )
            .await
            .unwrap();
        let paid = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap();
        assert_eq!(
            leg_status(&paid),
            vec![
                ("wallet", "captured", "40.00"),
                ("credit_line", "captured", "60.00"),
                ("card", "captured", "200.00")
            ]
        );
        assert_eq!(
            shop.card_at_bank(&token).await,
            ["800.00", "0.00", "200.00", "0.00"].map(String::from)
        );
        let refunded = shop
            .payments
            .refund(
                "k:refund",
                &created.id,
                cny("250.00"),
                RefundPolicy::ReverseFunding,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(refunded.status, "partially_refunded");
        assert_eq!(
            shop.card_at_bank(&token).await,
            ["1000.00", "0.00", "200.00", "200.00"].map(String::from)
        );
        shop.assert_books_balance().await;
    })
    .await;
}

#[tokio::test]
async fn a_declined_card_releases_the_wallet_and_the_credit_line() {
    on_both_backends(|shop| async move {
        shop.top_up("100.00").await;
        let token = shop.card("1000.00").await;
        shop.bank
            .set_faults(&FaultsUpdate {
                decline_rate_ppm: Some(PartsPerMillion::ALWAYS),
                ..FaultsUpdate::default()
            })
            .await
            .unwrap();
        let created = shop
            .payments
            .create(
                "k:create",
                with_card(&shop, &token, CaptureMethod::Automatic),
                now(),
            )
            .await
            .unwrap();
        let error = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "card_declined");
        let PaymentServiceError::Declined { payment, .. } = error else {
            panic!("a decline")
        };
        assert_eq!(
            leg_status(&payment),
            vec![
                ("wallet", "released", "0.00"),
                ("credit_line", "released", "0.00"),
                ("card", "failed", "0.00")
            ]
        );
        assert_eq!(shop.wallet_balance().await, (10_000, 0));
        assert_eq!(shop.available_credit().await, cny("5000.00"));
        assert_eq!(
            shop.card_at_bank(&token).await,
            ["1000.00", "0.00", "0.00", "0.00"].map(String::from)
        );
        // A card number in place of a token never reaches storage.
        let error = shop
            .payments
            .save_card(CUSTOMER, "4242424242424242", now())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "invalid_card_token");
        shop.assert_books_balance().await;
    })
    .await;
}

#[tokio::test]
async fn a_bank_answer_lost_in_a_timeout_never_charges_twice() {
    on_both_backends(|shop| async move {
        shop.top_up("100.00").await;
        let token = shop.card("1000.00").await;
        let created = shop
            .payments
            .create(
                "k:create",
                with_card(&shop, &token, CaptureMethod::Manual),
                now(),
            )
            .await
            .unwrap();
        // The bank authorises and the answer is lost.
        shop.bank
            .set_faults(&FaultsUpdate {
                timeout_rate_ppm: Some(PartsPerMillion::ALWAYS),
                ..FaultsUpdate::default()
            })
            .await
            .unwrap();
        let error = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "payment_in_flight");
        assert_eq!(shop.card_at_bank(&token).await[1], "200.00");
        shop.bank
            .set_faults(&FaultsUpdate {
                timeout_rate_ppm: Some(PartsPerMillion::NEVER),
                ..FaultsUpdate::default()
            })
            .await
            .unwrap();
        // The retry with the same key finishes it: the card is held once, not twice.
        let authorized = shop
            .payments
            .confirm("k:confirm", &created.id, ConfirmInput::default(), now())
            .await
            .unwrap();
        assert_eq!(authorized.status, "authorized");
        assert_eq!(
            shop.card_at_bank(&token).await,
            ["800.00", "200.00", "0.00", "0.00"].map(String::from)
        );
        // The bank is down during the capture: in flight, then finished by recovery.
        shop.bank.down().await.unwrap();
        let error = shop
            .payments
            .capture("k:capture", &created.id, None, now())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "payment_in_flight");
        shop.bank.up().await.unwrap();
        let report = shop.payments.recover(now(), 100).await.unwrap();
        assert_eq!(report.settled, 1);
        let captured = shop.payments.get(&created.id, now()).await.unwrap();
        assert_eq!(captured.status, "captured");
        assert_eq!(
            shop.card_at_bank(&token).await,
            ["800.00", "0.00", "200.00", "0.00"].map(String::from)
        );
        // The merchant's retry answers the capture as done.
        let retried = shop
            .payments
            .capture("k:capture", &created.id, None, now())
            .await
            .unwrap();
        assert_eq!(retried.status, "captured");
        shop.assert_books_balance().await;
    })
    .await;
}

#[tokio::test]
async fn the_wallet_is_topped_up_from_a_card_and_pays_back_out_to_it() {
    on_both_backends(|shop| async move {
        let token = shop.card("1000.00").await;
        let topped = shop
            .payments
            .top_up("k:top-up", CUSTOMER, token.as_str(), cny("300.00"), now())
            .await
            .unwrap();
        assert_eq!(topped.status, "succeeded");
        assert_eq!(shop.wallet_balance().await, (30_000, 0));
        assert_eq!(shop.card_at_bank(&token).await[0], "700.00");
        // The bank's answer to a top-up's capture is lost: recovery finishes it once.
        shop.bank
            .set_faults(&FaultsUpdate {
                timeout_rate_ppm: Some(PartsPerMillion::ALWAYS),
                ..FaultsUpdate::default()
            })
            .await
            .unwrap();
        let lost = shop
            .payments
            .top_up("k:top-up-2", CUSTOMER, token.as_str(), cny("50.00"), now())
            .await
            .unwrap_err();
        assert_eq!(lost.code(), "payment_in_flight");
        shop.bank
            .set_faults(&FaultsUpdate {
                timeout_rate_ppm: Some(PartsPerMillion::NEVER),
                ..FaultsUpdate::default()
            })
            .await
            .unwrap();
        assert_eq!(
            shop.payments
                .recover_wallet_operations(now(), 100)
                .await
                .unwrap(),
            0
        );
        assert_eq!(shop.wallet_balance().await, (35_000, 0));
        assert_eq!(shop.card_at_bank(&token).await[0], "650.00");
        // More than the wallet holds is refused, and nothing stays held.
        let refused = shop
            .payments
            .withdraw(
                "k:withdraw-1",
                CUSTOMER,
                token.as_str(),
                cny("350.01"),
                now(),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "insufficient_balance");
        assert_eq!(shop.wallet_balance().await, (35_000, 0));
        let paid = shop
            .payments
            .withdraw(
                "k:withdraw-2",
                CUSTOMER,
                token.as_str(),
                cny("100.00"),
                now(),
            )
            .await
            .unwrap();
        assert_eq!(paid.status, "succeeded");
        assert_eq!(shop.wallet_balance().await, (25_000, 0));
        assert_eq!(shop.card_at_bank(&token).await[0], "750.00");
        // Wallet to vault and back; the vault's instant redemption stops at 10,000 a day.
        shop.payments
            .subscribe_to_vault("k:vault-in", CUSTOMER, cny("200.00"), now())
            .await
            .unwrap();
        let balances = shop
            .payments
            .balances(CUSTOMER, Currency::CNY)
            .await
            .unwrap();
        assert_eq!(
            (
                balances.wallet.balance.value.as_str(),
                balances.vault.balance.value.as_str()
            ),
            ("50.00", "200.00")
        );
        let too_much = shop
            .payments
            .redeem_from_vault("k:vault-out-1", CUSTOMER, cny("10000.01"), now())
            .await
            .unwrap_err();
        assert_eq!(too_much.code(), "instant_redemption_limit");
        let short = shop
            .payments
            .redeem_from_vault("k:vault-out-2", CUSTOMER, cny("200.01"), now())
            .await
            .unwrap_err();
        assert_eq!(short.code(), "insufficient_balance");
        shop.payments
            .redeem_from_vault("k:vault-out-3", CUSTOMER, cny("150.00"), now())
            .await
            .unwrap();
        assert_eq!(shop.wallet_balance().await, (20_000, 0));
        // The same key again is the same operation, not a second one.
        shop.payments
            .redeem_from_vault("k:vault-out-3", CUSTOMER, cny("150.00"), now())
            .await
            .unwrap();
        assert_eq!(shop.wallet_balance().await, (20_000, 0));
        shop.assert_books_balance().await;
    })
    .await;
}

/// Rules by amount (minor units): above 9,000.00 reject, above 5,000.00 ask for a one-time
/// code, above 3,000.00 send to review, above 2,000.00 hold the delivery.
const RULES_BY_AMOUNT: &str = r#"
name = "payments by amount"

[[rules]]
id = "too_big"
condition = "amount >= 900000"
action = "reject"
reason = "AMOUNT_TOO_BIG"

[[rules]]
id = "big"
condition = "amount >= 500000 && amount < 900000"
action = "step_up"
reason = "AMOUNT_BIG"

[[rules]]
id = "unusual"
condition = "amount >= 300000 && amount < 500000"
action = "review"
reason = "AMOUNT_UNUSUAL"

[[rules]]
id = "watch_delivery"
condition = "amount >= 200000 && amount < 300000"
action = "hold_delivery"
reason = "AMOUNT_WATCH"
"#;

#[tokio::test]
async fn risk_control_acts_on_each_decision() {
    on_both_backends(|shop| async move {
        use tally_service::caller::Caller;
        use tally_service::payments::risk_control::KeptCodes;
        use tally_service::risk::RiskService;
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now()));
        let risk = Arc::new(RiskService::open(&shop.database, clock).await.unwrap());
        let maker = Caller {
            key_id: "maker".into(),
            name: "maker".into(),
        };
        let checker = Caller {
            key_id: "checker".into(),
            name: "checker".into(),
        };
        let uploaded = risk
            .upload_rule_set(RULES_BY_AMOUNT, true, &maker)
            .await
            .unwrap();
        let request = uploaded.activation_request.unwrap();
        risk.decide_activation(&request.id, true, &checker)
            .await
            .unwrap();
        let codes = Arc::new(KeptCodes::default());
        shop.payments.attach_risk(risk);
        shop.payments.attach_code_sink(codes.clone());
        shop.top_up("30000.00").await;
        let pay = |number: u32, amount: &'static str| {
            let shop = &shop;
            async move {
                let mut request = shop.combined(amount, amount, CaptureMethod::Automatic);
                request.fundings.truncate(1);
                request.order_reference = format!("order-{number}");
                let created = shop
                    .payments
                    .create(&format!("k:create-{number}"), request, now())
                    .await
                    .unwrap();
                let confirmed = shop
                    .payments
                    .confirm(
                        &format!("k:confirm-{number}"),
                        &created.id,
                        ConfirmInput::default(),
                        now(),
                    )
                    .await;
                (created.id, confirmed)
            }
        };
        // Approved.
        let (_, approved) = pay(1, "1000.00").await;
        assert_eq!(approved.unwrap().status, "captured");
        // Delivery held, then released by an analyst.
        let (held_id, held) = pay(2, "2500.00").await;
        let held = held.unwrap();
        assert_eq!(
            (held.status.as_str(), held.delivery_held),
            ("captured", true)
        );
        let released = shop
            .payments
            .release_delivery("k:release", &held_id, now())
            .await
            .unwrap();
        assert!(!released.delivery_held);
        // The hold and its release are announced to the merchant's webhooks.
        let announced: Vec<String> = shop
            .database
            .payment_events(&held_id)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.kind)
            .collect();
        assert_eq!(
            announced,
            [
                "payment.created",
                "payment.authorized",
                "payment.delivery_held",
                "payment.captured",
                "payment.delivery_released"
            ]
        );
        // Review: every source held until the analyst decides.
        let (review_id, review) = pay(3, "3500.00").await;
        assert_eq!(review.unwrap().status, "under_review");
        assert_eq!(shop.wallet_balance().await, (3_000_000 - 350_000, 350_000));
        let approved = shop
            .payments
            .review("k:review-3", &review_id, true, now())
            .await
            .unwrap();
        assert_eq!(approved.status, "captured");
        let (rejected_id, _) = pay(4, "3600.00").await;
        let rejected = shop
            .payments
            .review("k:review-4", &rejected_id, false, now())
            .await
            .unwrap();
        assert_eq!(rejected.status, "failed");
        assert_eq!(
            shop.wallet_balance().await,
            (3_000_000 - 350_000 - 350_000, 0)
        );
        // Step up: the right code, after a missing and a wrong one, lets it through.
        let (step_id, step) = pay(5, "6000.00").await;
        assert_eq!(step.unwrap().status, "requires_action");
        assert_eq!(
            shop.wallet_balance().await.1,
            0,
            "nothing is held before the code"
        );
        let missing = shop
            .payments
            .confirm("k:confirm-5b", &step_id, ConfirmInput::default(), now())
            .await
            .unwrap_err();
        assert_eq!(missing.code(), "step_up_code_required");
        let code = codes.last_for(&step_id).unwrap();
        let wrong_code = if code == "000000" { "000001" } else { "000000" };
        let wrong = shop
            .payments
            .confirm(
                "k:confirm-5c",
                &step_id,
                ConfirmInput {
                    code: Some(wrong_code.into()),
                    ..ConfirmInput::default()
                },
                now(),
            )
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), "step_up_code_wrong");
        let right = shop
            .payments
            .confirm(
                "k:confirm-5d",
                &step_id,
                ConfirmInput {
                    code: Some(code),
                    ..ConfirmInput::default()
                },
                now(),
            )
            .await
            .unwrap();
        assert_eq!(right.status, "captured");
        // Rejected: nothing reserved, the reasons given.
        let (_, refused) = pay(6, "9500.00").await;
        let refused = refused.unwrap_err();
        assert_eq!(refused.code(), "risk_rejected");
        assert!(refused.to_string().contains("AMOUNT_TOO_BIG"), "{refused}");
        assert_eq!(
            shop.wallet_balance().await,
            (3_000_000 - 350_000 - 350_000 - 600_000, 0)
        );
        shop.assert_books_balance().await;
    })
    .await;
}

#[tokio::test]
async fn the_vault_earns_its_daily_yield_once_per_day() {
    on_both_backends(|shop| async move {
        use tally_payments::vault::AnnualRate;
        shop.top_up("20000.00").await;
        shop.payments
            .subscribe_to_vault("k:vault-in", CUSTOMER, cny("10000.00"), now())
            .await
            .unwrap();
        // 1.825 % a year on 10,000.00 is 0.50 a day.
        let rate = AnnualRate::new("0.01825".parse().unwrap()).unwrap();
        let day = now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let later = now() + SignedDuration::from_hours(24 * 3);
        let not_over = shop
            .payments
            .accrue_vault_yield(day, rate, now())
            .await
            .unwrap_err();
        assert_eq!(not_over.code(), "invalid_request");
        let first = shop
            .payments
            .accrue_vault_yield(day, rate, later)
            .await
            .unwrap();
        assert_eq!((first.vaults, first.days), (1, 1));
        assert_eq!(first.credited.get("CNY"), Some(&50));
        // The same day again credits nothing; the next day catches up from there.
        let again = shop
            .payments
            .accrue_vault_yield(day, rate, later)
            .await
            .unwrap();
        assert_eq!(again.days, 0);
        let next = day.tomorrow().unwrap().tomorrow().unwrap();
        let caught_up = shop
            .payments
            .accrue_vault_yield(next, rate, later)
            .await
            .unwrap();
        assert_eq!(
            (caught_up.days, caught_up.credited.get("CNY")),
            (2, Some(&100))
        );
        let balances = shop
            .payments
            .balances(CUSTOMER, Currency::CNY)
            .await
            .unwrap();
        assert_eq!(balances.vault.balance.value, "10001.50");
        shop.assert_books_balance().await;
    })
    .await;
}

/// The credit line only, `amount` over `term` installments.
fn on_credit(shop: &Shop, amount: &str, term: u32) -> CreatePayment {
    CreatePayment {
        merchant_id: "merchant-1".into(),
        order_reference: format!("order-{term}"),
        customer: CUSTOMER.into(),
        amount: cny(amount),
        expires_at: None,
        capture_method: CaptureMethod::Automatic,
        fundings: vec![Funding {
            source: Source::CreditLine {
                account: shop.credit_account,
                term,
            },
            share: Share::Rest,
        }],
    }
}

/// The true APR of a flat-fee plan worked out here from the product's rule alone: the
/// principal split evenly (the left-over cents on the first installment, as the catalog
/// says), the fee `rate` × principal every month; then the internal rate of return of those
/// cash flows, by the credit crate's finance.
fn flat_fee_apr(principal_minor: i64, term: u32, rate: &str) -> (Vec<i64>, tally_credit::TrueApr) {
    use rust_decimal::Decimal;
    let rate: Decimal = rate.parse().unwrap();
    let fee = (Decimal::from(principal_minor) * rate)
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointNearestEven);
    let fee = i64::try_from(fee).unwrap();
    let part = principal_minor / i64::from(term);
    let left_over = principal_minor - part * i64::from(term);
    let installments: Vec<i64> = (0..term)
        .map(|index| part + fee + if index == 0 { left_over } else { 0 })
        .collect();
    let mut flows = vec![-Decimal::from(principal_minor)];
    flows.extend(installments.iter().map(|total| Decimal::from(*total)));
    (
        installments,
        tally_credit::TrueApr::of_cash_flows(&flows, 12).unwrap(),
    )
}

#[tokio::test]
async fn the_credit_lines_true_apr_is_shown_before_confirming() {
    on_both_backends(|shop| async move {
        // The default catalog's `installment` product: 0.7 % of the principal a month over
        // 3 months, 0.8 % over 12 (the account has no pricing tier).
        for (term, amount, rate, total_charges) in [
            (3, "210.00", "0.007", "4.41"),
            (12, "1200.00", "0.008", "115.20"),
        ] {
            let created = shop
                .payments
                .create(
                    &format!("apr-{term}"),
                    on_credit(&shop, amount, term),
                    now(),
                )
                .await
                .unwrap();
            assert_eq!(created.status, "created");
            let terms = created.legs[0].credit_terms.clone().unwrap();
            let principal_minor = cny(amount).minor();
            let (installments, apr) = flat_fee_apr(principal_minor, term, rate);
            assert_eq!(terms.periods, term);
            assert_eq!(terms.product, "installment");
            assert_eq!(terms.principal.value, amount);
            assert_eq!(terms.total_charges.value, total_charges);
            let charges = cny(total_charges).minor();
            assert_eq!(
                terms.total_repayable.value,
                Amount::new(principal_minor + charges, Currency::CNY).to_decimal_string()
            );
            let shown: Vec<i64> = terms
                .installments
                .iter()
                .map(|installment| {
                    cny(&installment.principal.value).minor()
                        + cny(&installment.fee.value).minor()
                        + cny(&installment.interest.value).minor()
                })
                .collect();
            assert_eq!(shown, installments);
            assert_eq!(
                terms.true_apr.nominal_annual,
                apr.nominal_annual.to_string()
            );
            assert_eq!(
                terms.true_apr.effective_annual,
                apr.effective_annual.to_string()
            );
            assert_eq!(terms.true_apr.periodic, apr.periodic.to_string());
            assert_eq!(
                terms.true_apr.nominal_percent,
                apr.nominal_percent().to_string()
            );
            assert_eq!(terms.true_apr.periods_per_year, 12);
            // A fee of 0.7 % or 0.8 % of the whole principal a month costs far more than
            // 12 × that a year, since the balance falls: the disclosure says so.
            let nominal: rust_decimal::Decimal = terms.true_apr.nominal_annual.parse().unwrap();
            let flat: rust_decimal::Decimal = rate.parse().unwrap();
            assert!(
                nominal > flat * rust_decimal::Decimal::from(12),
                "{nominal}"
            );
            // A read shows what the creation showed, and so does the payment once captured.
            let read = shop.payments.get(&created.id, now()).await.unwrap();
            assert_eq!(read.legs[0].credit_terms, Some(terms.clone()));
            let paid = shop
                .payments
                .confirm(
                    &format!("apr-{term}:confirm"),
                    &created.id,
                    ConfirmInput::default(),
                    now(),
                )
                .await
                .unwrap();
            assert_eq!(paid.status, "captured");
            assert_eq!(paid.legs[0].credit_terms, Some(terms.clone()));
            // The plan the capture made is the one disclosed.
            let stored = shop
                .credit
                .operations
                .load(shop.credit_account)
                .await
                .unwrap();
            let plan = stored
                .account
                .plans
                .iter()
                .find(|plan| Some(plan.id) == paid.legs[0].credit_plan_id)
                .unwrap();
            let plan_apr = plan.schedule.true_apr().unwrap();
            assert_eq!(plan_apr, apr);
            assert_eq!(plan.schedule.total_charges().unwrap(), cny(total_charges));
        }
        shop.assert_books_balance().await;

        // A term outside 1, 3, 6, 12 and 24 is refused, and nothing is stored.
        let payments_before = shop
            .database
            .payments_of_customer(CUSTOMER, 1000)
            .await
            .unwrap()
            .len();
        let error = shop
            .payments
            .create("apr-5", on_credit(&shop, "100.00", 5), now())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "installment_term_not_offered");
        // So is one the configured product does not offer: `loan` has no single installment.
        let loans = PaymentService::new(
            shop.database.clone(),
            shop.payments.writer().clone(),
            Some(shop.credit.clone()),
            None,
            PaymentsConfig {
                credit_product: "loan".into(),
                ..PaymentsConfig::default()
            },
        );
        let error = loans
            .create("apr-loan-1", on_credit(&shop, "100.00", 1), now())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "installment_term_not_offered");
        assert_eq!(
            shop.database
                .payments_of_customer(CUSTOMER, 1000)
                .await
                .unwrap()
                .len(),
            payments_before
        );
    })
    .await;
}
