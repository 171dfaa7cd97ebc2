//! The browser the console's tests drive: Debian's chromium, headless, through its
//! chromedriver (WebDriver, with the `fantoccini` client), and what the tests do with every
//! page they show: a screenshot written outside the repository and an axe-core check.
//!
//! chromium, chromedriver and axe-core come from `.ci/browser-setup`; a machine without
//! them fails these tests with a message naming that script, unless
//! `TALLY_TEST_SKIP_BROWSER=1` is set (as a machine without PostgreSQL fails the storage
//! tests: a check that is silently skipped protects nothing).

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `.ci/browser-setup` puts axe-core (not committed).
const AXE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../.ci/cache/axe-core/axe.min.js"
);

/// The laptop-sized window every page is shown in first.
pub const LAPTOP: (u32, u32) = (1280, 900);
/// A tablet held upright.
pub const TABLET: (u32, u32) = (768, 1024);
/// How long a click may take to lead to its page.
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(15);
/// The tallest full-page screenshot taken.
const SCREENSHOT_HEIGHT_MAX: u32 = 6_000;

/// What the browser tests need from the machine.
pub struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
    axe: String,
}

/// The first executable called `name` on the `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
}

/// The tools, or `None` (printed) when `TALLY_TEST_SKIP_BROWSER=1` says to skip the browser
/// tests. Panics, naming `.ci/browser-setup`, when any is missing.
pub fn tools_or_skip() -> Option<Tools> {
    if std::env::var("TALLY_TEST_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("skipped: the console's browser tests (TALLY_TEST_SKIP_BROWSER=1)");
        return None;
    }
    let chromium = on_path("chromium");
    let chromedriver = on_path("chromedriver");
    let axe = std::fs::read_to_string(AXE_PATH).ok();
    let mut missing = Vec::new();
    if chromium.is_none() {
        missing.push("chromium");
    }
    if chromedriver.is_none() {
        missing.push("chromedriver (Debian's chromium-driver)");
    }
    if axe.is_none() {
        missing.push("axe-core in .ci/cache/axe-core");
    }
    match (chromium, chromedriver, axe) {
        (Some(chromium), Some(chromedriver), Some(axe)) => Some(Tools {
            chromium,
            chromedriver,
            axe,
        }),
        _ => panic!(
            "the console's browser tests need {}: run `bash .ci/browser-setup` (it installs \
             Debian's chromium and chromium-driver with apt-get and fetches a pinned axe-core), \
             or set TALLY_TEST_SKIP_BROWSER=1 to skip these tests",
            missing.join(", ")
        ),
    }
}

/// Whether `error`, from asking about an element of the page shown before a click, says
/// that page is gone: the element is stale, or (while the new page replaces it) chromium no
/// longer finds its node in the document.
fn old_page_gone(error: &fantoccini::error::CmdError) -> bool {
    error.is_stale_element_reference()
        || error.is_no_such_element()
        || (error.is_unknown_error()
            && error
                .to_string()
                .contains("does not belong to the document"))
}

/// A running chromedriver; killed when dropped (after its browser session was closed).
pub struct Driver {
    process: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver on `port` and waits until it says it is ready.
    pub async fn start(tools: &Tools, port: u16) -> Self {
        let process = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", tools.chromedriver.display()));
        let driver = Self {
            process,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = client.get(format!("{}/status", driver.url)).send().await;
            if let Ok(response) = status {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if body["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Runs `story` in a browser on the console at `base`, its screenshots in `screenshots`
/// (emptied first). The story runs as a task so that a failed step still closes the
/// browser (chromedriver then ends chromium) before the failure is reported.
pub async fn run_story<Story>(
    tools: &Tools,
    base: &str,
    screenshots: &Path,
    story: impl FnOnce(Browser) -> Story,
) where
    Story: std::future::Future<Output = ()> + Send + 'static,
{
    let driver = Driver::start(tools, super::support::free_port()).await;
    let _ = std::fs::remove_dir_all(screenshots);
    let browser = Browser::open(&driver, tools, base, screenshots).await;
    let session = browser.client.clone();
    let outcome = tokio::spawn(story(browser)).await;
    let _ = session.close().await;
    drop(driver);
    eprintln!("screenshots of the console: {}", screenshots.display());
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// A headless chromium session on the console at `base`: every page shown gets a
/// screenshot and an axe-core check, whose serious and critical violations are kept.
pub struct Browser {
    pub client: Client,
    base: String,
    axe: String,
    screenshots: PathBuf,
    shown: usize,
    /// `page: rule (impact): help — elements`, for each serious or critical violation.
    pub violations: Vec<String>,
}

impl Browser {
    /// Opens a session in `driver`, laptop-sized, writing screenshots to `screenshots`.
    pub async fn open(driver: &Driver, tools: &Tools, base: &str, screenshots: &Path) -> Self {
        let (width, height) = LAPTOP;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": [
                    "--headless=new",
                    // Root in a container has no user namespace for the sandbox.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    "--lang=en-US",
                    format!("--window-size={width},{height}"),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|error| panic!("opening a chromium session: {error}"));
        std::fs::create_dir_all(screenshots).unwrap();
        Self {
            client,
            base: base.to_string(),
            axe: tools.axe.clone(),
            screenshots: screenshots.to_path_buf(),
            shown: 0,
            violations: Vec::new(),
        }
    }

    /// Goes to the console's `path`.
    pub async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|error| panic!("going to {path}: {error}"));
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(error) => panic!("no {css} on {}: {error}", self.path().await),
        }
    }

    pub async fn find_xpath(&self, xpath: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::XPath(xpath)).await {
            Ok(element) => element,
            Err(error) => panic!("no {xpath} on {}: {error}", self.path().await),
        }
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            texts.push(element.text().await.unwrap());
        }
        texts
    }

    /// Types `text` into the field matching `css`, as a person would.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.unwrap();
    }

    /// Clicks the element matching `css`, a link or a form's button, and waits for the page
    /// it leads to.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.click_element(element, css).await;
    }

    /// Clicks `element` (`what` names it), a link or a form's button, and waits for the page
    /// it leads to: until the page shown before is gone and the new one is loaded. (The
    /// click may answer before the navigation starts; a page read then would be the old.)
    pub async fn click_element(&self, element: fantoccini::elements::Element, what: &str) {
        let before = self.find("html").await;
        element
            .click()
            .await
            .unwrap_or_else(|error| panic!("clicking {what}: {error}"));
        let deadline = Instant::now() + PAGE_LOAD_TIMEOUT;
        loop {
            match before.tag_name().await {
                Ok(_) => {}
                Err(error) if old_page_gone(&error) => break,
                Err(error) => panic!("after clicking {what}: {error}"),
            }
            assert!(
                Instant::now() < deadline,
                "clicking {what} led to no new page"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        loop {
            // While the new page is being committed the script may find no document to
            // run in: asked again.
            let state = self
                .client
                .execute("return document.readyState;", vec![])
                .await;
            if matches!(state, Ok(ref state) if state == "complete") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page after clicking {what} did not load"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Chooses the option of value `value` in the select matching `css`.
    pub async fn choose(&self, css: &str, value: &str) {
        self.find(css).await.select_by_value(value).await.unwrap();
    }

    /// The page's `dd` after the `dt` whose text is `term`.
    pub async fn fact(&self, term: &str) -> String {
        self.find_xpath(&format!(
            "//dl[contains(@class,'facts')]/dt[normalize-space(.)='{term}']/following-sibling::dd[1]"
        ))
        .await
        .text()
        .await
        .unwrap()
    }

    /// Looks at the page shown as `name`: a full-page screenshot (laptop width) and the
    /// axe-core check.
    pub async fn look(&mut self, name: &str) {
        self.screenshot(name, LAPTOP).await;
        self.check_accessibility(name).await;
    }

    /// A screenshot of the whole page at `size`'s width, written as `NN-name.png`.
    pub async fn screenshot(&mut self, name: &str, size: (u32, u32)) {
        let (width, height) = size;
        self.client.set_window_size(width, height).await.unwrap();
        // The window is taller than the page's viewport by the browser's own frame.
        let measured = self
            .client
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight)
                    + (window.outerHeight - window.innerHeight);",
                vec![],
            )
            .await
            .unwrap();
        let needed = measured
            .as_u64()
            .and_then(|height| u32::try_from(height).ok())
            .unwrap_or(height);
        let tall = needed.clamp(height, SCREENSHOT_HEIGHT_MAX);
        if tall != height {
            self.client.set_window_size(width, tall).await.unwrap();
        }
        let png = self.client.screenshot().await.unwrap();
        self.shown += 1;
        let file = self
            .screenshots
            .join(format!("{:02}-{name}.png", self.shown));
        std::fs::write(&file, png).unwrap();
        let (width, height) = LAPTOP;
        self.client.set_window_size(width, height).await.unwrap();
    }

    /// Shows that the accessibility check can fail: a text field without a label, added to
    /// the page shown, must be reported as a critical violation. The page is then loaded
    /// again, and the check's findings are left as they were.
    pub async fn check_that_the_accessibility_check_can_fail(&mut self) {
        self.client
            .execute(
                "const field = document.createElement('input');
                 field.type = 'text';
                 field.id = 'unlabelled-field';
                 document.querySelector('main').appendChild(field);",
                vec![],
            )
            .await
            .unwrap();
        let kept = self.violations.len();
        self.check_accessibility("a field without a label").await;
        let found: Vec<String> = self.violations.drain(kept..).collect();
        assert!(
            found
                .iter()
                .any(|violation| violation.contains("label (critical)")
                    && violation.contains("#unlabelled-field")),
            "axe-core did not report the unlabelled field: {found:?}"
        );
        self.client.refresh().await.unwrap();
    }

    /// Runs axe-core on the page and keeps its serious and critical violations.
    async fn check_accessibility(&mut self, name: &str) {
        // Injected through WebDriver, which the console's Content-Security-Policy (no
        // script at all) does not govern: the console itself still ships no script.
        self.client.execute(&self.axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                    .then(results => done(results.violations.map(violation => ({
                        id: violation.id,
                        impact: violation.impact,
                        help: violation.help,
                        nodes: violation.nodes.map(node => node.target.join(' ')),
                    }))))
                    .catch(error => done({ error: String(error) }));",
                vec![],
            )
            .await
            .unwrap();
        let Value::Array(violations) = found else {
            panic!("axe-core did not run on {name}: {found}");
        };
        for violation in violations {
            let impact = violation["impact"].as_str().unwrap_or("unknown");
            if impact == "serious" || impact == "critical" {
                self.violations.push(format!(
                    "{name}: {} ({impact}): {} — {}",
                    violation["id"].as_str().unwrap_or(""),
                    violation["help"].as_str().unwrap_or(""),
                    violation["nodes"]
                ));
            }
        }
    }
}
