//! Reconciliation of Tally's own books, end to end on SQLite and PostgreSQL: a day of card
//! payments and refunds through the real checkout and the bank simulator (in this process,
//! on the same manual clock), the simulator told to inject a discrepancy of every class
//! into its settlement file, and the run over the database finds exactly the injected ones
//! — what to expect is read from the bank's own files, the clean one against the one with
//! discrepancies, never from Tally's books. The next day's run matches the timing item
//! (the day's last row, settled late), keeps the bank-only row open, and a date
//! reconciled twice is reconciled once. Disputes: the bank's file shows a chargeback, a
//! dispute won and a lost one's fee as rows of their own, and they match the books.
#![allow(clippy::unwrap_used)]

use jiff::civil::Date;
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tally_channel::simulator::{
    serve_with_clock, Discrepancy, DisputeView, FaultsUpdate, RecordType, SettlementFile,
    SimulatorConfig, SimulatorControl,
};
use tally_channel::{
    signature_header, Channel, DisputeDetails, HttpChannel, HttpChannelConfig, Notification,
    NotificationType, Reference,
};
use tally_core::{Amount, Clock, Currency, ManualClock, Secret};
use tally_payments::{CaptureMethod, Funding, RefundPolicy, Share, Source};
use tally_service::payments::merchants::testing::onboard_test_merchants;
use tally_service::payments::notifications::NotificationOutcome;
use tally_service::payments::{ConfirmInput, CreatePayment, PaymentService, PaymentsConfig};
use tally_service::recon::{reconcile_books, BooksRun, BooksRunOptions, ExceptionView};
use tally_store::recon::ExceptionFilter;
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};

const CUSTOMER: &str = "shopper-1";
const BANK_SECRET: &str = "bank-secret";

fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

struct Books {
    _test: TestDatabase,
    database: Database,
    clock: Arc<ManualClock>,
    payments: PaymentService,
    bank: SimulatorControl,
    token: String,
    work: tempfile::TempDir,
}

impl Books {
    async fn open(test: TestDatabase) -> Books {
        let database = test.database.clone();
        let clock = Arc::new(ManualClock::new(at("2026-11-30T08:00:00Z")));
        let writer = LedgerWriter::start(&database, clock.clone(), WriterConfig::default())
            .await
            .unwrap()
            .0;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let bank_clock: Arc<dyn Clock> = clock.clone();
        tokio::spawn(serve_with_clock(
            listener,
            SimulatorConfig::new(BANK_SECRET),
            bank_clock,
        ));
        let bank = SimulatorControl::new(&url, BANK_SECRET).unwrap();
        let channel: Arc<dyn Channel> = Arc::new(
            HttpChannel::new(HttpChannelConfig {
                base_url: url,
                timeout: std::time::Duration::from_secs(5),
                secret: Secret::new(BANK_SECRET.to_string()),
            })
            .unwrap(),
        );
        let payments = PaymentService::new(
            database.clone(),
            writer,
            None,
            Some(channel),
            PaymentsConfig {
                channel_secret: Some(Secret::new(BANK_SECRET.to_string())),
                ..PaymentsConfig::default()
            },
        );
        onboard_test_merchants(&payments, &["merchant-1"], Currency::CNY, clock.now())
            .await
            .unwrap();
        let card = bank
            .register_card("4242424242424242", "12/30", cny("1000000.00"))
            .await
            .unwrap();
        payments
            .save_card(CUSTOMER, card.token.as_str(), clock.now())
            .await
            .unwrap();
        Books {
            _test: test,
            database,
            clock,
            payments,
            bank,
            token: card.token.as_str().to_string(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    /// A card payment captured whole at `when`; its id.
    async fn pay(&self, number: u32, amount: &str, when: &str) -> String {
        self.clock.set(at(when));
        let request = CreatePayment {
            merchant_id: "merchant-1".into(),
            order_reference: format!("order-{number}"),
            customer: CUSTOMER.into(),
            amount: cny(amount),
            expires_at: None,
            capture_method: CaptureMethod::Automatic,
            fundings: vec![Funding {
                source: Source::Card {
                    token: self.token.clone(),
                },
                share: Share::Rest,
            }],
        };
        let now = self.clock.now();
        let created = self
            .payments
            .create(&format!("create-{number}"), request, now)
            .await
            .unwrap();
        let paid = self
            .payments
            .confirm(
                &format!("confirm-{number}"),
                &created.id,
                ConfirmInput::default(),
                now,
            )
            .await
            .unwrap();
        assert_eq!(paid.status, "captured", "{paid:?}");
        created.id
    }

    async fn refund(&self, payment: &str, amount: &str, when: &str) {
        self.clock.set(at(when));
        self.payments
            .refund(
                &format!("refund-{payment}"),
                payment,
                cny(amount),
                RefundPolicy::ReverseFunding,
                self.clock.now(),
            )
            .await
            .unwrap();
    }

    async fn settlement_file(&self, date: Date) -> (String, SettlementFile) {
        let text = self.bank.settlement_file(date).await.unwrap();
        let file = SettlementFile::parse(&text).unwrap();
        (text, file)
    }

    async fn reconcile(&self, date: Date, text: &str) -> BooksRun {
        let path = self.work.path().join(format!("settlement-{date}.csv"));
        std::fs::write(&path, text).unwrap();
        let mut options = BooksRunOptions::new(date, path, self.work.path().join("runs"));
        options.threads = 1;
        reconcile_books(&self.database, &options, self.clock.now())
            .await
            .unwrap()
    }

    async fn exceptions(&self, date: &str) -> Vec<ExceptionView> {
        let worklist = tally_service::recon::ReconWorklist::new(
            self.database.clone(),
            self.payments.writer().clone(),
        );
        let filter = ExceptionFilter {
            business_date: Some(date.to_string()),
            ..ExceptionFilter::default()
        };
        worklist.exceptions(&filter, None, 500).await.unwrap()
    }
}

/// What the bank's faulted file should make a reconciliation find, read from the clean file
/// and the faulted one alone: (class, reference).
fn injected(clean: &SettlementFile, faulted: &SettlementFile) -> BTreeSet<(String, String)> {
    let mut clean_amounts = BTreeMap::new();
    for row in &clean.rows {
        clean_amounts.insert(row.reference.to_string(), row.amount);
    }
    let late = clean.rows.last().unwrap().reference.to_string();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut expected = BTreeSet::new();
    expected.insert(("timing".to_string(), late.clone()));
    for row in &faulted.rows {
        let reference = row.reference.to_string();
        let count = seen.entry(reference.clone()).or_insert(0);
        *count += 1;
        match clean_amounts.get(&reference) {
            None => {
                expected.insert(("missing_in_ledger".into(), reference));
            }
            Some(_) if *count > 1 => {
                expected.insert(("duplicate_in_channel".into(), reference));
            }
            Some(amount) if *amount != row.amount => {
                expected.insert(("amount_mismatch".into(), reference));
            }
            Some(_) => {}
        }
    }
    for reference in clean_amounts.keys() {
        if !seen.contains_key(reference) && *reference != late {
            expected.insert(("missing_in_channel".into(), reference.clone()));
        }
    }
    expected
}

fn found(exceptions: &[ExceptionView]) -> BTreeSet<(String, String)> {
    exceptions
        .iter()
        .map(|exception| (exception.class.clone(), exception.reference.clone()))
        .collect()
}

async fn story(books: Books) {
    let day_one = jiff::civil::date(2026, 11, 30);
    let day_two = jiff::civil::date(2026, 12, 1);
    // A day of card payments from 09:00, a few refunds in the afternoon, and the last
    // payment at 23:30, inside the two-hour timing window.
    let mut paid = Vec::new();
    for number in 0..12_u32 {
        let minutes = 9 * 60 + 30 * number;
        let when = format!("2026-11-30T{:02}:{:02}:00Z", minutes / 60, minutes % 60);
        let amount = format!("{}.{:02}", 20 + number * 7, number * 3 % 100);
        paid.push(books.pay(number, &amount, &when).await);
    }
    books.refund(&paid[1], "5.00", "2026-11-30T16:00:00Z").await;
    books
        .refund(&paid[4], "10.00", "2026-11-30T16:30:00Z")
        .await;
    books.pay(100, "88.80", "2026-11-30T23:30:00Z").await;

    books.clock.set(at("2026-12-01T00:30:00Z"));
    // Not over yet for the bank's next day.
    let early = books
        .reconcile_error(day_two, "trailer,2026-12-01,0,,,,,\n")
        .await;
    assert_eq!(early, "recon_date_not_over");
    let (_, clean) = books.settlement_file(day_one).await;
    assert_eq!(clean.rows.len(), 15);
    books
        .bank
        .set_faults(&FaultsUpdate {
            settlement_discrepancies: Some(vec![
                Discrepancy::Late,
                Discrepancy::Missing,
                Discrepancy::AmountMismatch,
                Discrepancy::Duplicate,
                Discrepancy::UnknownReference,
            ]),
            ..FaultsUpdate::default()
        })
        .await
        .unwrap();
    let (text, faulted) = books.settlement_file(day_one).await;
    let expected = injected(&clean, &faulted);
    let classes: BTreeSet<&str> = expected.iter().map(|(class, _)| class.as_str()).collect();
    assert_eq!(
        classes,
        BTreeSet::from([
            "amount_mismatch",
            "duplicate_in_channel",
            "missing_in_channel",
            "missing_in_ledger",
            "timing"
        ]),
        "every class injected: {expected:?}"
    );

    let run = books.reconcile(day_one, &text).await;
    let BooksRun::Reconciled(view) = &run else {
        panic!("a new run: {run:?}")
    };
    assert_eq!(view.ledger_records, 15, "{view:?}");
    assert_eq!(view.exceptions as usize, expected.len(), "{view:?}");
    let first_day = books.exceptions("2026-11-30").await;
    assert_eq!(found(&first_day), expected);
    assert!(first_day.iter().all(|exception| exception.state == "open"));
    assert_eq!(view.summary.bad_rows, 0);
    assert!(view.summary.control_exceptions.is_empty());
    // Asked again, the date answers its stored run and stores nothing more.
    let again = books.reconcile(day_one, &text).await;
    assert_eq!(again, BooksRun::AlreadyReconciled(view.clone()));
    assert_eq!(books.exceptions("2026-11-30").await.len(), first_day.len());

    // The next day: the bank's file is clean again and starts with the late row.
    books
        .bank
        .set_faults(&FaultsUpdate {
            settlement_discrepancies: Some(vec![]),
            ..FaultsUpdate::default()
        })
        .await
        .unwrap();
    books.pay(200, "12.34", "2026-12-01T10:00:00Z").await;
    books.pay(201, "56.78", "2026-12-01T11:00:00Z").await;
    books.clock.set(at("2026-12-02T00:10:00Z"));
    let (text, file) = books.settlement_file(day_two).await;
    let late = clean.rows.last().unwrap().reference.to_string();
    assert_eq!(file.rows[0].reference.as_str(), late);
    let run = books.reconcile(day_two, &text).await;
    let view = run.view();
    assert_eq!(
        (
            view.matched,
            view.exceptions,
            view.carried_in,
            view.carried_matched
        ),
        (2, 0, 2, 1),
        "{view:?}"
    );
    let first_day = books.exceptions("2026-11-30").await;
    let timing = first_day
        .iter()
        .find(|exception| exception.reference == late)
        .unwrap();
    assert_eq!(timing.state, "resolved");
    assert_eq!(timing.resolution.as_deref(), Some("matched_later"));
    assert_eq!(timing.matched_on.as_deref(), Some("2026-12-01"));
    // The row Tally never sent stays open, carried once.
    let stranger = first_day
        .iter()
        .find(|exception| exception.class == "missing_in_ledger")
        .unwrap();
    assert_eq!(stranger.state, "open");
    assert_eq!(stranger.carried_to.as_deref(), Some("2026-12-01"));
    assert_eq!(
        first_day
            .iter()
            .filter(|exception| exception.state == "open")
            .count(),
        expected.len() - 1
    );
}

impl Books {
    /// Hands the bank's dispute notification of `kind` for `dispute` to Tally, signed by the
    /// bank's secret now.
    async fn deliver_dispute(&self, kind: NotificationType, dispute: &DisputeView) {
        let notification = Notification {
            event_id: format!("evt_{}_{}", dispute.dispute_id, kind.as_str()),
            kind,
            reference: dispute.reference.clone(),
            channel_id: dispute.dispute_id.clone(),
            amount: cny(&dispute.amount),
            occurred_at: self.clock.now(),
            dispute: Some(DisputeDetails {
                reason_code: dispute.reason_code.clone(),
                evidence_due_by: dispute.evidence_due_by,
                fee: cny(&dispute.fee),
            }),
        };
        let body = notification.to_json();
        let signature = signature_header(BANK_SECRET.as_bytes(), self.clock.now(), &body);
        let receipt = self
            .payments
            .receive_notification(Some(&signature), &body, self.clock.now())
            .await
            .unwrap();
        assert_eq!(
            receipt.outcome,
            Some(NotificationOutcome::Applied),
            "{receipt:?}"
        );
    }

    /// The bank's reference of payment `id`'s capture, from its settlement file of `date`.
    async fn capture_reference(&self, date: Date, id: &str) -> Reference {
        let (_, file) = self.settlement_file(date).await;
        file.rows
            .iter()
            .find(|row| {
                row.record_type == RecordType::Capture
                    && row
                        .reference
                        .as_str()
                        .starts_with(&format!("payments:{id}:"))
            })
            .unwrap()
            .reference
            .clone()
    }

    async fn reconcile_error(&self, date: Date, text: &str) -> String {
        let path = self.work.path().join(format!("early-{date}.csv"));
        std::fs::write(&path, text).unwrap();
        let options = BooksRunOptions::new(date, path, self.work.path().join("runs"));
        reconcile_books(&self.database, &options, self.clock.now())
            .await
            .unwrap_err()
            .code()
            .to_string()
    }
}

/// Three card payments disputed at the bank: one left open, one won (the amount back), one
/// lost (the bank's fee taken). The bank's file holds a row for each movement, and the
/// books' run matches every row: no exception.
async fn disputes(books: Books) {
    let day = jiff::civil::date(2026, 11, 30);
    let mut paid = Vec::new();
    for number in 0..3_u32 {
        let when = format!("2026-11-30T{:02}:00:00Z", 9 + number);
        paid.push(books.pay(number, "100.00", &when).await);
    }
    books.clock.set(at("2026-11-30T14:00:00Z"));
    let due_by = at("2026-12-10T00:00:00Z");
    let mut raised = Vec::new();
    for (payment, amount) in paid.iter().zip(["40.00", "60.00", "100.00"]) {
        let reference = books.capture_reference(day, payment).await;
        let dispute = books
            .bank
            .raise_dispute(&reference, cny(amount), "13.1", due_by)
            .await
            .unwrap();
        books
            .deliver_dispute(NotificationType::DisputeOpened, &dispute)
            .await;
        raised.push(dispute);
    }
    books.clock.set(at("2026-11-30T18:00:00Z"));
    let won = books
        .bank
        .decide_dispute(raised[1].dispute_id.as_str(), "won")
        .await
        .unwrap();
    books
        .deliver_dispute(NotificationType::DisputeWon, &won)
        .await;
    let lost = books
        .bank
        .decide_dispute(raised[2].dispute_id.as_str(), "lost")
        .await
        .unwrap();
    assert!(cny(&lost.fee).is_positive(), "{lost:?}");
    books
        .deliver_dispute(NotificationType::DisputeLost, &lost)
        .await;

    books.clock.set(at("2026-12-01T03:00:00Z"));
    let (text, file) = books.settlement_file(day).await;
    file.check_control_totals().unwrap();
    let rows = |kind: RecordType| {
        file.rows
            .iter()
            .filter(|row| row.record_type == kind)
            .map(|row| (row.reference.to_string(), row.amount))
            .collect::<Vec<_>>()
    };
    let id = |index: usize| raised[index].dispute_id.as_str().to_string();
    assert_eq!(
        rows(RecordType::Dispute),
        vec![
            (format!("{}:dispute", id(0)), cny("40.00")),
            (format!("{}:dispute", id(1)), cny("60.00")),
            (format!("{}:dispute", id(2)), cny("100.00")),
        ]
    );
    assert_eq!(
        rows(RecordType::DisputeWon),
        vec![(format!("{}:dispute-won", id(1)), cny("60.00"))]
    );
    assert_eq!(
        rows(RecordType::DisputeFee),
        vec![(format!("{}:dispute-fee", id(2)), cny(&lost.fee))]
    );
    let run = books.reconcile(day, &text).await;
    let view = run.view();
    assert_eq!(view.ledger_records, 8, "{view:?}");
    assert_eq!((view.matched, view.exceptions), (8, 0), "{view:?}");
    assert!(books.exceptions("2026-11-30").await.is_empty());
}

#[tokio::test]
async fn disputes_in_the_bank_file_match_the_books() {
    disputes(Books::open(TestDatabase::sqlite().await.unwrap()).await).await;
    if let Some(test) = TestDatabase::postgres().await {
        disputes(Books::open(test).await).await;
    }
}

#[tokio::test]
async fn the_books_are_reconciled_against_the_bank_file_and_timing_items_match_the_next_day() {
    story(Books::open(TestDatabase::sqlite().await.unwrap()).await).await;
    if let Some(test) = TestDatabase::postgres().await {
        story(Books::open(test).await).await;
    }
}
