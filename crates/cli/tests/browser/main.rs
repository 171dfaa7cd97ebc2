//! The operations console in a real browser: `tally serve` (the binary) on a temporary
//! SQLite file, data made through the API ([`lender`]), and Debian's chromium, headless,
//! driven over WebDriver ([`driver`]) as the people who use the console would: an analyst
//! signs in, works a held order and a stolen-account claim from the queue to approval,
//! finds a customer by phone and shows the phone in clear with a reason; a compliance
//! officer finds that read and that lookup in the audit; each signs out and is then refused.
//! Every page shown is screenshotted (to `$TALLY_SCREENSHOT_DIR`, or the target directory)
//! and checked with axe-core: a serious or critical violation fails the test.
//!
//! Needs chromium, chromedriver and axe-core from `.ci/browser-setup`; fails naming that
//! script without them unless `TALLY_TEST_SKIP_BROWSER=1`. SQLite only: what is under test
//! is the pages in a browser; the console's HTTP tests run on both backends.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod driver;
mod lender;

use driver::{Browser, Driver, TABLET};
use lender::{
    make_lender, Api, Lender, People, STRICTER_ADDRESS_CONDITION_LINE, STRICTER_ADDRESS_RULES,
    ZHANG_SAN_PHONE_IN_CLEAR, ZHANG_SAN_PHONE_MASKED,
};
use std::path::PathBuf;
use support::{create_key, free_port, start_server, wait_until_healthy, PRIVACY_KEYS};

/// Where the screenshots go: `$TALLY_SCREENSHOT_DIR`, or the target directory's scratch
/// space (never the repository).
fn screenshot_directory() -> PathBuf {
    std::env::var_os("TALLY_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots"))
}

/// `tally serve` on a temporary SQLite file, killed when dropped.
struct Served {
    server: std::process::Child,
    base: String,
    url: String,
    directory: tempfile::TempDir,
}

impl Served {
    async fn start() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let (url, database) = support::sqlite_database(directory.path(), "console.db").await;
        database.close().await;
        let port = free_port();
        let server = start_server(&url, port, directory.path(), PRIVACY_KEYS);
        let served = Self {
            server,
            base: format!("http://127.0.0.1:{port}"),
            url,
            directory,
        };
        wait_until_healthy(&reqwest::Client::new(), &served.base).await;
        served
    }

    /// `tally keys create` for `name` with `scopes`: the key's secret.
    fn key(&self, name: &str, scopes: &[&str]) -> String {
        create_key(&self.url, self.directory.path(), name, scopes)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_worked_in_a_browser() {
    let Some(tools) = driver::tools_or_skip() else {
        return;
    };
    let served = Served::start().await;
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
    };
    let lender = make_lender(&api, people).await;

    let driver = Driver::start(&tools, free_port()).await;
    let screenshots = screenshot_directory();
    let _ = std::fs::remove_dir_all(&screenshots);
    let browser = Browser::open(&driver, &tools, &served.base, &screenshots).await;
    let session = browser.client.clone();
    // The story runs as a task so that a failed step still closes the browser (chromedriver
    // then ends chromium) before the failure is reported.
    let story = tokio::spawn(story(browser, lender)).await;
    let _ = session.close().await;
    drop(driver);
    eprintln!("screenshots of the console: {}", screenshots.display());
    if let Err(failure) = story {
        std::panic::resume_unwind(failure.into_panic());
    }
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
    sign_out(&mut browser).await;
    read_the_audit(&mut browser, &lender).await;
    approve_the_rule_set(&mut browser).await;
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
    assert_eq!(kinds, ["stolen account", "hold delivery", "review"]);
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
    // Only the review is left open.
    browser.go("/console/cases").await;
    assert_eq!(
        browser.texts("main table tbody td:nth-child(2)").await,
        ["review"]
    );
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

/// Signs out: the sign-in page, and a page of the console refused (back to sign-in).
async fn sign_out(browser: &mut Browser) {
    browser.click("form.sign-out button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.go("/console/customers").await;
    assert_eq!(browser.path().await, "/console/sign-in");
}
