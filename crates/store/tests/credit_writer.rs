//! Group commit of credit operations' writes: operations written together each keep their
//! account's version check and their key's uniqueness (a refused one writes nothing of
//! itself, the others land), completions are written with them, and many operations
//! written at once through the `CreditWriter` all land, each hearing its own outcome.
#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use tally_core::{Amount, Currency};
use tally_credit::{Account, Cycle};
use tally_store::credit::CreditAccountId;
use tally_store::credit_operations::writer::CreditWriter;
use tally_store::credit_operations::{CreditWrite, NewOperation, OperationWritten};
use tally_store::on_both_backends;
use tally_store::testing::TestDatabase;
use tally_store::Database;

fn at() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn account(limit_minor: i64) -> Account {
    Account::open(
        Amount::new(limit_minor, Currency::CNY),
        Cycle::new(5, 9).unwrap(),
    )
    .unwrap()
}

fn operation<'a>(key: &'a str, pending: bool) -> NewOperation<'a> {
    NewOperation {
        key,
        kind: "authorize",
        request_hash: "hash",
        answer_code: 1,
        answer: "{}",
        commands: "[]",
        pending,
        created_at: at(),
    }
}

/// A new account of limit `limit_minor`, opened under key `key`.
async fn opened(database: &Database, key: &str, limit_minor: i64) -> CreditAccountId {
    let id = std::cell::Cell::new(None);
    database
        .open_credit_account(
            Some(&account(limit_minor)),
            None,
            operation(key, false),
            |new| {
                id.set(new);
                (1, "{}".to_string())
            },
        )
        .await
        .unwrap()
        .unwrap();
    id.get().unwrap()
}

/// Account `id`'s version and limit in minor units, as stored.
async fn stored(database: &Database, id: CreditAccountId) -> (i64, i64) {
    let stored = database.stored_credit_account(id).await.unwrap().unwrap();
    (stored.version, stored.account.limit.minor())
}

fn change(id: CreditAccountId, version: i64, limit_minor: i64, key: &str) -> CreditWrite {
    CreditWrite::operation(id, version, &account(limit_minor), operation(key, true)).unwrap()
}

async fn a_batch_keeps_each_operations_version_check_and_key(test: TestDatabase) {
    let database = &test.database;
    let first = opened(database, "open 1", 1_000).await;
    let second = opened(database, "open 2", 2_000).await;
    let third = opened(database, "open 3", 3_000).await;
    let (version, _) = stored(database, first).await;
    let batch = [
        change(first, version, 1_100, "op a"),
        // From a version already replaced: refused, nothing of it written.
        change(second, version + 7, 2_200, "op b"),
        // Under a key stored already: refused, its account left as it was.
        change(third, version, 3_300, "op a"),
        CreditWrite::Done {
            key: "op a".to_string(),
        },
    ];
    let writes: Vec<&CreditWrite> = batch.iter().collect();
    let written = database.write_credit_batch(&writes).await.unwrap();
    assert_eq!(
        written,
        vec![
            OperationWritten::Written,
            OperationWritten::VersionChanged,
            OperationWritten::KeyExists,
            OperationWritten::Written,
        ]
    );
    assert_eq!(stored(database, first).await, (version + 1, 1_100));
    assert_eq!(stored(database, second).await, (version, 2_000));
    assert_eq!(stored(database, third).await, (version, 3_000));
    let op_a = database.credit_operation("op a").await.unwrap().unwrap();
    assert!(
        !op_a.pending,
        "the completion in the same batch marked it done"
    );
    assert!(database.credit_operation("op b").await.unwrap().is_none());
    // A batch written alone answers as the single write does.
    let again = change(second, version, 2_200, "op b");
    assert_eq!(
        database.write_credit_batch(&[&again]).await.unwrap(),
        vec![OperationWritten::Written]
    );
    assert!(
        database
            .credit_operation("op b")
            .await
            .unwrap()
            .unwrap()
            .pending
    );
}

async fn concurrent_operations_are_written_together_each_hearing_its_own_outcome(
    test: TestDatabase,
) {
    let mut accounts = Vec::new();
    for index in 0..32 {
        accounts.push(opened(&test.database, &format!("open {index}"), 1_000).await);
    }
    let writer = CreditWriter::start(test.database.clone());
    let mut tasks = Vec::new();
    for (index, id) in accounts.iter().copied().enumerate() {
        let (writer, database) = (writer.clone(), test.database.clone());
        tasks.push(tokio::spawn(async move {
            let (version, _) = stored(&database, id).await;
            let key = format!("op {index}");
            let written = writer
                .write(change(id, version, 5_000 + index as i64, &key))
                .await?;
            // The same version again: refused, alone.
            let stale = writer
                .write(change(id, version, 9_999, &format!("stale {index}")))
                .await?;
            let done = writer.write(CreditWrite::Done { key }).await?;
            Ok::<_, tally_store::StoreError>((written, stale, done))
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap(),
            (
                OperationWritten::Written,
                OperationWritten::VersionChanged,
                OperationWritten::Written
            )
        );
    }
    for (index, id) in accounts.iter().copied().enumerate() {
        let (_, limit) = stored(&test.database, id).await;
        assert_eq!(limit, 5_000 + index as i64);
        let operation = test
            .database
            .credit_operation(&format!("op {index}"))
            .await
            .unwrap()
            .unwrap();
        assert!(!operation.pending);
        assert!(test
            .database
            .credit_operation(&format!("stale {index}"))
            .await
            .unwrap()
            .is_none());
    }
}

on_both_backends!(
    a_batch_keeps_each_operations_version_check_and_key,
    concurrent_operations_are_written_together_each_hearing_its_own_outcome,
);
