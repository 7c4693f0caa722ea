//! A real headless Chromium for the web UI's end-to-end tests, driven through WebDriver
//! (`chromedriver`) with `fantoccini`, plus the checks those tests make: accessibility
//! (axe-core), screenshots, the clipboard, form helpers and the rendered HTML.
//!
//! Why a real browser: the UI's promises (a copy button copies the exact value, a form
//! works on a phone-sized screen, no serious accessibility violation, the page works under
//! a strict `Content-Security-Policy`) are only kept if a browser says so.
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port and opens one session of
//! `/usr/bin/chromium`, headless, with a fresh profile in a temporary directory and the
//! flags that keep it off the network (background networking, component updates, sync
//! and QUIC off: Chromium would otherwise call Google's services by itself, and a closed
//! network refuses those connections). The window is 1280×900 ([`DESKTOP`]); [`Browser::set_phone_width`] makes it
//! 390×844 ([`PHONE`]). Dropping the [`Browser`] (also on panic) ends the session, which
//! quits Chromium, kills chromedriver, then any process left naming the browser's
//! temporary directory (Chromium's all do: profile, `HOME`), so no Chromium process
//! outlives the test. chromedriver also dies with the test process (`PR_SET_PDEATHSIG`),
//! and Chromium stays in the test's process group, which test runners kill on a timeout;
//! a test process killed otherwise (`kill -9` of that one process) leaves Chromium running.
//!
//! Everything is async (fantoccini runs on tokio): tests are `#[tokio::test]`. The helpers
//! take the [`fantoccini::Client`] ([`Browser::client`]) and panic with a message naming
//! what failed, as test code wants.
//!
//! Skip-or-fail: [`Browser::start`] returns `None` (the test returns early, saying why on
//! stderr) when `chromium`, `chromedriver` or axe-core's `axe.min.js` is missing, and
//! panics instead under `MAILZONE_REQUIRE_TOOLS=1` (see [`crate::missing`]). scripts/test
//! installs all three: the Debian packages `chromium` and `chromium-driver`, and axe-core
//! pinned in `scripts/npm/package-lock.json` (`npm ci` into `scripts/npm/node_modules`,
//! git-ignored). [`axe_js_path`] says where `axe.min.js` is looked for.
//!
//! ```no_run
//! use mailzone_testkit::browser::{self, Browser};
//!
//! # async fn example() {
//! let Some(browser) = Browser::start().await else {
//!     return; // skipped
//! };
//! let client = browser.client();
//! client.goto("http://127.0.0.1:8080/").await.unwrap();
//! browser::grant_clipboard(client).await;
//! browser::click(client, "button.copy").await;
//! assert_eq!(browser::read_clipboard(client).await, "v=spf1 mx -all");
//! browser::assert_no_serious_axe_violations(client, "home").await;
//! browser::screenshot(client, "home").await;
//! # }
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::{free_port, missing, process, require_tools, tools};

/// The programs a [`Browser`] runs, for [`require_tools`].
pub const BROWSER_TOOLS: &[&str] = &["chromium", "chromedriver"];

/// The Chromium that chromedriver starts (Debian's launcher script, which runs
/// `/usr/lib/chromium/chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The default window size, width × height in CSS pixels: a laptop screen.
pub const DESKTOP: (u32, u32) = (1280, 900);

/// The window size of [`Browser::set_phone_width`]: a current phone held upright.
pub const PHONE: (u32, u32) = (390, 844);

/// The environment variable naming `axe.min.js`, overriding [`AXE_JS_DEFAULT`].
pub const AXE_JS_ENV: &str = "MAILZONE_AXE_JS";

/// Where scripts/test installs `axe.min.js`, relative to the workspace root.
pub const AXE_JS_DEFAULT: &str = "scripts/npm/node_modules/axe-core/axe.min.js";

/// Chromium's command-line flags. Headless without a GPU or a sandbox (tests may run as
/// root, where the sandbox refuses to start); no first-run dialogs; nothing that connects
/// to Google's services by itself (on a closed network those connections are refused).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// How long chromedriver may take to answer `/status` as ready.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (found from this crate's `CARGO_MANIFEST_DIR`, `crates/testkit`).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The `axe.min.js` the accessibility checks inject: `$MAILZONE_AXE_JS` when set, else
/// [`AXE_JS_DEFAULT`] under the [`workspace_root`]. The file may not exist (see
/// [`require_axe`]).
pub fn axe_js_path() -> PathBuf {
    match std::env::var_os(AXE_JS_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => workspace_root().join(AXE_JS_DEFAULT),
    }
}

/// Whether `axe.min.js` is there ([`axe_js_path`]); when it is not, [`missing`]: `false`
/// (skip) or a panic under `MAILZONE_REQUIRE_TOOLS=1`.
pub fn require_axe() -> bool {
    let path = axe_js_path();
    path.is_file()
        || missing(&format!(
            "axe-core's {} (npm ci in scripts/npm, or set {AXE_JS_ENV})",
            path.display()
        ))
}

/// A headless Chromium session behind its own chromedriver. See the module documentation.
pub struct Browser {
    client: Client,
    session_id: String,
    /// Dropped after [`Browser`]'s own [`Drop::drop`] ended the session.
    driver: Driver,
}

/// The chromedriver process and its temporary directory: Chromium's profile (`profile/`),
/// its `HOME` (`home/`: crash reports and other per-user files stay out of the real home)
/// and chromedriver's log. Dropping it kills chromedriver, then every process still naming
/// the directory (Chromium's), then removes the directory (fields drop after
/// [`Drop::drop`] ran).
struct Driver {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Driver {
    /// Spawns chromedriver on a free port and waits until its `/status` says ready.
    fn start() -> io::Result<Driver> {
        let dir = tempfile::Builder::new()
            .prefix("mailzone-chromium")
            .tempdir()?;
        std::fs::create_dir(dir.path().join("profile"))?;
        let home = dir.path().join("home");
        std::fs::create_dir(&home)?;
        let port = free_port();
        let mut command = Command::new(tools::tool_or_err("chromedriver")?);
        command
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            // Chromium inherits this environment: its crash handler's database (otherwise
            // ~/.config/chromium/Crash Reports) and caches land in the temporary directory,
            // and every process it starts names that directory on its command line.
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // chromedriver stays in the test's process group, and so does Chromium: a test
        // runner that kills a test's group (a timeout, Ctrl-C) kills them too.
        let mut driver = Driver {
            child: process::spawn(command)?,
            port,
            dir,
        };
        driver.wait_until_ready()?;
        Ok(driver)
    }

    /// Polls chromedriver's `/status` until it says it is ready.
    fn wait_until_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        loop {
            if let Ok((200, body)) = driver_request(self.port, "GET", "/status") {
                let ready = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|status| status["value"]["ready"].as_bool());
                if ready == Some(true) {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(self.error(&format!("chromedriver exited ({status})")));
            }
            if Instant::now() >= deadline {
                return Err(self.error("chromedriver was not ready after 30 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An error carrying the tail of chromedriver's log.
    fn error(&self, what: &str) -> io::Error {
        io::Error::other(format!(
            "{what}; chromedriver's log ends:\n{}",
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium's processes outlive a killed chromedriver (no parent-death signal):
        // find them by the temporary directory their command lines name (profile, crash
        // database). After a session ended normally there are none.
        let needle = self.dir.path().as_os_str().as_encoded_bytes().to_vec();
        for _ in 0..50 {
            let left = processes_naming(&needle);
            if left.is_empty() {
                return;
            }
            for pid in left {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The processes (not zombies: those have no command line) whose command line contains
/// `needle`.
fn processes_naming(needle: &[u8]) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .windows(needle.len().max(1))
                    .any(|window| window == needle)
            })
        })
        .collect()
}

impl Browser {
    /// Starts chromedriver and opens a session in a 1280×900 window ([`DESKTOP`]).
    ///
    /// `None` when Chromium, chromedriver or axe-core is missing (the caller returns: a
    /// skipped test), after [`missing`] said so; under `MAILZONE_REQUIRE_TOOLS=1` that
    /// panics instead. axe-core is required here, not only by [`axe_violations`], because
    /// every UI test checks accessibility: a test skips as a whole rather than failing
    /// half-way.
    ///
    /// # Panics
    /// When the tools are there but the browser does not start (the message carries the
    /// tail of chromedriver's log).
    pub async fn start() -> Option<Browser> {
        if !require_tools(BROWSER_TOOLS) || !require_axe() {
            return None;
        }
        match Browser::launch().await {
            Ok(browser) => Some(browser),
            Err(error) => panic!("the headless Chromium did not start: {error}"),
        }
    }

    async fn launch() -> io::Result<Browser> {
        let driver = Driver::start()?;
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|&arg| arg.to_owned()).collect();
        args.push(format!(
            "--user-data-dir={}",
            driver.dir.path().join("profile").display()
        ));
        args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .map_err(|error| driver.error(&format!("no WebDriver session: {error}")))?;
        let session_id = client
            .session_id()
            .await
            .ok()
            .flatten()
            .ok_or_else(|| driver.error("the new session has no id"))?;
        let browser = Browser {
            client,
            session_id,
            driver,
        };
        browser.set_window_size(DESKTOP).await;
        Ok(browser)
    }

    /// The last 40 lines of chromedriver's log (its requests and answers, Chromium's
    /// start), for a failing test to print.
    pub fn log_tail(&self) -> String {
        self.driver.log_tail()
    }

    /// The WebDriver client, to navigate (`goto`), find elements, run scripts, and to pass
    /// to this module's helpers.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Chromium's profile directory (`--user-data-dir`, fresh for each browser). Every
    /// Chromium process names it on its command line, which lets a test find them.
    pub fn profile_dir(&self) -> PathBuf {
        self.driver.dir.path().join("profile")
    }

    /// The port chromedriver listens on (127.0.0.1).
    pub fn driver_port(&self) -> u16 {
        self.driver.port
    }

    /// Makes the viewport 390×844 ([`PHONE`]), for the narrow layout.
    pub async fn set_phone_width(&self) {
        self.set_window_size(PHONE).await;
    }

    /// Makes the viewport 1280×900 again ([`DESKTOP`]), the size a session starts with.
    pub async fn set_desktop_width(&self) {
        self.set_window_size(DESKTOP).await;
    }

    /// Makes the viewport (`window.innerWidth` × `window.innerHeight`) `width` × `height`.
    /// WebDriver sizes the outer window, and headless Chromium still reserves room for
    /// the browser's toolbars in it (143 px of height): the window is set, the viewport
    /// measured, and the window set again grown by the difference.
    pub async fn set_window_size(&self, (width, height): (u32, u32)) {
        let (mut outer_width, mut outer_height) = (width, height);
        for _ in 0..3 {
            self.client
                .set_window_size(outer_width, outer_height)
                .await
                .unwrap_or_else(|error| {
                    panic!("cannot resize the window to {outer_width}×{outer_height}: {error}")
                });
            let (inner_width, inner_height) = self.viewport().await;
            if (inner_width, inner_height) == (width, height) {
                return;
            }
            outer_width = (outer_width + width).saturating_sub(inner_width);
            outer_height = (outer_height + height).saturating_sub(inner_height);
        }
        let viewport = self.viewport().await;
        panic!("the viewport is {viewport:?}, not {width}×{height}");
    }

    /// The viewport's size in CSS pixels: `window.innerWidth`, `window.innerHeight`.
    pub async fn viewport(&self) -> (u32, u32) {
        let size = self
            .client
            .execute(
                "return [window.innerWidth, window.innerHeight];",
                Vec::new(),
            )
            .await
            .unwrap_or_else(|error| panic!("cannot read the viewport's size: {error}"));
        let dimension = |value: &Value| {
            value
                .as_u64()
                .and_then(|pixels| u32::try_from(pixels).ok())
                .unwrap_or_else(|| panic!("viewport size {size}"))
        };
        (dimension(&size[0]), dimension(&size[1]))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium cleanly (its profile
        // closed) before Driver's drop kills what is left. A plain blocking request:
        // Drop cannot await, and the test's runtime may already be shutting down.
        let _ = driver_request(
            self.driver.port,
            "DELETE",
            &format!("/session/{}", self.session_id),
        );
    }
}

/// One HTTP/1.1 request to chromedriver, blocking: `(status, body)`.
fn driver_request(port: u16, method: &str, path: &str) -> io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    // Ending a session waits for Chromium to quit: seconds at worst.
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut length = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = Vec::new();
    match length {
        Some(length) => {
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// `POST /session/{id}/permissions` (the W3C Permissions extension command, which
/// chromedriver implements): sets one permission of the current page's origin.
#[derive(Debug)]
struct SetPermission {
    name: &'static str,
    state: &'static str,
}

impl WebDriverCompatibleCommand for SetPermission {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/permissions", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "descriptor": { "name": self.name }, "state": self.state });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Grants `clipboard-read` and `clipboard-write` to the origin of the page now open, so
/// that the page's `navigator.clipboard.writeText` and [`read_clipboard`] work without a
/// prompt (headless Chromium would deny them). Call it after `goto`: a permission belongs
/// to an origin.
pub async fn grant_clipboard(client: &Client) {
    for name in ["clipboard-read", "clipboard-write"] {
        client
            .issue_cmd(SetPermission {
                name,
                state: "granted",
            })
            .await
            .unwrap_or_else(|error| panic!("cannot grant {name}: {error}"));
    }
}

/// The text on the clipboard (`navigator.clipboard.readText()` in the page; see
/// [`grant_clipboard`]). The page must be a secure context: `http://127.0.0.1` is one.
pub async fn read_clipboard(client: &Client) -> String {
    let answer = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             navigator.clipboard.readText().then(
                 (text) => done({ text }),
                 (error) => done({ error: String(error) }));",
            Vec::new(),
        )
        .await
        .unwrap_or_else(|error| panic!("cannot read the clipboard: {error}"));
    match answer["text"].as_str() {
        Some(text) => text.to_owned(),
        None => panic!("cannot read the clipboard: {}", answer["error"]),
    }
}

/// One failed axe-core rule: what it checks and where it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxeViolation {
    /// The rule, e.g. `label`, `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks for, in a sentence.
    pub help: String,
    /// Deque's page about the rule.
    pub help_url: String,
    /// A CSS selector of each failing element (frames or shadow roots joined by ` >>> `).
    pub targets: Vec<String>,
}

impl AxeViolation {
    /// Whether the impact is `serious` or `critical`: what [`assert_no_serious_axe_violations`]
    /// refuses.
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_str(), "serious" | "critical")
    }
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} at {} <{}>",
            self.id,
            self.impact,
            self.help,
            self.targets.join(", "),
            self.help_url
        )
    }
}

/// axe.min.js, read once per test process.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = axe_js_path();
        std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "cannot read axe-core's {} ({error}): run scripts/test, or set {AXE_JS_ENV}",
                path.display()
            )
        })
    })
}

/// Runs axe-core on the page now open (every rule axe runs by default: WCAG 2.x A and AA
/// and best practices) and returns its violations. axe is injected first (as WebDriver
/// script, which the page's `Content-Security-Policy` does not govern), then
/// `axe.run()` awaited in the page.
pub async fn axe_violations(client: &Client) -> Vec<AxeViolation> {
    client
        .execute(
            &format!("if (!window.axe) {{ {} }}", axe_source()),
            Vec::new(),
        )
        .await
        .unwrap_or_else(|error| panic!("cannot inject axe-core: {error}"));
    let answer = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] }).then(
                 (results) => done({ violations: results.violations.map((v) => ({
                     id: v.id,
                     impact: v.impact || '',
                     help: v.help,
                     helpUrl: v.helpUrl,
                     targets: v.nodes.map((n) => n.target.flat(Infinity).join(' >>> ')),
                 })) }),
                 (error) => done({ error: String(error) }));",
            Vec::new(),
        )
        .await
        .unwrap_or_else(|error| panic!("axe-core did not run: {error}"));
    let Some(violations) = answer["violations"].as_array() else {
        panic!("axe-core failed: {}", answer["error"]);
    };
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    violations
        .iter()
        .map(|violation| AxeViolation {
            id: text(&violation["id"]),
            impact: text(&violation["impact"]),
            help: text(&violation["help"]),
            help_url: text(&violation["helpUrl"]),
            targets: violation["targets"]
                .as_array()
                .map(|targets| targets.iter().map(text).collect())
                .unwrap_or_default(),
        })
        .collect()
}

/// Runs [`axe_violations`] and panics listing every `serious` or `critical` one, naming
/// the page (`page_name`) so that the failing test says which page broke. Minor and
/// moderate ones are printed on stderr only.
pub async fn assert_no_serious_axe_violations(client: &Client, page_name: &str) {
    let violations = axe_violations(client).await;
    let (serious, other): (Vec<_>, Vec<_>) = violations.iter().partition(|v| v.is_serious());
    for violation in &other {
        eprintln!("axe on {page_name}: {violation}");
    }
    if !serious.is_empty() {
        let list: Vec<String> = serious.iter().map(|v| format!("  {v}")).collect();
        panic!(
            "serious accessibility violations on {page_name}:\n{}",
            list.join("\n")
        );
    }
}

/// Saves a PNG of the viewport as `docs/screenshots/<name>.png` under the
/// [`workspace_root`] (the directory is created), the pictures the documentation shows;
/// returns the path. Only the UI's own tests should write there: the kit's tests use
/// [`screenshot_to`] with a temporary directory.
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    screenshot_to(client, &workspace_root().join("docs/screenshots"), name).await
}

/// Saves a PNG of the viewport as `<dir>/<name>.png` (the directory is created); returns
/// the path.
///
/// # Panics
/// When `name` is not made of ASCII letters, digits, `-` and `_` (it names a committed
/// file), or the screenshot cannot be taken or written.
pub async fn screenshot_to(client: &Client, dir: &Path, name: &str) -> PathBuf {
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "screenshot name {name:?}: use letters, digits, - and _"
    );
    let png = client
        .screenshot()
        .await
        .unwrap_or_else(|error| panic!("cannot take the screenshot {name}: {error}"));
    let path = dir.join(format!("{name}.png"));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, png))
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    path
}

/// The element matching `css`, or a panic naming the selector and the page.
pub async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element,
        Err(error) => {
            let url = client.current_url().await.map(String::from);
            panic!("no element {css:?} on {url:?}: {error}")
        }
    }
}

/// Replaces the value of the input or textarea matching `css` with `value`, typed as
/// keystrokes (the page's input events fire).
pub async fn fill(client: &Client, css: &str, value: &str) {
    let element = find(client, css).await;
    element
        .clear()
        .await
        .unwrap_or_else(|error| panic!("cannot clear {css:?}: {error}"));
    element
        .send_keys(value)
        .await
        .unwrap_or_else(|error| panic!("cannot type into {css:?}: {error}"));
}

/// Clicks the element matching `css` (a real pointer click: it must be visible and not
/// covered, as for a user).
pub async fn click(client: &Client, css: &str) {
    find(client, css)
        .await
        .click()
        .await
        .unwrap_or_else(|error| panic!("cannot click {css:?}: {error}"));
}

/// Waits until an element matching `css` shows a text containing `text` (polled every
/// 50 ms) and returns that element's whole text; panics after `timeout` with what was seen.
pub async fn wait_for_text(client: &Client, css: &str, text: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let mut seen = Vec::new();
        if let Ok(elements) = client.find_all(Locator::Css(css)).await {
            for element in elements {
                if let Ok(shown) = element.text().await {
                    if shown.contains(text) {
                        return shown;
                    }
                    seen.push(shown);
                }
            }
        }
        if Instant::now() >= deadline {
            panic!("no {css:?} showing {text:?} after {timeout:?}; seen: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The page's HTML as the browser holds it now (the DOM serialized, changes made by
/// scripts included), to grep for what must never be shown, such as secrets. Values typed
/// into inputs are properties, not attributes: they do not appear.
pub async fn page_html(client: &Client) -> String {
    client
        .source()
        .await
        .unwrap_or_else(|error| panic!("cannot read the page's HTML: {error}"))
}
