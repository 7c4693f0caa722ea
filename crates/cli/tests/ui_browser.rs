//! The web UI end to end, in a real headless Chromium (testkit's browser harness) against
//! `mailzone serve` as a real process and a real Knot: an administrator signs in, adds a
//! DNS server and tests its connection (a wrong TSIG key is shown as such), adds a domain
//! published through it, reviews the plan, publishes, sees the task succeed and the domain
//! in sync, finds a record deleted behind mailzone's back with "Check now" and repairs it
//! with "Publish now", sees a publication fail while the DNS server is down and retries it,
//! copies values to the clipboard, and downloads the zone file (checked by BIND's
//! `named-checkzone`).
//!
//! On every page visited: no secret in the HTML (TSIG secrets, the API token, the admin
//! password, the DKIM private keys), no serious or critical axe-core violation, and a
//! screenshot in `docs/screenshots/` (desktop; the domains list and the domain page also at
//! phone width, where the domains list must not scroll sideways).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Service;
use common::ui::{self, PASSWORD};
use fantoccini::{Client, Locator};
use mailzone_testkit::browser::{self, Browser};
use mailzone_testkit::{DnsServer, TsigKey, ZoneSpec};
use serde_json::{Value, json};

const ZONE: &str = "example.test";
/// The DNS server with the Knot's key, and one with a wrong key.
const GOOD_SERVER: &str = "knot";
const BAD_SERVER: &str = "knot-wrong-key";
/// How long a page part may take to show what a test waits for (a task run, a check).
const WAIT: Duration = Duration::from_secs(20);

/// The service's config: the mail server only (the DNS servers and the domain are added
/// through the UI); the checks ask the Knot.
fn config(knot: &DnsServer) -> String {
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[server.services]
imap = {{}}
submission = {{}}

[serve]
checkNameservers = ["{addr}"]
"#,
        addr = knot.addr
    )
}

/// One run of the scenario: the Knot, the service, the browser, and what was seen.
struct Scenario {
    knot: DnsServer,
    dir: tempfile::TempDir,
    service: Service,
    browser: Browser,
    /// Every page checked: its name and its HTML as rendered (grepped for secrets at the
    /// end).
    pages: Vec<(String, String)>,
    /// The serious or critical axe-core violations seen, by page.
    axe_serious: Vec<String>,
    started: Instant,
}

impl Scenario {
    fn client(&self) -> &Client {
        self.browser.client()
    }

    fn url(&self, path: &str) -> String {
        self.service.url(path)
    }

    /// Prints how far the scenario got, for the log of a slow or failing run.
    fn step(&self, what: &str) {
        eprintln!("[{:>5.1} s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// Opens `path`.
    async fn goto(&self, path: &str) {
        self.client()
            .goto(&self.url(path))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The path (and query) of the page now open.
    async fn path(&self) -> String {
        let url = self.client().current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The checks every page visited passes: its HTML kept for the secrets check, its
    /// accessibility checked (serious violations asserted at the end), a screenshot named
    /// `name`.
    async fn check_page(&mut self, name: &str) {
        let html = browser::page_html(self.client()).await;
        if !self.exists("main#main h1").await {
            let path = self.path().await;
            panic!("{name}: {path} is not a page of the UI (a missing route?):\n{html}");
        }
        self.pages.push((name.to_string(), html));
        // Serious violations are gathered and asserted at the end: one run lists every
        // page's.
        for violation in browser::axe_violations(self.client()).await {
            let line = format!("{name}: {violation}");
            eprintln!("axe on {line}");
            if violation.is_serious() {
                self.axe_serious.push(line);
            }
        }
        browser::screenshot(self.client(), name).await;
    }

    /// Opens `path` and checks it ([`Scenario::check_page`]).
    async fn visit(&mut self, path: &str, name: &str) {
        self.goto(path).await;
        self.check_page(name).await;
    }

    /// Scrolls the element matching `css` to the top of the viewport (for the screenshot).
    async fn scroll_to(&self, css: &str) {
        self.client()
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView();",
                vec![json!(css)],
            )
            .await
            .unwrap_or_else(|e| panic!("scroll to {css}: {e}"));
    }

    /// Whether an element matches `css` on the page now open.
    async fn exists(&self, css: &str) -> bool {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|found| !found.is_empty())
    }

    /// The plan's summary: the domain page loads its plan in place after the page itself,
    /// so it is waited for.
    async fn plan_summary(&self) -> String {
        browser::wait_for_text(self.client(), "#plan-summary", "", WAIT).await
    }

    /// The text of the element matching `css`.
    async fn text(&self, css: &str) -> String {
        browser::find(self.client(), css)
            .await
            .text()
            .await
            .unwrap()
    }

    /// Clicks `css` (a submit button or a link), accepts the confirmation its form may ask
    /// for, and waits until the next page has loaded.
    async fn submit(&self, css: &str) {
        // A mark on the current document: gone once another document is loaded.
        self.client()
            .execute("window.mailzoneOldPage = true;", Vec::new())
            .await
            .unwrap();
        browser::click(self.client(), css).await;
        // A `form[data-confirm]` asks first; nothing to accept otherwise.
        let _ = self.client().accept_alert().await;
        let deadline = Instant::now() + WAIT;
        loop {
            let loaded = self
                .client()
                .execute(
                    "return !window.mailzoneOldPage && document.readyState === 'complete';",
                    Vec::new(),
                )
                .await;
            if loaded.is_ok_and(|v| v == json!(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css} loaded no new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reloads `path` until an element matching `css` exists (the page may update itself
    /// too; reloading does not depend on it), panicking after [`WAIT`] with the page's
    /// text.
    async fn reload_until(&self, path: &str, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.goto(path).await;
            if self.exists(css).await {
                return;
            }
            if Instant::now() >= deadline {
                let shown = self.text("main").await;
                panic!(
                    "{path}: no {css:?} after {WAIT:?}; the page shows:\n{shown}\n{}",
                    self.service.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Types `value` into the field named `name` of the form `form`, if the form has it
    /// (an input or textarea; a select is set to the option of that value).
    async fn set_field(&self, form: &str, name: &str, value: &str) -> bool {
        let css = format!("{form} [name=\"{name}\"]");
        let Ok(element) = self.client().find(Locator::Css(&css)).await else {
            return false;
        };
        match element.tag_name().await.unwrap().as_str() {
            "select" => element
                .select_by_value(value)
                .await
                .unwrap_or_else(|e| panic!("{css}: no option {value:?}: {e}")),
            _ => {
                let kind = element.attr("type").await.unwrap().unwrap_or_default();
                if kind == "radio" || kind == "checkbox" {
                    let option = format!("{form} [name=\"{name}\"][value=\"{value}\"]");
                    browser::click(self.client(), &option).await;
                } else {
                    browser::fill(self.client(), &css, value).await;
                }
            }
        }
        true
    }

    /// The task rows of the tasks page now open: `(id, status)`.
    async fn task_rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        for row in self
            .client()
            .find_all(Locator::Css("table#tasks tr[data-task-id]"))
            .await
            .unwrap()
        {
            rows.push((
                row.attr("data-task-id").await.unwrap().unwrap_or_default(),
                row.attr("data-status").await.unwrap().unwrap_or_default(),
            ));
        }
        rows
    }

    /// Waits on the tasks page until the newest task of the domain (first row, newest
    /// first; a task not in `known`) reaches `status`; returns its id.
    async fn wait_for_new_task(&self, known: &[String], status: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let path = format!("/ui/tasks?domain={ZONE}");
        loop {
            self.goto(&path).await;
            let rows = self.task_rows().await;
            let fresh: Vec<&(String, String)> =
                rows.iter().filter(|(id, _)| !known.contains(id)).collect();
            if let Some((id, _)) = fresh.iter().find(|(_, s)| s == status) {
                return id.clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "no new task {status} on {path} after {WAIT:?}: {rows:?}\n{}",
                    self.service.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The ids of the tasks listed on the tasks page.
    async fn task_ids(&self) -> Vec<String> {
        self.goto(&format!("/ui/tasks?domain={ZONE}")).await;
        self.task_rows()
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// The domain's row of the domains list: the text of cell `cell` (`sync`, `check`,
    /// `task`).
    async fn domain_cell(&self, cell: &str) -> String {
        self.text(&format!(
            "table#domains tr[data-domain=\"{ZONE}\"] td.{cell}"
        ))
        .await
    }

    /// The codes of the findings shown on the domain page now open.
    async fn finding_codes(&self) -> Vec<String> {
        let mut codes = Vec::new();
        for row in self
            .client()
            .find_all(Locator::Css("table#findings tr.finding"))
            .await
            .unwrap()
        {
            codes.push(row.attr("data-code").await.unwrap().unwrap_or_default());
        }
        codes
    }

    /// Clicks "Check now" on the domain page and waits for the check's result.
    async fn check_now(&self) {
        self.goto(&format!("/ui/domains/{ZONE}")).await;
        self.submit("section#check button#check-now").await;
        let deadline = Instant::now() + WAIT;
        while !self.exists("section#check table#findings").await
            && !self.text("section#check").await.contains("No errors")
        {
            assert!(
                Instant::now() < deadline,
                "no check result: {}",
                self.text("section#check").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks "Publish now" on the domain page; the new task's id once `status`.
    async fn publish_now(&self, status: &str) -> String {
        let known = self.task_ids().await;
        self.goto(&format!("/ui/domains/{ZONE}")).await;
        self.submit("section#plan button#publish-now").await;
        self.wait_for_new_task(&known, status).await
    }

    /// Clicks the copy button `button` and returns what it put on the clipboard.
    async fn copy(&self, button: &fantoccini::elements::Element) -> String {
        // The clipboard is emptied first: a button that copies nothing fails the test.
        self.client()
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 navigator.clipboard.writeText('').then(() => done(null), (e) => done(String(e)));",
                Vec::new(),
            )
            .await
            .unwrap();
        button.click().await.expect("click the copy button");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = browser::read_clipboard(self.client()).await;
            if !text.is_empty() || Instant::now() >= deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fetches `path` in the page (with the session's cookie, as a download would):
    /// `(status, Content-Type, Content-Disposition, body)`.
    async fn fetch(&self, path: &str) -> (u64, String, String, String) {
        let answer = self
            .client()
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(arguments[0], { credentials: 'same-origin' }).then(async (r) => done({
                     status: r.status,
                     type: r.headers.get('content-type') || '',
                     disposition: r.headers.get('content-disposition') || '',
                     body: await r.text(),
                 }), (e) => done({ error: String(e) }));",
                vec![json!(path)],
            )
            .await
            .unwrap();
        assert!(answer["error"].is_null(), "fetch {path}: {answer}");
        let text = |key: &str| answer[key].as_str().unwrap_or_default().to_string();
        (
            answer["status"].as_u64().unwrap_or(0),
            text("type"),
            text("disposition"),
            text("body"),
        )
    }

    /// Whether the page scrolls sideways: the document wider than the viewport.
    async fn overflows(&self) -> (u64, u64) {
        let widths = self
            .client()
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                Vec::new(),
            )
            .await
            .unwrap();
        (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap())
    }
}

/// Starts the Knot, the service (admin password set) and the browser; `None` (skip) when
/// Knot, Chromium, chromedriver or axe-core is missing.
async fn start() -> Option<Scenario> {
    let started = Instant::now();
    if !mailzone_testkit::require_tools(&["knotd", "kdig", "knsupdate", "named-checkzone"]) {
        return None;
    }
    let browser = Browser::start().await?;
    let zone = ZoneSpec::new(ZONE, "@ 3600 IN TXT \"site-verification=ui\"\n");
    let knot = ui::start_knot(&[zone]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), config(&knot)).unwrap();
    ui::set_password(dir.path(), PASSWORD);
    let check = knot.addr.to_string();
    // A publication to a server that is down fails after two attempts a second apart.
    let service = Service::start_with(
        dir.path(),
        None,
        &[
            "--max-attempts",
            "2",
            "--retry-backoff",
            "1s",
            "--check-nameserver",
            &check,
        ],
    );
    Some(Scenario {
        knot,
        dir,
        service,
        browser,
        pages: Vec::new(),
        axe_serious: Vec::new(),
        started,
    })
}

/// The records the API gives for the domain.
fn api_records(service: &Service) -> Vec<Value> {
    let (status, records) = service.get(&format!("/api/v1/domains/{ZONE}/records"));
    assert_eq!(status, 200, "{records}");
    records.as_array().unwrap().clone()
}

/// The base64 bodies of the domain's DKIM private keys (`mailzone dkim export`).
fn dkim_private_keys(dir: &Path) -> Vec<String> {
    let out = dir.join("export");
    common::mailzone_ok(
        dir,
        &[
            "dkim",
            "export",
            ZONE,
            "--format",
            "pem",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(out.join(ZONE)).unwrap() {
        let pem = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        assert!(body.len() > 40, "{pem}");
        keys.push(body);
    }
    assert!(!keys.is_empty(), "the domain has DKIM keys");
    keys
}

/// The whole scenario, one step after the other (see the module documentation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_publishes_checks_repairs_and_retries_a_domain_in_the_browser() {
    let Some(mut s) = start().await else {
        return;
    };
    let wrong_secret = TsigKey::generate("mailzone-ui").secret_base64;

    // Sign in: a page of the UI sends a signed-out browser to the sign-in form.
    s.step("sign in");
    s.goto("/ui/domains").await;
    assert!(
        s.path().await.starts_with("/ui/sign-in"),
        "{}",
        s.path().await
    );
    s.check_page("sign-in").await;
    browser::fill(s.client(), "#secret", PASSWORD).await;
    s.submit("button[type=submit]").await;
    assert_eq!(s.path().await, "/ui/domains");
    s.check_page("domains-empty").await;

    // Adding a domain without any DNS server offers to create one first.
    s.step("add a DNS server");
    s.visit("/ui/domains/new", "domain-new-no-dns-server").await;
    s.submit("a#create-dns-server").await;
    assert_eq!(s.path().await, "/ui/dns-servers/new");
    let good_secret = s.knot.key.secret_base64.clone();
    add_dns_server(&mut s, GOOD_SERVER, &good_secret).await;

    // Testing the connection with the right key: OK.
    s.step("test its connection");
    let result = test_connection(&mut s, GOOD_SERVER, "ok").await;
    eprintln!("connection test with the right key: {result}");
    s.scroll_to("form#test-connection-form").await;
    s.check_page("dns-server").await;

    // A second server with a wrong key: the test names the TSIG failure.
    s.visit("/ui/dns-servers", "dns-servers").await;
    s.submit("a#add-dns-server").await;
    add_dns_server(&mut s, BAD_SERVER, &wrong_secret).await;
    let result = test_connection(&mut s, BAD_SERVER, "error").await;
    assert!(
        result.contains("TSIG") || result.contains("BADSIG") || result.contains("BADKEY"),
        "the failure names the key: {result}"
    );
    assert!(!result.contains(&wrong_secret), "{result}");
    eprintln!("connection test with a wrong key: {result}");
    s.scroll_to("form#test-connection-form").await;
    s.check_page("dns-server-tsig-error").await;
    s.visit("/ui/dns-servers", "dns-servers").await;
    for name in [GOOD_SERVER, BAD_SERVER] {
        assert!(
            s.exists(&format!("table#dns-servers tr[data-dns-server=\"{name}\"]"))
                .await
        );
    }

    // Add the domain, published automatically through the good server.
    s.step("add the domain");
    s.visit("/ui/domains", "domains-before").await;
    s.submit("a#add-domain").await;
    assert_eq!(s.path().await, "/ui/domains/new");
    s.check_page("domain-new").await;
    let form = "form#domain-form";
    assert!(s.set_field(form, "name", ZONE).await, "no name field");
    // The management mode (when the form asks) and the DNS server.
    s.set_field(form, "dnsManagement", "automatic").await;
    assert!(
        s.set_field(form, "dnsServer", GOOD_SERVER).await,
        "no dnsServer field in {form}"
    );
    s.submit("button#save-domain").await;
    assert_eq!(
        s.path().await.split('?').next(),
        Some(&*format!("/ui/domains/{ZONE}"))
    );

    // The plan: records to add.
    s.step("plan and publish");
    // Saving schedules the domain's first publication, as the API does: the plan shows
    // the additions until that task has run (a race this test does not lose on purpose;
    // the drift below shows a plan with an addition in every run).
    s.reload_until(&format!("/ui/domains/{ZONE}"), "section#plan #plan-summary")
        .await;
    let summary = s.text("#plan-summary").await;
    if summary != "In sync" {
        let to_add: u32 = summary
            .split(" to add")
            .next()
            .and_then(|n| n.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("plan summary {summary:?}"));
        assert!(to_add >= 5, "additions planned: {summary}");
        assert!(s.exists("section#plan table#plan-changes").await);
    } else {
        eprintln!("the first publication ran before the plan was shown");
    }
    s.check_page("domain-plan").await;
    // The publication scheduled by the save succeeds.
    s.wait_for_new_task(&[], "Succeeded").await;

    // Publish now: the task runs and succeeds; the domain is in sync and Knot serves it.
    s.publish_now("Succeeded").await;
    s.check_page("tasks").await;
    s.visit("/ui/domains", "domains").await;
    let sync = s.domain_cell("sync").await;
    assert!(sync.contains("In sync"), "{sync}");
    assert!(s.domain_cell("task").await.contains("Succeeded"));
    assert_eq!(s.knot.query(ZONE, "MX"), ["10 mail.example.test."]);
    let dmarc = s.knot.query(&format!("_dmarc.{ZONE}"), "TXT");
    assert!(dmarc.iter().any(|t| t.contains("v=DMARC1")), "{dmarc:?}");
    s.visit(&format!("/ui/domains/{ZONE}"), "domain").await;
    assert!(s.plan_summary().await.contains("In sync"));

    // A check now: the baseline findings.
    s.step("check, break, check, repair");
    s.check_now().await;
    let baseline = s.finding_codes().await;

    // The DMARC record deleted behind mailzone's back: the check finds it, with a fix.
    mailzone_testkit::nsupdate_at(
        s.knot.addr,
        ZONE,
        &s.knot.key,
        &[&format!("update delete _dmarc.{ZONE}. TXT")],
    )
    .unwrap();
    assert!(s.knot.query(&format!("_dmarc.{ZONE}"), "TXT").is_empty());
    s.goto(&format!("/ui/domains/{ZONE}")).await;
    assert_eq!(s.plan_summary().await, "1 to add, 0 to update, 0 to delete");
    let change = s.text("section#plan table#plan-changes").await;
    assert!(change.contains("_dmarc"), "{change}");
    s.check_now().await;
    let after = s.finding_codes().await;
    let new: Vec<&String> = after.iter().filter(|c| !baseline.contains(c)).collect();
    assert!(!new.is_empty(), "no new finding: {baseline:?} → {after:?}");
    let row = browser::find(
        s.client(),
        &format!("table#findings tr.finding[data-code=\"{}\"]", new[0]),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        row.to_ascii_lowercase().contains("dmarc"),
        "the finding names the record: {row}"
    );
    let fix = s
        .text(&format!(
            "table#findings tr.finding[data-code=\"{}\"] td.fix",
            new[0]
        ))
        .await;
    assert!(
        fix.contains("DMARC1"),
        "the fix is the record to publish: {fix:?}"
    );
    s.scroll_to("section#check").await;
    s.check_page("domain-check-finding").await;
    s.visit("/ui/domains", "domains-out-of-sync").await;
    let check = s.domain_cell("check").await;
    assert!(check.contains("error"), "the last check's errors: {check}");
    eprintln!(
        "after the drift the domains list shows: sync {:?}, check {check:?}",
        s.domain_cell("sync").await
    );

    // Publish now repairs it.
    s.publish_now("Succeeded").await;
    let dmarc = s.knot.query(&format!("_dmarc.{ZONE}"), "TXT");
    assert!(dmarc.iter().any(|t| t.contains("v=DMARC1")), "{dmarc:?}");
    s.check_now().await;
    let repaired = s.finding_codes().await;
    assert!(
        !repaired.contains(new[0]),
        "still found after the repair: {repaired:?}"
    );

    // The DNS server down: the publication fails with its reason; Retry succeeds once the
    // server is back (same port, same zone files and journal).
    s.step("publish while the DNS server is down, then retry");
    s.knot.stop();
    let failed = s.publish_now("Failed").await;
    let row = format!("table#tasks tr[data-task-id=\"{failed}\"]");
    let reason = s.text(&format!("{row} td.failure-reason")).await;
    let down = format!("connection refused by {}", s.knot.addr);
    assert!(reason.contains(&down), "a failed task says why: {reason}");
    s.check_page("tasks-failed").await;
    s.visit("/ui/domains", "domains-failed").await;
    assert!(s.domain_cell("task").await.contains("Failed"));
    s.knot.restart().unwrap();
    s.goto(&format!("/ui/tasks?domain={ZONE}")).await;
    s.submit(&format!("{row} button.retry")).await;
    let deadline = Instant::now() + WAIT;
    loop {
        s.goto(&format!("/ui/tasks?domain={ZONE}")).await;
        if s.exists(&format!("{row}[data-status=\"Succeeded\"]")).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retry did not succeed: {:?}",
            s.task_rows().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The pages not on the way above, for axe, the secrets grep and a screenshot each.
    s.step("the other pages");
    s.visit(&format!("/ui/tasks/{failed}"), "task").await;
    s.visit(&format!("/ui/domains/{ZONE}/edit"), "domain-edit")
        .await;
    s.visit(&format!("/ui/domains/{ZONE}/plan"), "domain-plan-page")
        .await;
    s.visit(&format!("/ui/domains/{ZONE}/tlsa"), "domain-tlsa")
        .await;
    s.visit("/ui/dns-servers/knot/edit", "dns-server-edit")
        .await;
    s.visit("/ui/no-such-page", "not-found").await;

    // Copy buttons put the exact values on the clipboard: an owner name and a long DKIM
    // TXT value (an RSA key, longer than one TXT string).
    s.step("copy buttons");
    s.goto(&format!("/ui/domains/{ZONE}")).await;
    browser::grant_clipboard(s.client()).await;
    // reqwest's blocking client must not run on the runtime's threads as such.
    let records = tokio::task::block_in_place(|| api_records(&s.service));
    let dkim = records
        .iter()
        .find(|r| r["type"] == "TXT" && r["value"].as_str().unwrap().contains("k=rsa"))
        .unwrap_or_else(|| panic!("no RSA DKIM record: {records:#?}"));
    let (owner, value) = (
        dkim["name"].as_str().unwrap(),
        dkim["value"].as_str().unwrap(),
    );
    assert!(value.len() > 255, "a long value: {value}");
    let mut dkim_row = None;
    for row in s
        .client()
        .find_all(Locator::Css("section#records tr.record"))
        .await
        .unwrap()
    {
        if row.text().await.unwrap().contains("k=rsa") {
            dkim_row = Some(row);
        }
    }
    let row = dkim_row.expect("the RSA DKIM record is listed in section#records");
    let mut owner_button = None;
    let mut value_button = None;
    for button in row
        .find_all(Locator::Css("button.copy[data-copy]"))
        .await
        .unwrap()
    {
        let copies = button.attr("data-copy").await.unwrap().unwrap_or_default();
        if copies.contains("k=rsa") {
            value_button = Some(button);
        } else if copies.trim_end_matches('.') == owner.trim_end_matches('.') {
            owner_button = Some(button);
        }
    }
    let owner_button = owner_button.expect("a copy button for the owner name");
    let copied_owner = s.copy(&owner_button).await;
    assert!(
        copied_owner == owner || copied_owner == owner.trim_end_matches('.'),
        "owner copied {copied_owner:?}, record {owner:?}"
    );
    let value_button = value_button.expect("a copy button for the DKIM value");
    assert_eq!(s.copy(&value_button).await, value, "the DKIM value copied");

    // The zone file download loads in BIND's named-checkzone.
    s.step("zone file");
    let href = browser::find(s.client(), "a#download-zone")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(href, format!("/ui/domains/{ZONE}/zone"));
    let (status, kind, disposition, zone) = s.fetch(&href).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/plain"), "{kind}");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    // The download holds the domain's records, not a whole zone (no SOA, no NS: those are
    // the zone's owner's): it is loaded as an operator would, $INCLUDEd in a zone.
    let file = s.dir.path().join("downloaded.zone");
    std::fs::write(&file, &zone).unwrap();
    let wrapper = s.dir.path().join("with-soa.zone");
    std::fs::write(
        &wrapper,
        format!(
            "$ORIGIN {ZONE}.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 604800 300\n\
             @ IN NS ns1\nns1 IN A 127.0.0.1\n$INCLUDE {}\n",
            file.display()
        ),
    )
    .unwrap();
    let checked = Command::new("named-checkzone")
        .args(["-k", "fail", "-i", "local"])
        .arg(ZONE)
        .arg(&wrapper)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "named-checkzone: {}{}\n{zone}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(zone.contains("v=DMARC1"), "{zone}");
    assert!(
        browser::find(s.client(), "a#download-json")
            .await
            .attr("href")
            .await
            .unwrap()
            .is_some()
    );

    // Phone width: the domains list does not scroll sideways.
    s.step("phone width");
    s.browser.set_phone_width().await;
    s.visit("/ui/domains", "domains-phone").await;
    let (scroll, inner) = s.overflows().await;
    assert!(
        scroll <= inner,
        "the domains list scrolls sideways: {scroll} > {inner}"
    );
    s.visit(&format!("/ui/domains/{ZONE}"), "domain-phone")
        .await;
    let (scroll, inner) = s.overflows().await;
    eprintln!("the domain page at phone width: {scroll} px wide in {inner} px");
    s.browser.set_desktop_width().await;

    // No secret in any page shown.
    s.step("secrets");
    let mut secrets = vec![
        (
            "the TSIG secret".to_string(),
            s.knot.key.secret_base64.clone(),
        ),
        ("the wrong TSIG secret".to_string(), wrong_secret),
        ("the API token".to_string(), s.service.token.clone()),
        ("the admin password".to_string(), PASSWORD.to_string()),
    ];
    for (i, key) in dkim_private_keys(s.dir.path()).into_iter().enumerate() {
        secrets.push((format!("DKIM private key {i}"), key.clone()));
        // A part of it (one PEM line) is a leak too.
        secrets.push((
            format!("DKIM private key {i}, first line"),
            key[..40].to_string(),
        ));
    }
    for (page, html) in &s.pages {
        for (what, secret) in &secrets {
            assert!(
                !html.contains(secret.as_str()),
                "{what} is in the page {page}"
            );
        }
    }
    assert!(
        s.axe_serious.is_empty(),
        "serious accessibility violations:\n{}",
        s.axe_serious.join("\n")
    );
    s.step(&format!("done: {} pages checked", s.pages.len()));
}

/// Fills and saves the new DNS server form (open now) for the Knot with `secret`; ends on
/// the server's page.
async fn add_dns_server(s: &mut Scenario, name: &str, secret: &str) {
    assert_eq!(
        s.path().await.split('?').next(),
        Some("/ui/dns-servers/new")
    );
    let form = "form#dns-server-form";
    let shots = if name == GOOD_SERVER {
        "rfc2136"
    } else {
        "wrong-key"
    };
    // The kind first (a GET form), then the page of that kind's fields.
    if name == GOOD_SERVER {
        s.check_page("dns-server-kind").await;
    }
    browser::find(s.client(), "select#kind")
        .await
        .select_by_value("rfc2136")
        .await
        .unwrap();
    if !s.exists(&format!("{form} [name=\"host\"]")).await {
        s.submit("button#choose-kind").await;
    }
    s.check_page(&format!("dns-server-new-{shots}")).await;
    let fields = [
        ("name", name.to_string()),
        ("host", s.knot.addr.ip().to_string()),
        ("port", s.knot.addr.port().to_string()),
        ("protocol", "tcp".to_string()),
        ("keyName", s.knot.key.name.clone()),
        ("key", secret.to_string()),
    ];
    for (field, value) in &fields {
        let set = s.set_field(form, field, value).await;
        assert!(set || *field == "protocol", "no field {field} in {form}");
    }
    s.submit("button#save-dns-server").await;
    assert_eq!(
        s.path().await.split('?').next(),
        Some(&*format!("/ui/dns-servers/{name}")),
        "saved: {}",
        s.text("main").await
    );
}

/// Tests the connection of DNS server `name` (its page) for the zone; waits for the
/// result of class `class` (`ok` or `error`) and returns its text.
async fn test_connection(s: &mut Scenario, name: &str, class: &str) -> String {
    s.goto(&format!("/ui/dns-servers/{name}")).await;
    browser::fill(s.client(), "form#test-connection-form #test-zone", ZONE).await;
    s.submit("button#test-connection").await;
    let css = format!("#connection-result.{class}");
    let deadline = Instant::now() + WAIT;
    while !s.exists(&css).await {
        let shown = if s.exists("#connection-result").await {
            s.text("#connection-result").await
        } else {
            String::new()
        };
        assert!(
            Instant::now() < deadline,
            "no {css} for {name}; shown: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.text(&css).await
}
