//! Group commit of payments' writes: changes written together each keep their own version
//! check and their own answer, a new payment is written once per request key, and many
//! checkouts writing at once through the `PaymentWriter` all land, each hearing its own
//! outcome.
#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use tally_store::on_both_backends;
use tally_store::payments::writer::PaymentWriter;
use tally_store::payments::{
    AppendedStep, PaymentAnswer, PaymentChanges, PaymentInsert, PaymentUpdate, ResolvedStep,
};
use tally_store::testing::TestDatabase;
use tally_store::Database;

fn at() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn answer(key: &str, text: &str) -> PaymentAnswer {
    PaymentAnswer {
        key: key.to_string(),
        kind: "create".to_string(),
        request_hash: format!("hash of {key}"),
        answer_code: 201,
        answer: text.to_string(),
    }
}

/// A new payment `id` made by request `key`.
fn created(id: &str, key: &str) -> PaymentChanges {
    PaymentChanges {
        payment_id: id.to_string(),
        insert: Some(PaymentInsert {
            merchant_id: "merchant".to_string(),
            order_reference: format!("order of {id}"),
            customer: "customer".to_string(),
            currency: "USD".to_string(),
            amount_minor: 6000,
            status: "created".to_string(),
            state: "state 1".to_string(),
            deadline: None,
            events: Vec::new(),
        }),
        update: None,
        resolved: Vec::new(),
        append: Vec::new(),
        answer: Some(answer(key, id)),
        now: at(),
    }
}

/// Payment `id` at `version` changed to `state`, step `resolve` resolved and step `append`
/// written as pending.
fn changed(
    id: &str,
    version: i64,
    state: &str,
    resolve: Option<i64>,
    append: i64,
) -> PaymentChanges {
    PaymentChanges {
        payment_id: id.to_string(),
        insert: None,
        update: Some(PaymentUpdate {
            version,
            status: "created".to_string(),
            state: state.to_string(),
            deadline: None,
            events: Vec::new(),
        }),
        resolved: resolve
            .map(|sequence| ResolvedStep {
                sequence,
                status: "done".to_string(),
                outcome: "{}".to_string(),
            })
            .into_iter()
            .collect(),
        append: vec![AppendedStep {
            sequence: append,
            action: format!("action {append}"),
        }],
        answer: None,
        now: at(),
    }
}

async fn state_of(database: &Database, id: &str) -> (i64, String) {
    let stored = database.payment(id).await.unwrap().unwrap();
    (stored.version, stored.state)
}

async fn a_batch_keeps_each_payments_version_check(test: TestDatabase) {
    let database = &test.database;
    let first = created("pay_a", "key a");
    let second = created("pay_b", "key b");
    assert_eq!(
        database
            .write_payment_changes_batch(&[&first, &second])
            .await
            .unwrap(),
        vec![true, true]
    );
    // A stale version refuses only its own changes: its step is not written either.
    let fresh = changed("pay_a", 1, "state 2", None, 1);
    let stale = changed("pay_b", 7, "state 2", None, 1);
    assert_eq!(
        database
            .write_payment_changes_batch(&[&fresh, &stale])
            .await
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(
        state_of(database, "pay_a").await,
        (2, "state 2".to_string())
    );
    assert_eq!(
        state_of(database, "pay_b").await,
        (1, "state 1".to_string())
    );
    let steps = database.payment_steps("pay_a").await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (steps[0].sequence, steps[0].status.as_str()),
        (1, "pending")
    );
    assert!(database.payment_steps("pay_b").await.unwrap().is_empty());

    // The step resolved with the next one written, and the request's answer, in one
    // transaction.
    let mut next = changed("pay_a", 2, "state 3", Some(1), 2);
    next.answer = Some(PaymentAnswer {
        kind: "confirm".to_string(),
        ..answer("key confirm", "confirmed")
    });
    assert!(database.write_payment_changes(&next).await.unwrap());
    let stored = database
        .payment_request("key confirm")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.kind.as_str(), stored.answer.as_str()),
        ("confirm", "confirmed")
    );
    let steps = database.payment_steps("pay_a").await.unwrap();
    let statuses: Vec<(i64, &str)> = steps
        .iter()
        .map(|step| (step.sequence, step.status.as_str()))
        .collect();
    assert_eq!(statuses, vec![(1, "done"), (2, "pending")]);

    // A second create under a stored key writes nothing; the first answer stands.
    let again = created("pay_c", "key a");
    assert!(!database.write_payment_changes(&again).await.unwrap());
    assert!(database.payment("pay_c").await.unwrap().is_none());
    assert_eq!(
        database
            .payment_request("key a")
            .await
            .unwrap()
            .unwrap()
            .answer,
        "pay_a"
    );
}

async fn concurrent_checkouts_are_written_together_each_hearing_its_own_outcome(
    test: TestDatabase,
) {
    let writer = PaymentWriter::start(test.database.clone());
    let mut tasks = Vec::new();
    for index in 0..64 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("pay_{index}");
            assert!(writer.write(created(&id, &format!("key {index}"))).await?);
            // A change from a version already replaced is refused, alone.
            let written = writer.write(changed(&id, 1, "state 2", None, 1)).await?;
            let stale = writer.write(changed(&id, 1, "state 3", Some(1), 2)).await?;
            Ok::<_, tally_store::StoreError>((written, stale))
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), (true, false));
    }
    for index in 0..64 {
        let id = format!("pay_{index}");
        assert_eq!(
            state_of(&test.database, &id).await,
            (2, "state 2".to_string())
        );
        let steps = test.database.payment_steps(&id).await.unwrap();
        assert_eq!(steps.len(), 1, "{id}: only the step of the fresh change");
    }
}

on_both_backends!(
    a_batch_keeps_each_payments_version_check,
    concurrent_checkouts_are_written_together_each_hearing_its_own_outcome,
);
