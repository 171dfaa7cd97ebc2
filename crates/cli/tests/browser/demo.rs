//! The console in a browser on `tally demo`'s data: the small demo built with `--no-serve`,
//! its database served by `tally serve --config` (the configuration the demo wrote beside
//! it, as a newcomer would serve it again), signed in with the key the demo printed. An
//! analyst releases the delivery the risk engine held on the demo's last day and approves
//! its case, confirms the stolen-account claim the demo left open; a clerk resolves a break
//! of the demo's reconciliation of the books; the overview shows the settlement run; the
//! Consortium page shows the demo's log, verified. On SQLite (the demo's own file) and on
//! PostgreSQL (`tally demo --database-url` on a fresh schema).

use super::driver::{self, Browser};
use super::support::{free_port, wait_until_healthy, BINARY};
use super::{new_database, screenshot_directory, Backend};
use fantoccini::Locator;
use std::path::PathBuf;

/// `tally demo --size small --no-serve` in `directory` (on `url` when given): the key it
/// printed.
fn build_the_demo(directory: &std::path::Path, url: Option<&str>) -> String {
    let mut demo = std::process::Command::new(BINARY);
    demo.args([
        "demo",
        "--size",
        "small",
        "--no-serve",
        "--seed",
        "7",
        "--database",
        "demo.db",
    ]);
    if let Some(url) = url {
        demo.args(["--database-url", url]);
    }
    let output = demo
        .current_dir(directory)
        .env("TALLY_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stderr
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("tally_"))
        .unwrap_or_else(|| panic!("the demo printed no key:\n{stderr}"))
        .to_string()
}

/// `tally serve --config demo.toml` on a free port, killed when dropped.
struct ServedDemo {
    server: std::process::Child,
    base: String,
}

impl Drop for ServedDemo {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

mod the_demo_is_worked_in_a_browser {
    use super::{the_demo_is_worked_in_a_browser_on, Backend};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        the_demo_is_worked_in_a_browser_on(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        the_demo_is_worked_in_a_browser_on(Backend::Postgres).await;
    }
}

async fn the_demo_is_worked_in_a_browser_on(backend: Backend) {
    let Some(tools) = driver::tools_or_skip() else {
        return;
    };
    // One browser at a time: the machines running the tests have few cores.
    let _turn = super::ONE_BROWSER_AT_A_TIME.lock().await;
    let directory = tempfile::tempdir().unwrap();
    let key = match backend {
        // The demo makes its own SQLite file.
        Backend::Sqlite => build_the_demo(directory.path(), None),
        Backend::Postgres => {
            // A fresh schema, migrated, with no business in it yet.
            let Some(url) = new_database(backend, directory.path()).await else {
                return;
            };
            build_the_demo(directory.path(), Some(&url))
        }
    };
    let port = free_port();
    let server = std::process::Command::new(BINARY)
        .args(["serve", "--config", "demo.toml", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(directory.path())
        .env("TALLY_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let served = ServedDemo {
        server,
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_until_healthy(&reqwest::Client::new(), &served.base).await;

    let mut screenshots = screenshot_directory(backend).into_os_string();
    screenshots.push("-demo");
    let screenshots = PathBuf::from(screenshots);
    driver::run_story(&tools, &served.base, &screenshots, |browser| {
        story(browser, key)
    })
    .await;
}

async fn story(mut browser: Browser, key: String) {
    browser.go("/console/overview").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.type_into("#key", &key).await;
    browser.click("section.sign-in button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/overview");
    assert!(browser.text("header.top .who").await.contains("tally demo"));
    let tiles = browser.text("main section.tiles").await;
    assert!(!tiles.contains("no settlement run yet"), "{tiles}");
    assert!(tiles.contains("settlement of 2026-07-"), "{tiles}");
    assert!(tiles.contains("reconciliation exceptions open"), "{tiles}");
    browser.look("demo-overview").await;

    release_the_held_order(&mut browser).await;
    confirm_the_open_claim(&mut browser).await;
    resolve_a_break_of_the_books(&mut browser).await;
    read_the_consortium_log(&mut browser).await;

    // The settlement run the overview names, opened from its tile.
    browser.go("/console/overview").await;
    browser
        .click("main section.tiles a[href^='/console/settlement/']")
        .await;
    assert!(browser
        .path()
        .await
        .starts_with("/console/settlement/2026-07-"));
    browser.look("demo-settlement-run").await;
    browser.go("/console/overview").await;
    browser.look("demo-overview-after").await;

    assert!(
        browser.violations.is_empty(),
        "serious or critical accessibility violations (axe-core):\n{}",
        browser.violations.join("\n")
    );
}

/// The open held deliveries' cases, as the queue links them.
async fn open_cases_of_kind(browser: &Browser, kind: &str) -> Vec<String> {
    browser.go(&format!("/console/cases?kind={kind}")).await;
    let mut links = Vec::new();
    for link in browser
        .client
        .find_all(Locator::Css("main table tbody td:nth-child(2) a"))
        .await
        .unwrap()
    {
        links.push(link.attr("href").await.unwrap().unwrap());
    }
    links
}

/// The television order held on the demo's last day: found among the open held deliveries
/// as the one with a payment, claimed, its delivery released from the case (the payment
/// then says so), and the case approved with a note.
async fn release_the_held_order(browser: &mut Browser) {
    let cases = open_cases_of_kind(browser, "hold_delivery").await;
    assert!(!cases.is_empty(), "no held delivery left open by the demo");
    browser.look("demo-held-deliveries").await;
    let release = "form.move[action$='/delivery-release'] button";
    let mut held = None;
    for case in cases {
        browser.go(&case).await;
        if !browser
            .client
            .find_all(Locator::Css(release))
            .await
            .unwrap()
            .is_empty()
        {
            held = Some(case);
            break;
        }
    }
    let case = held.expect("a held delivery of a payment among the open cases");
    assert_eq!(browser.fact("Status").await, "open");
    assert_eq!(browser.fact("Action").await, "hold_delivery");
    browser.click("form.move[action$='/claim'] button").await;
    assert_eq!(browser.fact("Status").await, "claimed");
    browser.look("demo-held-order-case").await;
    browser.click(release).await;
    assert!(browser.path().await.starts_with("/console/payments/"));
    assert_eq!(browser.fact("Delivery").await, "not held");
    assert_eq!(browser.fact("Status").await, "captured");
    browser.look("demo-held-order-released").await;
    browser.go(&case).await;
    browser
        .type_into(
            "form.move[action$='/approve'] textarea",
            "Called the customer: a new phone, and the television is theirs",
        )
        .await;
    browser.click("form.move[action$='/approve'] button").await;
    assert_eq!(browser.fact("Status").await, "approved");
}

/// The stolen-account claim the demo left open: claimed and approved, which confirms it.
async fn confirm_the_open_claim(browser: &mut Browser) {
    let claims = open_cases_of_kind(browser, "stolen_account").await;
    assert_eq!(claims.len(), 1, "{claims:?}");
    browser.go(&claims[0]).await;
    assert_eq!(browser.fact("Police reference").await, "SH-PD-2026-0731");
    browser.click("form.move[action$='/claim'] button").await;
    browser
        .type_into(
            "form.move[action$='/approve'] textarea",
            "Caller verified with the national id; the phone was reported stolen",
        )
        .await;
    browser.click("form.move[action$='/approve'] button").await;
    assert_eq!(browser.fact("Status").await, "approved");
    browser.look("demo-claim-confirmed").await;
    assert!(open_cases_of_kind(browser, "stolen_account")
        .await
        .is_empty());
}

/// The run of the books with breaks: its bank-only capture assigned and resolved.
async fn resolve_a_break_of_the_books(browser: &mut Browser) {
    browser.go("/console/recon").await;
    let runs = browser.texts("main table tbody tr").await;
    let with_breaks: Vec<&String> = runs
        .iter()
        .filter(|run| run.contains("breaks open"))
        .collect();
    assert_eq!(with_breaks.len(), 1, "{runs:?}");
    browser.look("demo-recon-runs").await;
    let date = with_breaks[0]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    browser.go(&format!("/console/recon/{date}")).await;
    browser
        .choose("select[name=class]", "missing_in_ledger")
        .await;
    browser.click("form.filters button[type=submit]").await;
    let rows = browser.texts("main table.worklist tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let reference = format!("bank-only-{date}");
    assert!(rows[0].contains(&reference), "{rows:?}");
    browser.look("demo-recon-run").await;
    let row =
        format!("//table[contains(@class,'worklist')]//tr[td[normalize-space(.)='{reference}']]");
    let assign = browser.find_xpath(&format!("{row}//button")).await;
    browser.click_element(assign, "Assign to me").await;
    assert_eq!(browser.fact("State").await, "assigned");
    assert_eq!(browser.fact("Channel amount").await, "88.00 CNY");
    browser
        .type_into(
            "form.resolve-note textarea",
            "The bank's own test capture, reversed by the bank the next day",
        )
        .await;
    browser.click("form.resolve-note button[type=submit]").await;
    assert_eq!(browser.fact("State").await, "resolved");
    browser.look("demo-recon-break-resolved").await;
}

/// The Consortium page on the log the demo founded: every check verified, and the demo
/// lender's own records and queries counted through its count proof.
async fn read_the_consortium_log(browser: &mut Browser) {
    browser
        .click("header.top nav a[href='/console/consortium']")
        .await;
    assert_eq!(browser.path().await, "/console/consortium");
    assert_eq!(browser.text("main h1").await, "Consortium");
    assert!(
        browser.text("main p.notice").await.starts_with("Verified"),
        "{}",
        browser.text("main").await
    );
    assert!(browser.texts("td.error").await.is_empty());
    assert_eq!(browser.fact("Log").await, "log.demo.tally.example");
    assert!(browser
        .fact("Member")
        .await
        .starts_with("tally-demo-lender"));
    let published: u64 = browser.fact("Records published").await.parse().unwrap();
    assert!(published > 0, "the demo published no record");
    // An entry looked up with its inclusion proof.
    browser
        .type_into("form.filters input[name=entry]", "0")
        .await;
    browser.click("form.filters button[type=submit]").await;
    assert_eq!(browser.fact("Index").await, "0");
    assert!(browser.texts("td.error").await.is_empty());
    browser.look("demo-consortium").await;
}
