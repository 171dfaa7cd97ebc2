//! What the reconciliation tests share: a run of Tally's books stored by the service, in
//! which the bank's file has three rows Tally's books do not, and the ledger accounts an
//! adjusting entry posts to.

use super::TestApp;
use axum::http::StatusCode;
use serde_json::json;
use tally_core::Clock;
use tally_service::recon::{reconcile_books, BooksRunOptions};

/// The date of the run.
pub const RUN: &str = "2026-04-29";
/// The run's exceptions, in the order the bank's file lists their rows.
pub const FIRST: &str = "rex_20260429_00000001";
pub const SECOND: &str = "rex_20260429_00000002";
pub const THIRD: &str = "rex_20260429_00000003";

/// The bank settled three operations Tally's books never recorded.
pub const BANK_FILE: &str =
    "record_type,value_date,reference,channel_id,card_last_four,amount,currency,fee\n\
capture,2026-04-29,bank-only-1,cap_1,4242,10.00,CNY,0.06\n\
capture,2026-04-29,bank-only-2,cap_2,4242,20.00,CNY,0.12\n\
refund,2026-04-29,bank-only-3,ref_3,4242,5.00,CNY,0.00\n\
trailer,2026-04-29,3,,,35.00,CNY,0.18\n";

/// Reconciles Tally's books against [`BANK_FILE`] for [`RUN`] (one thread) and opens the
/// suspense and bank-differences accounts with `ledger_key`; the work directory, kept as
/// long as the run is read.
pub async fn books_run(app: &TestApp, ledger_key: &str) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("settlement-2026-04-29.csv");
    std::fs::write(&file, BANK_FILE).unwrap();
    let mut options = BooksRunOptions::new(RUN.parse().unwrap(), file, work.path().join("runs"));
    options.threads = 1;
    reconcile_books(&app.database, &options, app.clock.now())
        .await
        .unwrap();
    for code in ["recon-suspense-CNY", "bank-differences-CNY"] {
        let (status, body) = app
            .call(
                "POST",
                "/v1/accounts",
                ledger_key,
                Some(code),
                Some(json!({"code": code, "kind": "asset", "currency": "CNY"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    work
}
