//! `tally keys` on SQLite and, when `TALLY_TEST_DATABASE_URL` is set, on PostgreSQL: a key
//! created with an expiry, listed without its secret, rotated (the old key stops after its
//! grace, the new one has the same name and scopes), and revoked; a key limited to account
//! namespaces, listed with them and rotated with them; refusals exit non-zero.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use tally_store::testing::TestDatabase;

mod support;
use support::{Run, BINARY};

fn keys(test: &TestDatabase, arguments: &[&str]) -> Run {
    let output = Command::new(BINARY)
        .arg("keys")
        .args(arguments)
        .args(["--database-url", &test.url_for_another_process()])
        .output()
        .unwrap();
    Run::of(output)
}

/// The `tally keys list` line of key `id`, split at tabs.
fn listed(test: &TestDatabase, id: &str) -> Vec<String> {
    let run = keys(test, &["list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|line| line.starts_with(id))
        .unwrap_or_else(|| panic!("{id} not in {}", run.stdout));
    line.split('\t').map(str::to_string).collect()
}

async fn given(test: TestDatabase) -> TestDatabase {
    test
}

tally_store::on_both_backends!(
    setup = given;
    keys_are_created_listed_rotated_and_revoked,
    keys_limited_to_account_namespaces_are_listed_and_rotated_with_them,
);

async fn keys_are_created_listed_rotated_and_revoked(test: TestDatabase) {
    let database = &test.database;
    let now = jiff::Timestamp::now();
    let refused = keys(
        &test,
        &[
            "create",
            "--name",
            "ci",
            "--scope",
            "ledger:read",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert_ne!(refused.code, 0, "an expiry in the past: {}", refused.stdout);
    let created = keys(
        &test,
        &[
            "create",
            "--name",
            "ci",
            "--scope",
            "ledger:read",
            "--scope",
            "risk:admin",
            "--expires-at",
            "2999-01-01T00:00:00Z",
        ],
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    let secret = created.stdout.trim().to_string();
    let key = database.find_api_key(&secret, now).await.unwrap().unwrap();
    assert_eq!(key.scopes, ["ledger:read", "risk:admin"]);
    assert_eq!(
        key.expires_at,
        Some("2999-01-01T00:00:00Z".parse().unwrap())
    );
    let line = listed(&test, &key.id);
    assert_eq!(
        &line[1..4],
        ["ci", "ledger:read risk:admin", "live"],
        "{line:?}"
    );
    assert!(!keys(&test, &["list"]).stdout.contains(&secret));

    let rotated = keys(&test, &["rotate", &key.id, "--grace-seconds", "0"]);
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let new_secret = rotated.stdout.trim().to_string();
    assert_ne!(new_secret, secret);
    let later = jiff::Timestamp::now();
    assert!(database
        .find_api_key(&secret, later)
        .await
        .unwrap()
        .is_none());
    let new_key = database
        .find_api_key(&new_secret, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (new_key.name.as_str(), &new_key.scopes),
        ("ci", &key.scopes)
    );
    assert_eq!(new_key.rotated_from.as_deref(), Some(key.id.as_str()));
    assert_eq!(listed(&test, &key.id)[3], "expired");
    assert_eq!(listed(&test, &new_key.id)[7], key.id);

    let revoked = keys(&test, &["revoke", &new_key.id]);
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert!(database
        .find_api_key(&new_secret, later)
        .await
        .unwrap()
        .is_none());
    assert_eq!(listed(&test, &new_key.id)[3], "revoked");
    let again = keys(&test, &["revoke", &new_key.id]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already revoked"), "{}", again.stderr);
    let unknown = keys(&test, &["rotate", "no-such-key"]);
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("no API key"), "{}", unknown.stderr);
}

async fn keys_limited_to_account_namespaces_are_listed_and_rotated_with_them(test: TestDatabase) {
    let database = &test.database;
    let now = jiff::Timestamp::now();
    let created = keys(
        &test,
        &[
            "create",
            "--name",
            "merchant-a",
            "--scope",
            "ledger:write",
            "--account-namespace",
            "merchant-a-",
            "--account-namespace",
            "shop a-",
        ],
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(
        created
            .stderr
            .contains(r#"limited to account codes starting with "merchant-a-" "shop a-""#),
        "{}",
        created.stderr
    );
    let key = database
        .find_api_key(created.stdout.trim(), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.account_namespaces, ["merchant-a-", "shop a-"]);
    assert_eq!(listed(&test, &key.id)[8], r#""merchant-a-" "shop a-""#);
    let rotated = keys(&test, &["rotate", &key.id, "--grace-seconds", "0"]);
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let new_key = database
        .find_api_key(rotated.stdout.trim(), jiff::Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new_key.account_namespaces, key.account_namespaces);
    // A key without namespaces lists `-`; a blank namespace is refused.
    let plain = keys(
        &test,
        &["create", "--name", "plain", "--scope", "ledger:read"],
    );
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let plain = database
        .find_api_key(plain.stdout.trim(), jiff::Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed(&test, &plain.id)[8], "-");
    let blank = keys(
        &test,
        &[
            "create",
            "--name",
            "blank",
            "--scope",
            "ledger:read",
            "--account-namespace",
            " ",
        ],
    );
    assert_ne!(blank.code, 0, "{}", blank.stdout);
    assert!(
        blank.stderr.contains("account namespace"),
        "{}",
        blank.stderr
    );
}
