//! The operations console in a real browser: `tally serve` (the binary) on a temporary
//! SQLite file, data made through the API ([`lender`]), and Debian's chromium, headless,
//! driven over WebDriver ([`driver`]) as the people who use the console would: an analyst
//! signs in, works a held order and a stolen-account claim from the queue to approval,
//! claims two reviews at once, finds a customer by phone and shows the phone in clear with a
//! reason; a risk lead uploads a rule set and back-tests it (precision and recall); a
//! compliance officer finds that read and that lookup in the audit; a finance clerk works a
//! reconciliation exception to resolved; each signs out and is then refused.
//! Every page shown is screenshotted (to `$TALLY_SCREENSHOT_DIR`, or the target directory)
//! and checked with axe-core: a serious or critical violation fails the test.
//!
//! Needs chromium, chromedriver and axe-core from `.ci/browser-setup`; fails naming that
//! script without them unless `TALLY_TEST_SKIP_BROWSER=1`. Each story runs on SQLite and on
//! PostgreSQL (a fresh schema on `TALLY_TEST_DATABASE_URL`'s server, as the other tests get
//! one; skipped only under `TALLY_TEST_SKIP_POSTGRES=1`).
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod demo;
mod driver;
mod lender;

/// The two stories run one after the other: each drives a chromium, and the machines that
/// run the tests have few cores.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use driver::{Browser, TABLET};
use lender::{
    make_lender, Api, Lender, People, ReconRun, STRICTER_ADDRESS_CONDITION_LINE,
    STRICTER_ADDRESS_RULES, ZHANG_SAN_PHONE_IN_CLEAR, ZHANG_SAN_PHONE_MASKED,
};
use std::path::PathBuf;
use support::{create_key, free_port, start_server, wait_until_healthy, BINARY, PRIVACY_KEYS};
use tally_store::testing::TestDatabase;

/// The database a story's `tally serve` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A new, empty database for a story: a SQLite file in `directory`, or a fresh, migrated
/// PostgreSQL schema (kept for inspection until a later run sweeps it). The URL reaches it
/// from another process; `None` when PostgreSQL is skipped on purpose.
async fn new_database(backend: Backend, directory: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => {
            let (url, database) = support::sqlite_database(directory, "console.db").await;
            database.close().await;
            Some(url)
        }
        Backend::Postgres => {
            let test = TestDatabase::postgres().await?;
            test.database.close().await;
            Some(test.url_for_another_process())
        }
    }
}

/// Where the screenshots of a story on `backend` go: `$TALLY_SCREENSHOT_DIR`, or the target
/// directory's scratch space (never the repository), then `-sqlite` or `-postgres`.
fn screenshot_directory(backend: Backend) -> PathBuf {
    let mut directory = std::env::var_os("TALLY_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots"))
        .into_os_string();
    directory.push("-");
    directory.push(backend.name());
    PathBuf::from(directory)
}

/// `tally serve` on a new database, killed when dropped.
struct Served {
    server: std::process::Child,
    base: String,
    url: String,
    directory: tempfile::TempDir,
}

impl Served {
    async fn start(backend: Backend) -> Option<Self> {
        let directory = tempfile::tempdir().unwrap();
        let url = new_database(backend, directory.path()).await?;
        let port = free_port();
        let server = start_server(&url, port, directory.path(), PRIVACY_KEYS);
        let served = Self {
            server,
            base: format!("http://127.0.0.1:{port}"),
            url,
            directory,
        };
        wait_until_healthy(&reqwest::Client::new(), &served.base).await;
        Some(served)
    }

    /// `tally keys create` for `name` with `scopes`: the key's secret.
    fn key(&self, name: &str, scopes: &[&str]) -> String {
        create_key(&self.url, self.directory.path(), name, scopes)
    }

    /// `tally recon books` of a past day against a bank file with three settlements the
    /// books do not have (this lender takes no card payments): a run with three exceptions.
    fn reconcile_a_day(&self) -> ReconRun {
        let date = "2026-04-29";
        let file = self.directory.path().join("settlement-2026-04-29.csv");
        std::fs::write(
            &file,
            "record_type,value_date,reference,channel_id,card_last_four,amount,currency,fee\n\
             capture,2026-04-29,bank-only-1,cap_1,4242,10.00,CNY,0.06\n\
             capture,2026-04-29,bank-only-2,cap_2,4242,20.00,CNY,0.12\n\
             refund,2026-04-29,bank-only-3,ref_3,4242,5.00,CNY,0.00\n\
             trailer,2026-04-29,3,,,35.00,CNY,0.18\n",
        )
        .unwrap();
        let work = self.directory.path().join("recon");
        let output = std::process::Command::new(BINARY)
            .args([
                "recon",
                "books",
                "--date",
                date,
                "--database-url",
                &self.url,
            ])
            .arg("--settlement-file")
            .arg(&file)
            .arg("--work-dir")
            .arg(&work)
            .current_dir(self.directory.path())
            .env("TALLY_LOG", "warn")
            .output()
            .unwrap();
        // Exit code 1: the run opened exceptions.
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ReconRun {
            business_date: date.to_string(),
            reference: "bank-only-2".to_string(),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

mod the_console_is_worked_in_a_browser {
    use super::{the_console_is_worked_in_a_browser_on, Backend};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        the_console_is_worked_in_a_browser_on(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        the_console_is_worked_in_a_browser_on(Backend::Postgres).await;
    }
}

async fn the_console_is_worked_in_a_browser_on(backend: Backend) {
    let Some(tools) = driver::tools_or_skip() else {
        return;
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(served) = Served::start(backend).await else {
        return;
    };
    let client = reqwest::Client::new();
    let onboarding_key = served.key("onboarding", &["credit:write"]);
    let events_key = served.key("checkout", &["risk:write"]);
    let api = Api {
        client: &client,
        base: &served.base,
        onboarding_key: &onboarding_key,
        events_key: &events_key,
    };
    let people = People {
        analyst_key: served.key(
            "Li Na, risk analyst",
            &["risk:analyst", "credit:read", "pii:read"],
        ),
        risk_lead_key: served.key("Wu Lei, risk lead", &["risk:admin"]),
        compliance_key: served.key("Chen Jie, compliance", &["admin"]),
        clerk_key: served.key("Sun Li, finance clerk", &["recon:read", "recon:write"]),
    };
    let recon = served.reconcile_a_day();
    let lender = make_lender(&api, people, recon).await;

    let screenshots = screenshot_directory(backend);
    driver::run_story(&tools, &served.base, &screenshots, |browser| {
        story(browser, lender)
    })
    .await;
}

async fn story(mut browser: Browser, lender: Lender) {
    // Signed out, a page sends the browser to sign-in; a wrong key is refused there.
    browser.go("/console/cases").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.check_that_the_accessibility_check_can_fail().await;
    browser.look("sign-in").await;
    browser.type_into("#key", "tally_not-a-key").await;
    browser.click("section.sign-in button[type=submit]").await;
    assert_eq!(
        browser.text("p.error").await,
        "unknown, expired or revoked API key"
    );
    browser.look("sign-in-refused").await;

    // The analyst signs in: the overview, and only the pages the key's scopes open.
    browser.type_into("#key", &lender.analyst_key).await;
    browser.click("section.sign-in button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/overview");
    assert_eq!(
        browser.texts("header.top nav a").await,
        ["Overview", "Risk cases", "Customers"]
    );
    assert!(browser
        .text("header.top .who")
        .await
        .contains("Li Na, risk analyst"));
    browser.look("overview").await;

    work_the_held_order(&mut browser, &lender).await;
    confirm_the_stolen_account_claim(&mut browser, &lender).await;
    claim_the_reviews_at_once(&mut browser).await;
    reveal_the_phone(&mut browser, &lender).await;

    // The audit is not the analyst's: neither its link nor the page.
    browser.go("/console/audit").await;
    assert_eq!(browser.text("main h1").await, "403 Forbidden");
    // The refusal keeps the navigation and the sign-out.
    assert_eq!(
        browser.texts("header.top nav a").await,
        ["Overview", "Risk cases", "Customers"]
    );
    browser.look("audit-forbidden").await;

    sign_out(&mut browser).await;
    upload_a_rule_set(&mut browser, &lender).await;
    back_test_the_candidate(&mut browser).await;
    sign_out(&mut browser).await;
    read_the_audit(&mut browser, &lender).await;
    approve_the_rule_set(&mut browser).await;
    sign_out(&mut browser).await;
    resolve_a_reconciliation_exception(&mut browser, &lender).await;
    sign_out(&mut browser).await;

    assert!(
        browser.violations.is_empty(),
        "serious or critical accessibility violations (axe-core):\n{}",
        browser.violations.join("\n")
    );
}

/// The held order: found in the queue by kind, explained by the rule that fired, claimed,
/// then approved with a note (the delivery released).
async fn work_the_held_order(browser: &mut Browser, lender: &Lender) {
    browser
        .click("header.top nav a[href='/console/cases']")
        .await;
    assert_eq!(browser.path().await, "/console/cases");
    // The stolen-account claim comes first, then the held order, then the review.
    let kinds = browser.texts("main table tbody td:nth-child(2)").await;
    assert_eq!(
        kinds,
        ["stolen account", "hold delivery", "review", "review"]
    );
    browser.look("case-queue").await;
    browser.choose("select[name=kind]", "hold_delivery").await;
    browser.click("form.filters button[type=submit]").await;
    assert_eq!(
        browser.texts("main table tbody td:nth-child(2)").await,
        ["hold delivery"]
    );
    browser.click("main table tbody td:nth-child(2) a").await;
    assert_eq!(
        browser.path().await,
        format!("/console/cases/{}", lender.held_order_case)
    );
    assert_eq!(browser.fact("Status").await, "open");
    assert_eq!(browser.fact("Action").await, "hold_delivery");
    let rules = browser
        .texts("main section table tbody td:first-child")
        .await;
    assert!(rules.contains(&lender.held_order_rule), "{rules:?}");
    browser.look("held-order-case").await;
    browser.screenshot("held-order-case-tablet", TABLET).await;

    browser.click("form.move[action$='/claim'] button").await;
    assert_eq!(browser.fact("Status").await, "claimed");
    assert!(browser.fact("Assignee").await.ends_with("(you)"));
    browser
        .type_into(
            "form.move[action$='/approve'] textarea",
            "Address checked with the customer by phone: delivery released",
        )
        .await;
    browser.click("form.move[action$='/approve'] button").await;
    assert_eq!(browser.fact("Status").await, "approved");
    let trail = browser.texts("main section:last-of-type tbody tr").await;
    assert!(
        trail.iter().any(|line| line.contains("approved")
            && line.contains("delivery released")
            && line.contains("Li Na")),
        "{trail:?}"
    );
    browser.look("held-order-approved").await;
}

/// The stolen-account claim: claimed and approved, which confirms it (the customer is
/// blocked).
async fn confirm_the_stolen_account_claim(browser: &mut Browser, lender: &Lender) {
    browser.go("/console/cases?kind=stolen_account").await;
    browser.click("main table tbody td:nth-child(2) a").await;
    assert_eq!(
        browser.path().await,
        format!("/console/cases/{}", lender.stolen_account_case)
    );
    assert_eq!(
        browser.fact("Customer").await,
        lender.stolen_account_customer
    );
    browser.click("form.move[action$='/claim'] button").await;
    browser
        .type_into(
            "form.move[action$='/approve'] textarea",
            "Caller verified with the national id; the phone was reported stolen",
        )
        .await;
    browser.click("form.move[action$='/approve'] button").await;
    assert_eq!(browser.fact("Status").await, "approved");
    browser.look("stolen-account-confirmed").await;
    // Only the reviews are left open.
    browser.go("/console/cases").await;
    assert_eq!(
        browser.texts("main table tbody td:nth-child(2)").await,
        ["review", "review"]
    );
}

/// Both reviews checked in the queue and claimed with one form: each is the analyst's, and
/// the open queue is empty.
async fn claim_the_reviews_at_once(browser: &mut Browser) {
    browser.go("/console/cases?kind=review").await;
    let boxes = browser
        .client
        .find_all(fantoccini::Locator::Css("form.bulk input[name=case]"))
        .await
        .unwrap();
    assert_eq!(boxes.len(), 2);
    for checkbox in boxes {
        checkbox.click().await.unwrap();
    }
    browser.look("case-queue-reviews-selected").await;
    browser.click("form.bulk button[type=submit]").await;
    assert_eq!(browser.text("main h1").await, "Claimed 2 of 2 cases");
    let outcomes = browser.texts("main table tbody td:nth-child(2)").await;
    assert_eq!(outcomes, ["claimed", "claimed"]);
    browser.look("cases-claimed").await;
    browser
        .go("/console/cases?status=claimed&mine=1&kind=review")
        .await;
    assert_eq!(
        browser.texts("main table tbody td:nth-child(2)").await,
        ["review", "review"]
    );
    browser.go("/console/cases").await;
    assert_eq!(browser.text("main p").await, "No cases.");
    // One of them was the ring's: rejected, it is labelled fraud for the back-test.
    browser
        .go("/console/cases?status=claimed&mine=1&kind=review")
        .await;
    browser.click("main table tbody td:nth-child(2) a").await;
    browser
        .type_into(
            "form.move[action$='/reject'] textarea",
            "Same device as the ring's earlier orders: order cancelled",
        )
        .await;
    browser.click("form.move[action$='/reject'] button").await;
    assert_eq!(browser.fact("Status").await, "rejected");
}

/// The customer found by phone (audited lookup), masked, then the phone shown in clear for a
/// reason, once.
async fn reveal_the_phone(browser: &mut Browser, lender: &Lender) {
    browser
        .click("header.top nav a[href='/console/customers']")
        .await;
    browser.look("customers").await;
    browser
        .choose("form.search select[name=field]", "phone")
        .await;
    browser
        .type_into("form.search input[name=value]", "13800138000")
        .await;
    browser
        .type_into("form.search input[name=reason]", "ticket 4711")
        .await;
    browser.click("form.search button[type=submit]").await;
    let found = browser.texts("main table tbody tr").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&lender.customer), "{found:?}");
    assert!(found[0].contains(ZHANG_SAN_PHONE_MASKED), "{found:?}");
    assert!(!found[0].contains("13800138000"), "{found:?}");
    browser.look("customer-found").await;

    browser.click("main table tbody a").await;
    assert_eq!(
        browser.path().await,
        format!("/console/customers/{}", lender.customer)
    );
    let phone_row = "//table[contains(@class,'fields')]//tr[th[normalize-space(.)='phone']]";
    let masked = browser
        .find_xpath(&format!("{phone_row}//span[contains(@class,'masked')]"))
        .await;
    assert_eq!(masked.text().await.unwrap(), ZHANG_SAN_PHONE_MASKED);
    browser.look("customer-masked").await;

    browser
        .find_xpath(&format!("{phone_row}//input[@name='reason']"))
        .await
        .send_keys("ticket 4711: customer disputes the June orders")
        .await
        .unwrap();
    let show = browser.find_xpath(&format!("{phone_row}//button")).await;
    browser.click_element(show, "Show in clear").await;
    assert_eq!(browser.text("strong.clear").await, ZHANG_SAN_PHONE_IN_CLEAR);
    assert!(browser.text("p.notice").await.contains("audit log"));
    browser.look("customer-phone-in-clear").await;

    // Shown once: the page again is masked.
    browser
        .go(&format!("/console/customers/{}", lender.customer))
        .await;
    assert!(browser.texts("strong.clear").await.is_empty());
    assert_eq!(
        browser
            .find_xpath(&format!("{phone_row}//span[contains(@class,'masked')]"))
            .await
            .text()
            .await
            .unwrap(),
        ZHANG_SAN_PHONE_MASKED
    );
}

/// The risk lead uploads a rule set with a fault, sees it at its rule and line, fixes it and
/// uploads it again, asking for it to go live.
async fn upload_a_rule_set(browser: &mut Browser, lender: &Lender) {
    browser.type_into("#key", &lender.risk_lead_key).await;
    browser.click("section.sign-in button[type=submit]").await;
    browser
        .click("header.top nav a[href='/console/rules']")
        .await;
    assert_eq!(browser.text("main h1 + p").await, "Live: version 1.");
    let broken = STRICTER_ADDRESS_RULES.replace(">= 4\"", ">=\"");
    browser.type_into("#source", &broken).await;
    browser.click("form.upload button[type=submit]").await;
    let error = browser.text("#upload-error").await;
    assert!(
        error.starts_with(&format!(
            "rule \"address_behind_many_accounts\" at line {STRICTER_ADDRESS_CONDITION_LINE} does not compile"
        )),
        "{error}"
    );
    browser.look("rules-upload-refused").await;

    // The source sent is in the form again, to be fixed where it is.
    let source = browser.find("#source").await;
    let kept = source.prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(kept.trim_end(), broken.trim_end());
    source.clear().await.unwrap();
    browser.type_into("#source", STRICTER_ADDRESS_RULES).await;
    browser
        .find("form.upload input[name=activate]")
        .await
        .click()
        .await
        .unwrap();
    browser.click("form.upload button[type=submit]").await;
    assert_eq!(browser.text("p.notice").await, "Version 2 uploaded.");
    assert_eq!(browser.text("main h1 + p + p").await, "Live: version 1.");
    let requests = browser.texts("main section tbody tr").await;
    assert!(
        requests
            .iter()
            .any(|row| row.contains("Wu Lei, risk lead") && row.contains("pending")),
        "{requests:?}"
    );
    browser.look("rules-activation-requested").await;
}

/// The risk lead back-tests the candidate against the stored events: the two orders from
/// the fourth and fifth customer at the shared address are the ones it flags, and the page
/// gives precision and recall against the analysts' decisions.
async fn back_test_the_candidate(browser: &mut Browser) {
    browser
        .click("header.top nav a[href='/console/rules']")
        .await;
    browser
        .type_into("#candidate", STRICTER_ADDRESS_RULES)
        .await;
    browser
        .click("form.upload[action='/console/rules/backtest'] button[type=submit]")
        .await;
    assert_eq!(
        browser.text("main h1").await,
        "Back-test of stricter addresses"
    );
    let precision = browser.fact("Precision").await;
    assert!(
        precision.ends_with("of 2 flagged events were fraud"),
        "{precision}"
    );
    // The rejected review is the one fraud event; the candidate's address rule does not
    // flag it.
    let recall = browser.fact("Recall").await;
    assert!(recall.ends_with("0 of 1 fraud events flagged"), "{recall}");
    browser.look("rules-backtest").await;
}

/// Another person (the compliance officer's `admin` key) approves the new version: it is
/// live.
async fn approve_the_rule_set(browser: &mut Browser) {
    browser
        .click("header.top nav a[href='/console/rules']")
        .await;
    browser
        .click("form.decide[action$='/approve'] button[type=submit]")
        .await;
    assert_eq!(
        browser.text("p.notice").await,
        "Activation request approved."
    );
    assert_eq!(browser.text("main h1 + p + p").await, "Live: version 2.");
    browser.look("rules-version-2-live").await;
}

/// The compliance officer signs in and finds the read in clear and the lookup in the audit.
async fn read_the_audit(browser: &mut Browser, lender: &Lender) {
    browser.type_into("#key", &lender.compliance_key).await;
    browser.click("section.sign-in button[type=submit]").await;
    assert_eq!(
        browser.texts("header.top nav a").await,
        [
            "Overview",
            "Risk cases",
            "Rules",
            "Customers",
            "Payments",
            "Merchants",
            "Reconciliation",
            "Consortium",
            "Audit"
        ]
    );
    browser.look("overview-compliance").await;
    // The money pages and the consortium's, each reached from the navigation, shown and
    // checked for accessibility (this lender takes no payments and has no log configured).
    for (path, heading, name) in [
        ("/console/payments", "Payments", "payments"),
        ("/console/merchants", "Merchants", "merchants"),
    ] {
        browser
            .click(&format!("header.top nav a[href='{path}']"))
            .await;
        assert_eq!(browser.path().await, path);
        assert_eq!(browser.text("main h1").await, heading);
        browser.look(name).await;
    }
    // Without a log configured, the Consortium page says what to set.
    browser
        .click("header.top nav a[href='/console/consortium']")
        .await;
    assert_eq!(browser.path().await, "/console/consortium");
    assert!(browser
        .text("main")
        .await
        .contains("[consortium_member] log_key"));
    browser.look("consortium-not-configured").await;
    browser.go("/console/settlement").await;
    assert_eq!(browser.text("main h1").await, "Settlement runs");
    browser.look("settlement-runs").await;
    browser
        .click("header.top nav a[href='/console/audit']")
        .await;
    let reads = browser.texts("main table tbody tr").await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    for expected in [
        "Li Na, risk analyst",
        lender.customer.as_str(),
        "phone",
        "ticket 4711: customer disputes the June orders",
    ] {
        assert!(reads[0].contains(expected), "{expected} not in {reads:?}");
    }
    assert!(!reads[0].contains(ZHANG_SAN_PHONE_IN_CLEAR), "{reads:?}");
    browser.look("audit-reads").await;

    browser
        .click("nav.tabs a[href='/console/audit?log=lookups']")
        .await;
    let lookups = browser.texts("main table tbody tr").await;
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    for expected in [
        "Li Na, risk analyst",
        "phone",
        lender.customer.as_str(),
        "ticket 4711",
    ] {
        assert!(
            lookups[0].contains(expected),
            "{expected} not in {lookups:?}"
        );
    }
    browser.look("audit-lookups").await;
}

/// The finance clerk sees where reconciliation stands on the overview, opens the run, finds
/// the bank-only settlements by class, assigns one to themself and resolves it with a note.
async fn resolve_a_reconciliation_exception(browser: &mut Browser, lender: &Lender) {
    browser.type_into("#key", &lender.clerk_key).await;
    browser.click("section.sign-in button[type=submit]").await;
    assert_eq!(
        browser.texts("header.top nav a").await,
        ["Overview", "Reconciliation"]
    );
    let tile = browser.text("main section.tiles").await;
    assert!(tile.contains("reconciliation exceptions open"), "{tile}");
    assert!(
        tile.contains(&format!("latest run {}: 3 found, 3 open", lender.recon_run)),
        "{tile}"
    );
    browser.look("overview-finance").await;
    browser
        .click("header.top nav a[href='/console/recon']")
        .await;
    let runs = browser.texts("main table tbody tr").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].contains("breaks open"), "{runs:?}");
    assert!(runs[0].contains("missing in ledger 3"), "{runs:?}");
    browser.look("recon-runs").await;

    browser
        .click(&format!(
            "main table a[href='/console/recon/{}']",
            lender.recon_run
        ))
        .await;
    browser
        .choose("select[name=class]", "missing_in_ledger")
        .await;
    browser.click("form.filters button[type=submit]").await;
    let rows = browser.texts("main table.worklist tbody tr").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    browser.look("recon-run").await;
    let row = format!(
        "//table[contains(@class,'worklist')]//tr[td[normalize-space(.)='{}']]",
        lender.recon_reference
    );
    let assign = browser.find_xpath(&format!("{row}//button")).await;
    browser.click_element(assign, "Assign to me").await;
    assert_eq!(browser.fact("State").await, "assigned");
    assert_eq!(browser.fact("Assignee").await, "Sun Li, finance clerk");
    assert_eq!(browser.fact("Channel amount").await, "20.00 CNY");
    browser.look("recon-exception").await;
    browser
        .type_into(
            "form.resolve-note textarea",
            "The bank's test capture, reversed by the bank the next day",
        )
        .await;
    browser.click("form.resolve-note button[type=submit]").await;
    assert_eq!(browser.fact("State").await, "resolved");
    assert_eq!(
        browser.fact("Note").await,
        "The bank's test capture, reversed by the bank the next day"
    );
    browser.look("recon-exception-resolved").await;
    // Assigned to me: the one resolved.
    browser
        .go(&format!("/console/recon/{}?mine=1", lender.recon_run))
        .await;
    let mine = browser.texts("main table.worklist tbody tr").await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(mine[0].contains("resolved"), "{mine:?}");
}

/// Signs out: the sign-in page, and a page of the console refused (back to sign-in).
async fn sign_out(browser: &mut Browser) {
    browser.click("form.sign-out button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.go("/console/customers").await;
    assert_eq!(browser.path().await, "/console/sign-in");
}
