//! `tally customers` against the real `tally serve`, on SQLite and on PostgreSQL
//! (`TALLY_TEST_DATABASE_URL`): a customer created from the command line
//! (retried with its idempotency key, given or generated), shown masked, shown in clear with
//! `pii:read` and a reason (and audited), and the server's refusals printed with their status
//! and code and a non-zero exit; `tally customers erase` destroying a customer's personal
//! data (refused without admin, without a reason, for nobody); `tally privacy reseal` moving
//! every value to a new key so that a service without the old key reads them all; `tally
//! privacy rotate-blind-index` moving every index to a new key so that a service without the
//! old one finds everybody; and `tally privacy fingerprint-events` rewriting risk events
//! stored with a clear card number.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::process::{Child, Command};
use tally_store::testing::TestDatabase;

mod support;
use support::{
    free_port, start_server, wait_until_healthy, Run, BINARY, BLIND_INDEX_KEY, ENCRYPTION_KEY,
    PRIVACY_KEYS,
};

/// Zhang San of GB 11643-1999's example: born 1949-12-31.
const NATIONAL_ID: &str = "11010519491231002X";
const PHONE: &str = "+86 138 0013 8000";
/// Other valid national ids (MOD 11-2 check character), for other people.
const WANG_WU_NATIONAL_ID: &str = "110105199003071239";
const OTHER_NATIONAL_ID: &str = "310115198506120042";

/// `tally serve` on a test database with privacy keys, and API keys of each role.
struct Served {
    server: Child,
    base: String,
    /// credit:write
    creator: String,
    /// credit:read
    reader: String,
    /// credit:read and pii:read
    compliance: String,
    /// admin (the audit log)
    auditor: String,
    test: TestDatabase,
    _directory: tempfile::TempDir,
}

impl Run {
    /// The JSON answer of a call that succeeded.
    fn answer(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap()
    }

    /// Asserts a refusal printed as `{status}: {code}: {message}` with exit code 1.
    fn assert_refused(&self, status: &str, code: &str) {
        assert_eq!(
            self.code, 1,
            "stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stdout.is_empty(), "{}", self.stdout);
        let mut parts = self.stderr.trim_end().splitn(3, ": ");
        assert_eq!(parts.next(), Some(status), "{}", self.stderr);
        assert_eq!(parts.next(), Some(code), "{}", self.stderr);
        assert!(
            parts.next().is_some_and(|message| !message.is_empty()),
            "no message: {}",
            self.stderr
        );
    }
}

impl Served {
    async fn start(test: TestDatabase) -> Self {
        let now = jiff::Timestamp::now();
        let database = test.database.clone();
        let key = |name: &'static str, scopes: &'static [&'static str]| {
            let database = database.clone();
            async move {
                let scopes: Vec<String> = scopes.iter().map(|scope| scope.to_string()).collect();
                database
                    .create_api_key(name, &scopes, now)
                    .await
                    .unwrap()
                    .secret
                    .expose()
                    .clone()
            }
        };
        let creator = key("onboarding", &["credit:write"]).await;
        let reader = key("collections", &["credit:read"]).await;
        let compliance = key("compliance", &["credit:read", "pii:read"]).await;
        let auditor = key("auditor", &["admin"]).await;
        let directory = tempfile::tempdir().unwrap();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let server = start_server(
            &test.url_for_another_process(),
            port,
            directory.path(),
            PRIVACY_KEYS,
        );
        let served = Self {
            server,
            base,
            creator,
            reader,
            compliance,
            auditor,
            test,
            _directory: directory,
        };
        wait_until_healthy(&reqwest::Client::new(), &served.base).await;
        served
    }

    /// `tally customers --url … [--api-key KEY] ARGUMENTS…`.
    fn customers(&self, key: Option<&str>, arguments: &[&str]) -> Run {
        let mut command = Command::new(BINARY);
        command
            .args(["customers", "--url", &self.base])
            .args(arguments)
            .env_remove("TALLY_API_KEY");
        if let Some(key) = key {
            command.args(["--api-key", key]);
        }
        Run::of(command.output().unwrap())
    }

    fn create(&self, name: &str, phone: &str, national_id: &str, key: Option<&str>) -> Run {
        let mut arguments = vec![
            "create",
            "--name",
            name,
            "--phone",
            phone,
            "--national-id",
            national_id,
        ];
        if let Some(key) = key {
            arguments.extend(["--idempotency-key", key]);
        }
        self.customers(Some(&self.creator), &arguments)
    }

    /// Zhang San, created; his id.
    fn zhang_san(&self) -> String {
        let created = self
            .create("张三", PHONE, NATIONAL_ID, Some("cli-zhang-san"))
            .answer();
        created["id"].as_str().unwrap().to_string()
    }

    async fn count(&self, sql: &str) -> i64 {
        support::scalar(&self.test.database, sql).await
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn assert_masked_zhang_san(customer: &Value, id: &str) {
    assert_eq!(customer["id"], id);
    assert_eq!(customer["masked"], true);
    assert_eq!(customer["name"], "张*");
    assert_eq!(customer["phone"], "*******8000");
    assert_eq!(customer["national_id"], "**************002X");
    assert_eq!(customer["date_of_birth"], "****-**-**");
}

tally_store::on_both_backends!(
    setup = Served::start;
    customers_are_created_and_shown_masked_or_in_clear,
    refusals_print_the_server_code_and_exit_non_zero,
    privacy_reseal_lets_the_old_key_go,
    customers_erase_destroys_personal_data_and_prints_refusals,
    privacy_rotate_blind_index_lets_the_old_key_go,
    privacy_fingerprint_events_rewrites_clear_cards,
);

/// 32 bytes of 10, base64: the blind index key that replaces `BLIND_INDEX_KEY`.
const NEW_BLIND_INDEX_KEY: &str = "CgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgo=";

/// `tally privacy ARGUMENTS… --database-url <the served database>` with `environment`.
fn privacy_command(served: &Served, arguments: &[&str], environment: &[(&str, &str)]) -> Run {
    let output = Command::new(BINARY)
        .arg("privacy")
        .args(arguments)
        .args(["--database-url", &served.test.url_for_another_process()])
        .current_dir(served._directory.path())
        .envs(environment.iter().copied())
        .output()
        .unwrap();
    Run::of(output)
}

async fn customers_erase_destroys_personal_data_and_prints_refusals(served: Served) {
    let id = served.zhang_san();
    // Refused without admin, for nobody, without a reason: nothing is erased.
    served
        .customers(
            Some(&served.creator),
            &["erase", &id, "--reason", "the customer asked"],
        )
        .assert_refused("403 Forbidden", "forbidden");
    let unknown = uuid::Uuid::now_v7().to_string();
    served
        .customers(
            Some(&served.auditor),
            &["erase", &unknown, "--reason", "the customer asked"],
        )
        .assert_refused("404 Not Found", "customer_not_found");
    served
        .customers(Some(&served.auditor), &["erase", &id, "--reason", "  "])
        .assert_refused("400 Bad Request", "reason_required");
    let no_reason = served.customers(Some(&served.auditor), &["erase", &id]);
    assert_eq!(no_reason.code, 2, "{}", no_reason.stderr);
    assert!(
        no_reason.stderr.contains("--reason"),
        "{}",
        no_reason.stderr
    );
    assert_eq!(
        served
            .count("SELECT COUNT(*) FROM customers WHERE phone_index LIKE 'erased:%'")
            .await,
        0
    );
    served
        .customers(Some(&served.reader), &["show", &id])
        .answer();

    // Erased: the fields and indexes destroyed, the erasure recorded, reads answer 410.
    let erased = served
        .customers(
            Some(&served.auditor),
            &["erase", &id, "--reason", "PIPL request 2026-17"],
        )
        .answer();
    assert_eq!(erased["customer_id"], id.as_str());
    assert_eq!(erased["erased_now"], true);
    assert_eq!(erased["erased_by"], "auditor");
    assert_eq!(erased["reason"], "PIPL request 2026-17");
    assert_eq!(
        served
            .count(&format!(
                "SELECT COUNT(*) FROM customers WHERE id = '{id}' AND name = 'erased' \
                 AND phone = 'erased' AND national_id = 'erased' \
                 AND phone_index = 'erased:{id}'"
            ))
            .await,
        1
    );
    assert_eq!(
        served.count("SELECT COUNT(*) FROM customer_erasures").await,
        1
    );
    served
        .customers(Some(&served.reader), &["show", &id])
        .assert_refused("410 Gone", "customer_erased");
    let found = served
        .customers(Some(&served.reader), &["find", "--phone", PHONE])
        .answer();
    assert_eq!(found["customers"], serde_json::json!([]));
    // Again: the first erasure, unchanged.
    let again = served
        .customers(
            Some(&served.auditor),
            &["erase", &id, "--reason", "asked twice"],
        )
        .answer();
    assert_eq!(again["erased_now"], false);
    assert_eq!(again["reason"], "PIPL request 2026-17");
    // The same person can be a customer again, as a new one.
    let renewed = served
        .create("张三", PHONE, NATIONAL_ID, Some("cli-zhang-san-again"))
        .answer();
    assert_ne!(renewed["id"], id.as_str());
}

async fn privacy_rotate_blind_index_lets_the_old_key_go(served: Served) {
    let id = served.zhang_san();
    let wang_wu = served
        .create("王五", "13912345678", WANG_WU_NATIONAL_ID, None)
        .answer();
    let erased = served
        .create("李四", "13712345678", OTHER_NATIONAL_ID, None)
        .answer();
    let erased = erased["id"].as_str().unwrap().to_string();
    served
        .customers(
            Some(&served.auditor),
            &["erase", &erased, "--reason", "the customer asked"],
        )
        .answer();
    let rotating = [
        ("TALLY__PRIVACY__ENCRYPTION_KEYS__K1", ENCRYPTION_KEY),
        ("TALLY__PRIVACY__ACTIVE_ENCRYPTION_KEY", "k1"),
        ("TALLY__PRIVACY__BLIND_INDEX_KEY", NEW_BLIND_INDEX_KEY),
        ("TALLY__PRIVACY__PREVIOUS_BLIND_INDEX_KEY", BLIND_INDEX_KEY),
    ];
    // Without the fingerprint key, every card and address fingerprint would change with the
    // key: refused (exit 2, a local problem) before anything is written.
    let refused = privacy_command(&served, &["rotate-blind-index"], &rotating);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("risk_fingerprint_key"),
        "{}",
        refused.stderr
    );
    let mut rotating = rotating.to_vec();
    rotating.push(("TALLY__PRIVACY__RISK_FINGERPRINT_KEY", BLIND_INDEX_KEY));
    // Stopped after the first customer (as if killed), then resumed from where it stopped.
    let ids = {
        let mut ids = vec![
            id.clone(),
            wang_wu["id"].as_str().unwrap().to_string(),
            erased,
        ];
        ids.sort();
        ids
    };
    let resumed = privacy_command(
        &served,
        &["rotate-blind-index", "--page-size", "1", "--after", &ids[0]],
        &rotating,
    )
    .answer();
    assert_eq!(resumed["customers"], 2);
    assert_eq!(resumed["last_customer"], ids[2].as_str());
    let report = privacy_command(
        &served,
        &["rotate-blind-index", "--page-size", "1"],
        &rotating,
    )
    .answer();
    assert_eq!(report["customers"], 3);
    assert_eq!(report["customers_erased"], 1);
    assert_eq!(
        report["customers_rekeyed"].as_u64().unwrap()
            + report["customers_current"].as_u64().unwrap(),
        2
    );
    let again = privacy_command(&served, &["rotate-blind-index"], &rotating).answer();
    assert_eq!(
        (&again["customers_rekeyed"], &again["customers_current"]),
        (&0.into(), &2.into())
    );

    // A service with the new key only finds both customers by phone.
    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(
        &served.test.url_for_another_process(),
        port,
        directory.path(),
        &[
            ("TALLY__PRIVACY__ENCRYPTION_KEYS__K1", ENCRYPTION_KEY),
            ("TALLY__PRIVACY__ACTIVE_ENCRYPTION_KEY", "k1"),
            ("TALLY__PRIVACY__BLIND_INDEX_KEY", NEW_BLIND_INDEX_KEY),
            ("TALLY__PRIVACY__RISK_FINGERPRINT_KEY", BLIND_INDEX_KEY),
        ],
    );
    wait_until_healthy(&reqwest::Client::new(), &base).await;
    let find = |phone: &str| {
        let output = Command::new(BINARY)
            .args(["customers", "--url", &base, "--api-key", &served.reader])
            .args(["find", "--phone", phone])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    assert_eq!(find(PHONE)["customers"][0]["id"], id.as_str());
    assert_eq!(find("13912345678")["customers"][0]["id"], wang_wu["id"]);
    let _ = server.kill();
    let _ = server.wait();
}

async fn privacy_fingerprint_events_rewrites_clear_cards(served: Served) {
    // A risk event stored before cards were fingerprinted at the edge, and a list entry.
    let body = serde_json::json!({
        "id": "old-login", "kind": "login", "at": "2026-05-01T09:00:00Z",
        "customer": "lender-customer-1", "card": "4111 1111 1111 1111",
        "address": "88 Jianguo Road",
    });
    let store = tally_store::risk::RiskStore::new(served.test.database.clone());
    let event = tally_store::risk::EventRow {
        sequence: 1,
        event_id: "old-login".into(),
        customer: "lender-customer-1".into(),
        at: 1_777_626_000_000_000,
        body: body.to_string(),
        action: "approve".into(),
        version: 1,
        decision: "{}".into(),
        decided_at: 1_777_626_000_000_000,
    };
    store
        .insert_events(&[tally_store::risk::DecisionRows::event(event)])
        .await
        .unwrap();
    store
        .insert_list_entry(&tally_store::risk::ListEntryRow {
            id: "entry-1".into(),
            kind: "block".into(),
            field: "card".into(),
            value: "4000 0000 0000 0002".into(),
            reason: "stolen".into(),
            source: "analyst".into(),
            added_at: 0,
            added_by: "analyst".into(),
            expires_at: None,
        })
        .await
        .unwrap();
    let clear = "SELECT (SELECT COUNT(*) FROM risk_events WHERE body LIKE '%4111%' \
                 OR body LIKE '%Jianguo%') + (SELECT COUNT(*) FROM risk_list_entries \
                 WHERE value LIKE '4000%')";
    assert_eq!(served.count(clear).await, 2);

    // Without keys: refused, nothing written.
    let refused = privacy_command(&served, &["fingerprint-events"], &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert_eq!(served.count(clear).await, 2);

    let run = privacy_command(
        &served,
        &["fingerprint-events", "--page-size", "1"],
        PRIVACY_KEYS,
    );
    assert!(
        run.stderr.contains("events 1 (1 rewritten), last event 1"),
        "progress: {}",
        run.stderr
    );
    let report = run.answer();
    assert_eq!(
        (
            &report["events_rewritten"],
            &report["list_entries_rewritten"]
        ),
        (&1.into(), &1.into())
    );
    assert_eq!(served.count(clear).await, 0);
    let again = privacy_command(&served, &["fingerprint-events"], PRIVACY_KEYS).answer();
    assert_eq!(
        (&again["events"], &again["events_rewritten"]),
        (&1.into(), &0.into())
    );
}

/// 32 bytes of 8, base64: the key that replaces `ENCRYPTION_KEY`.
const NEW_ENCRYPTION_KEY: &str = "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=";

/// `tally privacy reseal` on the served database with `environment`.
fn reseal(served: &Served, environment: &[(&str, &str)]) -> Run {
    let output = Command::new(BINARY)
        .args([
            "privacy",
            "reseal",
            "--page-size",
            "1",
            "--database-url",
            &served.test.url_for_another_process(),
        ])
        .current_dir(served._directory.path())
        .envs(environment.iter().copied())
        .output()
        .unwrap();
    Run::of(output)
}

async fn privacy_reseal_lets_the_old_key_go(served: Served) {
    let id = served.zhang_san();
    let wang_wu = served
        .create("王五", "13912345678", WANG_WU_NATIONAL_ID, None)
        .answer();
    // Without keys the command says which are missing (exit 2, as for every local problem)
    // and changes nothing.
    let refused = reseal(&served, &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("no active encryption key"),
        "{}",
        refused.stderr
    );

    // Key k2 becomes active beside k1; the running service is left running (the walk is
    // safe beside it).
    let rotated = [
        ("TALLY__PRIVACY__ENCRYPTION_KEYS__K1", ENCRYPTION_KEY),
        ("TALLY__PRIVACY__ENCRYPTION_KEYS__K2", NEW_ENCRYPTION_KEY),
        ("TALLY__PRIVACY__ACTIVE_ENCRYPTION_KEY", "k2"),
        ("TALLY__PRIVACY__BLIND_INDEX_KEY", BLIND_INDEX_KEY),
    ];
    let report = reseal(&served, &rotated).answer();
    assert_eq!(report["active_key"], "k2");
    assert_eq!(report["customers"], 2);
    assert_eq!(report["customers_resealed"], 2);
    assert_eq!(report["values_resealed"], 8);
    assert_eq!(report["values_by_key_before"]["k1"], 8);
    let again = reseal(&served, &rotated).answer();
    assert_eq!(
        (&again["customers"], &again["customers_resealed"]),
        (&2.into(), &0.into())
    );

    // A service with k2 only reads both customers in clear.
    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(
        &served.test.url_for_another_process(),
        port,
        directory.path(),
        &[
            ("TALLY__PRIVACY__ENCRYPTION_KEYS__K2", NEW_ENCRYPTION_KEY),
            ("TALLY__PRIVACY__ACTIVE_ENCRYPTION_KEY", "k2"),
            ("TALLY__PRIVACY__BLIND_INDEX_KEY", BLIND_INDEX_KEY),
        ],
    );
    wait_until_healthy(&reqwest::Client::new(), &base).await;
    let show = |id: &str| {
        let output = Command::new(BINARY)
            .args(["customers", "--url", &base, "--api-key", &served.compliance])
            .args(["show", id, "--unmasked", "--reason", "key rotation check"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    assert_eq!(show(&id)["phone"], "+8613800138000");
    assert_eq!(show(wang_wu["id"].as_str().unwrap())["name"], "王五");
    let _ = server.kill();
    let _ = server.wait();
}

async fn customers_are_created_and_shown_masked_or_in_clear(served: Served) {
    // Created with a given idempotency key: answered masked, nothing printed on stderr.
    let created = served.create("张三", PHONE, NATIONAL_ID, Some("cli-zhang-san"));
    assert!(created.stderr.is_empty(), "{}", created.stderr);
    let created = created.answer();
    let id = created["id"].as_str().unwrap().to_string();
    assert_masked_zhang_san(&created, &id);
    // The same request with the same key is the same customer.
    let replayed = served
        .create("张三", "138-0013-8000", NATIONAL_ID, Some("cli-zhang-san"))
        .answer();
    assert_eq!(replayed["id"], created["id"]);

    // Without a key, one is made and printed, so the creation can be retried with it.
    let wang_wu = served.create("王五", "13912345678", WANG_WU_NATIONAL_ID, None);
    let generated = wang_wu
        .stderr
        .trim_end()
        .strip_prefix("idempotency key: ")
        .unwrap_or_else(|| panic!("no idempotency key printed: {}", wang_wu.stderr))
        .to_string();
    let wang_wu = wang_wu.answer();
    let retried = served
        .create("王五", "13912345678", WANG_WU_NATIONAL_ID, Some(&generated))
        .answer();
    assert_eq!(retried["id"], wang_wu["id"]);
    assert_ne!(wang_wu["id"], created["id"]);
    assert_eq!(served.count("SELECT COUNT(*) FROM customers").await, 2);

    // Masked for a credit:read key.
    let shown = served
        .customers(Some(&served.reader), &["show", &id])
        .answer();
    assert_masked_zhang_san(&shown, &id);
    assert_eq!(served.count("SELECT COUNT(*) FROM pii_reads").await, 0);

    // In clear for pii:read with a reason; each field shown is on the audit log.
    let clear = served
        .customers(
            Some(&served.compliance),
            &["show", &id, "--unmasked", "--reason", "ticket CS-1234 & co"],
        )
        .answer();
    assert_eq!(clear["id"], id.as_str());
    assert_eq!(clear["masked"], false);
    assert_eq!(clear["name"], "张三");
    assert_eq!(clear["phone"], "+8613800138000");
    assert_eq!(clear["national_id"], NATIONAL_ID);
    assert_eq!(clear["date_of_birth"], "1949-12-31");
    assert_eq!(
        served
            .count(&format!(
                "SELECT COUNT(*) FROM pii_reads WHERE customer_id = '{id}' \
                 AND reason LIKE 'v1:%' AND principal = 'compliance'"
            ))
            .await,
        4
    );
    // The audit log, a page of one at a time, then the rest after it.
    let first = served
        .customers(Some(&served.auditor), &["reads", &id, "--limit", "1"])
        .answer();
    assert_eq!(first["reads"].as_array().unwrap().len(), 1);
    assert_eq!(first["reads"][0]["reason"], "ticket CS-1234 & co");
    assert_eq!(first["reads"][0]["principal"], "compliance");
    let after = first["reads"][0]["id"].as_str().unwrap().to_string();
    let rest = served
        .customers(Some(&served.auditor), &["reads", &id, "--after", &after])
        .answer();
    assert_eq!(rest["reads"].as_array().unwrap().len(), 3);
    // Reading the audit log needs admin.
    served
        .customers(Some(&served.compliance), &["reads", &id])
        .assert_refused("403 Forbidden", "forbidden");
    // Found by phone or national id written another way, masked; each lookup audited.
    for arguments in [
        &["find", "--phone", "138-0013-8000"][..],
        &[
            "find",
            "--national-id",
            "11010519491231002x",
            "--reason",
            "call 7",
        ][..],
    ] {
        let found = served.customers(Some(&served.reader), arguments).answer();
        assert_masked_zhang_san(&found["customers"][0], &id);
    }
    let nobody = served
        .customers(Some(&served.reader), &["find", "--phone", "13700137000"])
        .answer();
    assert_eq!(nobody["customers"], serde_json::json!([]));
    assert_eq!(served.count("SELECT COUNT(*) FROM pii_lookups").await, 3);
    let lookups = served
        .customers(Some(&served.auditor), &["lookups", "--limit", "2"])
        .answer();
    assert_eq!(lookups["lookups"][0]["customer_id"], id.as_str());
    assert_eq!(lookups["lookups"][1]["reason"], "call 7");
    let after = lookups["next_after"].as_str().unwrap().to_string();
    let rest = served
        .customers(Some(&served.auditor), &["lookups", "--after", &after])
        .answer();
    assert_eq!(rest["lookups"][0]["customer_id"], serde_json::Value::Null);
    assert_eq!(
        served
            .count("SELECT COUNT(*) FROM pii_lookups WHERE reason = 'call 7'")
            .await,
        1
    );
}

async fn refusals_print_the_server_code_and_exit_non_zero(served: Served) {
    let id = served.zhang_san();

    // One person is one customer: the same phone written another way, or the same id.
    served
        .create(
            "李四",
            "138-0013-8000",
            OTHER_NATIONAL_ID,
            Some("cli-li-si"),
        )
        .assert_refused("409 Conflict", "customer_phone_taken");
    served
        .create("李四", "13912345678", NATIONAL_ID, Some("cli-li-si-2"))
        .assert_refused("409 Conflict", "customer_national_id_taken");
    // An idempotency key already used for another request.
    served
        .create(
            "李四",
            "13912345678",
            OTHER_NATIONAL_ID,
            Some("cli-zhang-san"),
        )
        .assert_refused("409 Conflict", "idempotency_key_reused");
    // The server's own checks of the input.
    served
        .create(
            "李四",
            "13912345678",
            "310115198506120041",
            Some("cli-li-si-3"),
        )
        .assert_refused("400 Bad Request", "national_id_checksum_invalid");
    assert_eq!(served.count("SELECT COUNT(*) FROM customers").await, 1);

    // An unknown customer, and a malformed id.
    let unknown = uuid::Uuid::now_v7().to_string();
    served
        .customers(Some(&served.reader), &["show", &unknown])
        .assert_refused("404 Not Found", "customer_not_found");
    served
        .customers(Some(&served.reader), &["show", "not/a-customer"])
        .assert_refused("400 Bad Request", "invalid_id");

    // In clear without a reason, or without pii:read: refused, and nothing is audited.
    served
        .customers(Some(&served.compliance), &["show", &id, "--unmasked"])
        .assert_refused("400 Bad Request", "reason_required");
    served
        .customers(
            Some(&served.compliance),
            &["show", &id, "--unmasked", "--reason", "  "],
        )
        .assert_refused("400 Bad Request", "reason_required");
    served
        .customers(
            Some(&served.reader),
            &["show", &id, "--unmasked", "--reason", "ticket CS-1234"],
        )
        .assert_refused("403 Forbidden", "forbidden");
    assert_eq!(served.count("SELECT COUNT(*) FROM pii_reads").await, 0);

    // Mistakes of the command line itself exit with 2 and call nothing.
    let no_key = served.customers(None, &["show", &id]);
    assert_eq!(no_key.code, 2, "{}", no_key.stderr);
    assert!(
        no_key.stderr.contains("an API key is needed"),
        "{}",
        no_key.stderr
    );
    let reason_alone = served.customers(
        Some(&served.compliance),
        &["show", &id, "--reason", "ticket CS-1234"],
    );
    assert_eq!(reason_alone.code, 2, "{}", reason_alone.stderr);
    assert!(
        reason_alone.stderr.contains("--unmasked"),
        "{}",
        reason_alone.stderr
    );
    assert_eq!(served.count("SELECT COUNT(*) FROM pii_reads").await, 0);
}
