//! The web UI's security promises, checked over plain HTTP against `mailzone serve` as a
//! real process (no browser): every page and every form needs a session; a form posted
//! without its CSRF token is refused and changes nothing; the cookies are `HttpOnly`,
//! `SameSite=Strict`, scoped to `/ui`, and `Secure` under HTTPS; an idle session ends;
//! every answer carries the security headers; the public endpoints stay as they were; and
//! signing out ends the session for good.
//!
//! The pages and forms checked are found by crawling the signed-in UI (every `/ui/` link
//! and every POST form of every page reached) plus the routes the UI promises (its stable
//! hooks), so the checks grow with the pages.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use common::ui::{
    self, Answer, PASSWORD, SESSION_COOKIE, SIGN_IN_COOKIE, UiClient, line_value, set_cookie_line,
    set_cookies,
};
use common::{Service, examples, free_port};
use mailzone_testkit::{DnsServer, ServerKind, ZoneSpec, poll_until};
use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::{Value, json};

/// The domain published to the Knot.
const ZONE: &str = "example.test";
/// A domain under manual DNS management.
const MANUAL: &str = "manual.example";
/// The most pages a crawl visits (a guard against a page linking to endless variants).
const MAX_PAGES: usize = 80;

/// The config: `example.test` published to `knot` (when there is one) by the DNS server
/// `primary`, and `manual.example` under manual DNS management; `extra` is appended.
fn config(knot: Option<&DnsServer>, extra: &str) -> String {
    let mut text = format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[domain."{MANUAL}"]
mtaSts = {{ mode = "enforce" }}
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}
"#
    );
    if let Some(knot) = knot {
        text.push_str(&knot.dns_server_table(
            "primary",
            &format!(
                "authoritativeServers = [\"{}\"]\npollingInterval = \"100ms\"\npropagationTimeout = \"20s\"\n",
                knot.addr
            ),
        ));
        text.push_str(&format!(
            "\n[domain.\"{ZONE}\"]\nmtaSts = {{ mode = \"enforce\" }}\n\
             dkimManagement = {{ automatic = {{ algorithms = [\"ed25519-sha256\"] }} }}\n\
             dnsManagement = {{ automatic = {{ dnsServer = \"primary\" }} }}\n"
        ));
    }
    text.push_str(extra);
    text
}

/// A test directory with `config` and the admin password set.
fn directory(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), config).unwrap();
    ui::set_password(dir.path(), PASSWORD);
    dir
}

/// A Knot serving [`ZONE`], or `None` (skip) without one.
fn start_knot() -> Option<DnsServer> {
    if !ServerKind::Knot.available() {
        return None;
    }
    let zone = ZoneSpec::new(ZONE, "@ 3600 IN TXT \"site-verification=ui\"\n");
    Some(ui::start_knot(&[zone]))
}

/// The attributes of a `Set-Cookie` line after the name=value pair, trimmed.
fn cookie_attributes(line: &str) -> Vec<String> {
    line.split(';')
        .skip(1)
        .map(|a| a.trim().to_string())
        .collect()
}

/// Asserts the flags every UI cookie carries, and `Secure` exactly when `https`.
fn assert_cookie_flags(what: &str, line: &str, https: bool) {
    let attributes = cookie_attributes(line);
    let has = |flag: &str| attributes.iter().any(|a| a.eq_ignore_ascii_case(flag));
    assert!(has("HttpOnly"), "{what}: not HttpOnly: {line}");
    assert!(
        has("SameSite=Strict"),
        "{what}: not SameSite=Strict: {line}"
    );
    assert!(has("Path=/ui"), "{what}: not Path=/ui: {line}");
    assert_eq!(
        has("Secure"),
        https,
        "{what}: Secure under HTTPS only: {line}"
    );
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain=")),
        "{what}: a Domain attribute widens the cookie to other hosts: {line}"
    );
}

/// HTML entities maud writes, decoded.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A start tag: its byte offset in the page and its attributes (a boolean attribute has an
/// empty value).
struct Tag {
    at: usize,
    attributes: BTreeMap<String, String>,
}

impl Tag {
    fn get(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    fn has(&self, name: &str) -> bool {
        self.attributes.contains_key(name)
    }
}

/// Every start tag `<name …>` of `html`, in order. Made for the markup maud writes
/// (attribute values in double quotes), not for any HTML.
fn tags(html: &str, name: &str) -> Vec<Tag> {
    let open = format!("<{name}");
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = html[from..].find(&open) {
        let at = from + offset;
        let rest = &html[at + open.len()..];
        from = at + open.len();
        if !rest.starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/') {
            continue;
        }
        let mut attributes = BTreeMap::new();
        let mut chars = rest;
        loop {
            chars = chars.trim_start();
            if chars.is_empty() || chars.starts_with('>') || chars.starts_with("/>") {
                break;
            }
            let end = chars
                .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
                .unwrap_or(chars.len());
            let key = chars[..end].to_ascii_lowercase();
            chars = &chars[end..];
            let mut value = String::new();
            if let Some(after) = chars.strip_prefix("=\"") {
                let close = after.find('"').unwrap_or(after.len());
                value = unescape(&after[..close]);
                chars = &after[(close + 1).min(after.len())..];
            } else if chars.starts_with('/') && !chars.starts_with("/>") {
                chars = &chars[1..];
            }
            if key.is_empty() {
                break;
            }
            attributes.insert(key, value);
        }
        found.push(Tag { at, attributes });
    }
    found
}

/// A POST form of a page: where it posts and the fields it would send, its CSRF token
/// among them.
#[derive(Debug, Clone)]
struct Form {
    page: String,
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    /// The fields without the CSRF token.
    fn without_csrf(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|(k, _)| k != "csrf")
            .cloned()
            .collect()
    }
}

/// The POST forms of `html` (a page at `page`) with the fields a browser would send:
/// inputs (checkboxes and radios when checked), each select's selected or first option,
/// textareas.
fn post_forms(page: &str, html: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    for form in tags(html, "form") {
        if !form
            .get("method")
            .is_some_and(|m| m.eq_ignore_ascii_case("post"))
        {
            continue;
        }
        let end = html[form.at..]
            .find("</form>")
            .map_or(html.len(), |e| form.at + e);
        let inner = &html[form.at..end];
        let mut fields = Vec::new();
        for input in tags(inner, "input") {
            let Some(name) = input.get("name") else {
                continue;
            };
            let kind = input.get("type").unwrap_or("text");
            if matches!(kind, "checkbox" | "radio") && !input.has("checked") {
                continue;
            }
            let value = input
                .get("value")
                .unwrap_or(if kind == "checkbox" { "on" } else { "" });
            fields.push((name.to_string(), value.to_string()));
        }
        for select in tags(inner, "select") {
            let Some(name) = select.get("name") else {
                continue;
            };
            let close = inner[select.at..]
                .find("</select>")
                .map_or(inner.len(), |e| select.at + e);
            let options = tags(&inner[select.at..close], "option");
            let chosen = options
                .iter()
                .find(|o| o.has("selected"))
                .or(options.first());
            if let Some(option) = chosen {
                fields.push((
                    name.to_string(),
                    option.get("value").unwrap_or_default().to_string(),
                ));
            }
        }
        for textarea in tags(inner, "textarea") {
            if let Some(name) = textarea.get("name") {
                let start = inner[textarea.at..]
                    .find('>')
                    .map_or(inner.len(), |e| textarea.at + e + 1);
                let close = inner[start..]
                    .find("</textarea>")
                    .map_or(inner.len(), |e| start + e);
                fields.push((name.to_string(), unescape(&inner[start..close])));
            }
        }
        let action = match form.get("action") {
            Some(action) if !action.is_empty() => action.to_string(),
            _ => page.to_string(),
        };
        forms.push(Form {
            page: page.to_string(),
            action,
            fields,
        });
    }
    forms
}

/// The `/ui/` pages `html` links to (without fragment), assets left out.
fn ui_links(html: &str) -> Vec<String> {
    tags(html, "a")
        .iter()
        .filter_map(|a| a.get("href"))
        .map(|href| href.split('#').next().unwrap().to_string())
        .filter(|href| href.starts_with("/ui/") && !href.starts_with("/ui/assets/"))
        .collect()
}

/// Every page reachable from `/ui/domains` and the [`promised_pages`] that exist, with
/// the POST forms found on them. `(pages, forms)`.
fn crawl(session: &UiClient) -> (Vec<String>, Vec<Form>) {
    let mut queue: VecDeque<String> = VecDeque::from(vec!["/ui/domains".to_string()]);
    queue.extend(promised_pages());
    let mut seen = BTreeSet::new();
    let mut pages = Vec::new();
    let mut forms = Vec::new();
    let mut missing = Vec::new();
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) || pages.len() >= MAX_PAGES {
            continue;
        }
        let answer = session.get(&path);
        let status = answer.status;
        if status == 404 {
            missing.push(path);
            continue;
        }
        assert!(
            status == 200 || status == 303,
            "GET {path} signed in: {status}"
        );
        pages.push(path.clone());
        if status == 303 {
            queue.push_back(answer.location);
            continue;
        }
        let is_html = answer
            .headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        if !is_html {
            continue;
        }
        queue.extend(ui_links(&answer.body));
        forms.extend(post_forms(&path, &answer.body));
    }
    if !missing.is_empty() {
        eprintln!("UI pages not there (404 signed in): {missing:?}");
    }
    // One form per action: the same button repeated on several pages posts alike.
    let mut actions = BTreeSet::new();
    forms.retain(|form| actions.insert(form.action.clone()));
    (pages, forms)
}

/// The pages the UI promises (its stable hooks), for the service of [`config`] with a Knot.
/// (`/ui/` only redirects to the domains list: see the root's own test.)
fn promised_pages() -> Vec<String> {
    [
        "/ui/domains".to_string(),
        format!("/ui/domains?q={ZONE}&status="),
        "/ui/domains/new".to_string(),
        format!("/ui/domains/{ZONE}"),
        format!("/ui/domains/{ZONE}/zone"),
        format!("/ui/domains/{MANUAL}"),
        "/ui/domains/api.test".to_string(),
        "/ui/domains/api.test/edit".to_string(),
        "/ui/dns-servers/api-server".to_string(),
        "/ui/dns-servers/api-server/edit".to_string(),
        "/ui/dns-servers".to_string(),
        "/ui/dns-servers/new".to_string(),
        "/ui/dns-servers/primary".to_string(),
        "/ui/tasks".to_string(),
        "/ui/tasks?status=Failed".to_string(),
    ]
    .into()
}

/// What the service holds, through the API: domains, DNS servers, tasks; and what the
/// Knot serves (its zone by AXFR).
fn snapshot(service: &Service, knot: &DnsServer) -> String {
    let mut parts = Vec::new();
    for path in [
        "/api/v1/domains",
        "/api/v1/dnsServers",
        "/api/v1/tasks",
        "/api/v1/dkimSignatures",
    ] {
        let (status, body) = service.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        parts.push(format!("{path}: {body}"));
    }
    let zone = mailzone_testkit::axfr_at(knot.addr, ZONE, &knot.key).unwrap();
    parts.push(zone.join("\n"));
    parts.join("\n")
}

/// Waits until no task is scheduled or running (the tasks of the service's start).
fn settle(service: &Service) {
    let mut tasks = Vec::new();
    let settled = poll_until(Duration::from_secs(30), || {
        tasks = service.tasks();
        tasks.iter().all(|t| {
            matches!(
                t["status"].as_str(),
                Some("Succeeded" | "Failed" | "Cancelled")
            )
        })
    });
    assert!(settled, "tasks still running: {tasks:#?}");
}

/// A service with the Knot-published domain, the admin password set, and what gives the
/// pages their every form: a DNS server and a domain defined through the API (editable and
/// deletable, unlike the config file's), and a domain whose DNS server is down (its task
/// Failed: Retry and Run now). Its tasks are done. `None` (skip) without Knot.
fn knot_service() -> Option<(DnsServer, tempfile::TempDir, Service)> {
    let knot = start_knot()?;
    let dir = directory(&config(Some(&knot), ""));
    let service = Service::start_with(dir.path(), None, &["--max-attempts", "1"]);
    let created = [
        (
            "/api/v1/dnsServers",
            json!({ "name": "api-server", "kind": "rfc2136", "host": "127.0.0.1",
                    "port": knot.addr.port(), "keyName": knot.key.name,
                    "key": knot.key.secret_base64 }),
        ),
        (
            "/api/v1/dnsServers",
            json!({ "name": "down", "kind": "rfc2136", "host": "127.0.0.1",
                    "port": free_port(), "timeout": "1s" }),
        ),
        (
            "/api/v1/domains",
            json!({ "name": "api.test", "dnsManagement": { "manual": {} } }),
        ),
        (
            "/api/v1/domains",
            json!({ "name": "down.test",
                    "dnsManagement": { "automatic": { "dnsServer": "down" } } }),
        ),
    ];
    for (path, body) in created {
        let (status, answer) = service.post(path, &body);
        assert_eq!(status, 201, "{path} {body}: {answer}");
    }
    settle(&service);
    Some((knot, dir, service))
}

/// Asserts that `answer` sends the browser to the sign-in page (303).
fn assert_to_sign_in(what: &str, answer: &Answer) {
    assert_eq!(answer.status, 303, "{what}: {:?}", answer.headers);
    let to = &answer.location;
    assert!(
        to == "/ui/sign-in" || to.starts_with("/ui/sign-in?"),
        "{what}: redirected to {to:?}"
    );
}

/// Every page (every GET route) and every form (every POST route) of the UI sends a
/// request without a session, or with an unknown session cookie, to the sign-in page;
/// a GET is remembered to come back to after signing in.
#[test]
fn every_ui_page_and_form_needs_a_session() {
    let Some((_knot, _dir, service)) = knot_service() else {
        return;
    };
    let session = UiClient::sign_in(&service, PASSWORD);
    let signed_out = UiClient::new(&service);
    let (pages, forms) = crawl(&session);
    assert!(pages.len() >= 2, "the crawl found {pages:?}");
    eprintln!(
        "{} pages, {} forms: {pages:?} {:?}",
        pages.len(),
        forms.len(),
        forms.iter().map(|f| &f.action).collect::<Vec<_>>()
    );
    let forged = session.with_session(
        Some("not-a-session-cookie-value-at-all-0123456789"),
        session.csrf(),
    );
    let visitors = [("signed out", &signed_out), ("forged cookie", &forged)];
    for page in &pages {
        for (who, client) in visitors {
            let answer = client.get(page);
            assert_to_sign_in(&format!("GET {page} ({who})"), &answer);
            if page != "/ui/" {
                let next: String = url_encoded(page);
                assert_eq!(
                    answer.location,
                    format!("/ui/sign-in?next={next}"),
                    "GET {page} comes back after signing in"
                );
            }
        }
    }
    for form in forms.iter().filter(|f| is_signed_in_action(&f.action)) {
        for (who, client) in visitors {
            let answer = client.post_raw(&form.action, &form.fields);
            assert_to_sign_in(&format!("POST {} ({who})", form.action), &answer);
        }
    }
}

/// Percent-encodes like the service's `next` parameter (form-urlencoded).
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether a form's action is behind the session check (sign-in and sign-out are not).
fn is_signed_in_action(action: &str) -> bool {
    action.starts_with("/ui/") && action != "/ui/sign-in" && action != "/ui/sign-out"
}

/// Every form of the UI, posted with a valid session but without its CSRF token, or with
/// another session's, is refused with 403, and nothing changes: not the domains, DNS
/// servers, tasks or DKIM keys the API shows, not the zone the DNS server serves. Signing
/// out without the token does not end the session (no sign-out forced from another site).
/// Reading every page (again) changes nothing either.
#[test]
fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let Some((knot, _dir, service)) = knot_service() else {
        return;
    };
    let session = UiClient::sign_in(&service, PASSWORD);
    let other = session.sign_in_again(PASSWORD);
    assert_ne!(
        session.csrf(),
        other.csrf(),
        "each session has its own token"
    );
    // A first reading may make a domain's DKIM keys (made when its records are first
    // computed, as the API's records do); reading again changes nothing.
    let (_, forms) = crawl(&session);
    let before = snapshot(&service, &knot);
    crawl(&session);
    assert_eq!(
        snapshot(&service, &knot),
        before,
        "reading pages changed state"
    );
    for form in forms.iter().filter(|f| is_signed_in_action(&f.action)) {
        let without = form.without_csrf();
        let mut stale = without.clone();
        stale.push(("csrf".to_string(), other.csrf().to_string()));
        for (how, fields) in [("without", &without), ("with another session's", &stale)] {
            let answer = session.post_raw(&form.action, fields);
            assert_eq!(
                answer.status, 403,
                "POST {} (a form of {}) {how} CSRF token",
                form.action, form.page
            );
            assert_security_headers(&format!("403 of {}", form.action), &answer.headers);
        }
    }
    // Forms every page must have once the pages exist.
    let actions: Vec<&str> = forms.iter().map(|f| f.action.as_str()).collect();
    eprintln!("forms checked: {actions:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        snapshot(&service, &knot),
        before,
        "a refused form changed state"
    );

    // Sign-out without the token: the session stays open.
    let answer = session.post_raw::<&str, &str>("/ui/sign-out", &[]);
    assert_ne!(answer.status, 200);
    assert_eq!(session.get("/ui/domains").status, 200);
}

/// The sign-in form posted without its own cookie and token is refused (403), and a wrong
/// password opens no session (401); the cookies set by the sign-in page and the sign-in
/// are `HttpOnly`, `SameSite=Strict`, `Path=/ui`, without `Secure` over plain HTTP.
#[test]
fn sign_in_cookies_are_http_only_strict_and_scoped_to_the_ui() {
    let dir = directory(&config(None, ""));
    let service = Service::start(dir.path(), None);
    let ui = UiClient::new(&service);

    let (line, csrf) = ui.sign_in_form();
    assert_cookie_flags("sign-in cookie", &line, false);

    // Signed out, the client sends no cookie: the form's token without the form's cookie.
    let forged = ui.post_raw(
        "/ui/sign-in",
        &[("csrf", csrf.as_str()), ("secret", PASSWORD)],
    );
    assert_eq!(forged.status, 403, "a sign-in without the form's cookie");
    assert!(set_cookie_line(&forged.headers, SESSION_COOKIE).is_none());

    let wrong = ui.post_sign_in("not the password at all");
    assert_eq!(wrong.status, 401);
    assert!(set_cookie_line(&wrong.headers, SESSION_COOKIE).is_none());
    let token = ui.post_sign_in("mzt_not-a-token");
    assert_eq!(token.status, 401);

    let answer = ui.post_sign_in(PASSWORD);
    assert_eq!(answer.status, 303);
    let line = set_cookie_line(&answer.headers, SESSION_COOKIE).expect("a session cookie");
    assert_cookie_flags("session cookie", &line, false);
    assert!(line_value(&line).len() >= 43, "256 random bits: {line}");
    // The session cookie lives as long as the browser (no Max-Age or Expires): the idle
    // expiry is the server's.
    assert!(
        !cookie_attributes(&line)
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("max-age")
                || a.to_ascii_lowercase().starts_with("expires")),
        "{line}"
    );
    // The sign-in form's cookie is deleted once used.
    let cleared = set_cookie_line(&answer.headers, SIGN_IN_COOKIE).expect("sign-in cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_cookie_flags("cleared sign-in cookie", &cleared, false);

    // An API token signs in too.
    let answer = ui.post_sign_in(&service.token);
    assert_eq!(answer.status, 303);
    let line = set_cookie_line(&answer.headers, SESSION_COOKIE).expect("a session cookie");
    assert_cookie_flags("token session cookie", &line, false);

    // The CSRF tokens the client reads are the forms' own fields (as the HTML scanner
    // reads the forms): the sign-in form's, and a signed-in page's sign-out form's.
    let form_csrf = |page: &str, html: &str, action: &str| {
        post_forms(page, html)
            .into_iter()
            .filter(|f| f.action == action)
            .flat_map(|f| f.fields)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v)
    };
    let page = ui.get("/ui/sign-in");
    assert_eq!(
        form_csrf("/ui/sign-in", &page.body, "/ui/sign-in"),
        Some(ui::hidden_value(&page.body, "csrf")),
        "the sign-in form carries a CSRF token"
    );
    let session = ui.sign_in_again(PASSWORD);
    let page = session.get("/ui/domains");
    assert_eq!(
        form_csrf("/ui/domains", &page.body, "/ui/sign-out").as_deref(),
        Some(session.csrf()),
        "a signed-in page carries the sign-out form and its CSRF token"
    );
}

/// Under `[serve.tls]` the service speaks HTTPS only, and both cookies are `Secure` too.
#[test]
fn cookies_are_secure_when_the_service_speaks_https() {
    let ex = examples();
    let tls = format!(
        "\n[serve.tls]\ncertificate = \"{}\"\nprivateKey = \"{}\"\n",
        ex.join("certs/mail.example.org.pem").display(),
        ex.join("certs/mail.example.org.key").display()
    );
    let dir = directory(&config(None, &tls));
    let service = Service::start(dir.path(), None);
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(ex.join("certs/ca.pem")).unwrap()).unwrap();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(ca)
        .resolve("mail.example.org", service.addr)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ui = UiClient::with_client(
        &format!("https://mail.example.org:{}", service.addr.port()),
        client,
    );
    let (line, _) = ui.sign_in_form();
    assert_cookie_flags("sign-in cookie over HTTPS", &line, true);
    let answer = ui.post_sign_in(PASSWORD);
    assert_eq!(answer.status, 303);
    let line = set_cookie_line(&answer.headers, SESSION_COOKIE).expect("a session cookie");
    assert_cookie_flags("session cookie over HTTPS", &line, true);
    let session = ui.with_session(Some(&line_value(&line)), "");
    let page = session.get("/ui/domains");
    assert_eq!(page.status, 200);
    assert_security_headers("a page over HTTPS", &page.headers);
}

/// A session unused for 30 minutes ends: the next request goes to the sign-in page and
/// the session is gone from the store for good; one unused for 29 minutes still works
/// (and is marked used). Sessions are put in the service's store with a past last use
/// (the store's own call, the one sign-in makes) rather than waited for.
#[test]
fn a_session_idle_for_30_minutes_ends_and_a_recent_one_stays() {
    let dir = directory(&config(None, ""));
    let service = Service::start(dir.path(), None);
    let ui = UiClient::new(&service);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let idle = "idle-session-cookie-value-000000000000000000000";
    let recent = "recent-session-cookie-value-0000000000000000000";
    let state = dir.path().join("state");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let last_seen = |cookie: &'static str| {
        let state = state.clone();
        runtime.block_on(async move {
            let store = mailzone_store::Store::open_sqlite(&state).await.unwrap();
            // The session's last use, if it still exists: a touch that never expires
            // and never writes (its `now` is far in the past).
            let found = store
                .touch_web_session(&mailzone_server::auth::token_hash(cookie), i64::MIN, 0)
                .await
                .unwrap()
                .map(|s| s.last_seen);
            store.close().await;
            found
        })
    };
    runtime.block_on(async {
        let store = mailzone_store::Store::open_sqlite(&state).await.unwrap();
        let hash = mailzone_server::auth::token_hash;
        store
            .add_web_session(&hash(idle), "admin", "admin", now - 30 * 60 - 5)
            .await
            .unwrap();
        store
            .add_web_session(&hash(recent), "admin", "admin", now - 29 * 60)
            .await
            .unwrap();
        store.close().await;
    });
    let session = |cookie: &str| ui.with_session(Some(cookie), "");
    assert_to_sign_in(
        "a session idle for 30 minutes",
        &session(idle).get("/ui/domains"),
    );
    assert_eq!(last_seen(idle), None, "the idle session is deleted");
    assert_to_sign_in("again", &session(idle).get("/ui/domains"));

    assert_eq!(session(recent).get("/ui/domains").status, 200);
    let seen = last_seen(recent).expect("the recent session is kept");
    assert!(seen >= now, "its last use is now: {seen} < {now}");
}

/// Asserts the UI's security headers: a CSP allowing no inline script or style and no
/// framing, `nosniff`, a referrer policy, `X-Frame-Options: DENY`.
fn assert_security_headers(what: &str, headers: &HeaderMap) {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{what}: no {name} header: {headers:?}"))
    };
    let csp = header("content-security-policy");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.starts_with(&format!("{name} ")))
            .map(str::to_string)
    };
    assert_eq!(
        directive("script-src").as_deref(),
        Some("script-src 'self'"),
        "{what}: {csp}"
    );
    assert!(
        directive("default-src").is_some_and(|d| d == "default-src 'self'"),
        "{what}: {csp}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    let referrer = header("referrer-policy");
    assert!(
        [
            "same-origin",
            "no-referrer",
            "strict-origin",
            "strict-origin-when-cross-origin"
        ]
        .contains(&referrer.as_str()),
        "{what}: Referrer-Policy {referrer}"
    );
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
}

/// Every answer of the UI carries the security headers: each page reached signed in, the
/// sign-in page, its refusals, the redirects to it, the assets, a refused form.
#[test]
fn every_ui_answer_carries_the_security_headers() {
    let Some((_knot, _dir, service)) = knot_service() else {
        return;
    };
    let ui = UiClient::new(&service);
    let session = ui.sign_in_again(PASSWORD);
    let (pages, _) = crawl(&session);
    for page in &pages {
        let answer = session.get(page);
        assert_security_headers(&format!("GET {page}"), &answer.headers);
        assert_security_headers(&format!("GET {page} signed out"), &ui.get(page).headers);
    }
    for path in [
        "/ui/sign-in",
        "/ui/assets/app.css",
        "/ui/assets/app.js",
        "/ui/domains/no-such-domain.test",
    ] {
        assert_security_headers(&format!("GET {path}"), &session.get(path).headers);
    }
    let wrong = ui.post_sign_in("not the password at all");
    assert_eq!(wrong.status, 401);
    assert_security_headers("a refused sign-in", &wrong.headers);
    let refused = ui.post_raw::<&str, &str>("/ui/sign-in", &[]);
    assert_security_headers("a sign-in without its token", &refused.headers);
}

/// Follows the redirects of a GET from `path` (at most 5) with the client's session
/// cookie; every path passed through and the final answer's status.
fn follow(client: &UiClient, path: &str) -> (Vec<String>, u16) {
    let mut path = path.to_string();
    let mut hops = vec![path.clone()];
    for _ in 0..5 {
        let answer = client.get(&path);
        if answer.status != 303 {
            return (hops, answer.status);
        }
        path = answer.location;
        hops.push(path.clone());
    }
    panic!("redirect loop: {hops:?}")
}

/// The service's root and the UI's root take a signed-in browser to the domains list and
/// a signed-out one to the sign-in page.
#[test]
fn the_root_leads_to_the_domains_list_or_the_sign_in_page() {
    let dir = directory(&config(None, ""));
    let service = Service::start(dir.path(), None);
    let ui = UiClient::new(&service);
    let session = ui.sign_in_again(PASSWORD);
    for root in ["/", "/ui", "/ui/"] {
        let (hops, status) = follow(&session, root);
        assert_eq!(
            (hops.last().map(String::as_str), status),
            (Some("/ui/domains"), 200),
            "signed in, {root}: {hops:?}"
        );
        let (hops, status) = follow(&ui, root);
        assert!(
            hops.last().is_some_and(|p| p.starts_with("/ui/sign-in")) && status == 200,
            "signed out, {root}: {hops:?} ended in {status}"
        );
    }
}

/// The public endpoints (MTA-STS policy, autoconfig) are still served by the Host they
/// are asked for, to anyone: no redirect to the sign-in page, no UI cookie, and the API
/// still answers its bearer tokens with JSON.
#[test]
fn public_endpoints_are_served_by_host_without_sign_in() {
    let dir = directory(&config(None, ""));
    let service = Service::start(dir.path(), None);
    let client = ui::http_client();
    let policy = client
        .get(service.url("/.well-known/mta-sts.txt"))
        .header("Host", format!("mta-sts.{MANUAL}"))
        .send()
        .unwrap();
    assert_eq!(policy.status(), 200, "{:?}", policy.headers());
    assert!(set_cookies(policy.headers()).is_empty());
    assert!(policy.headers().get(LOCATION).is_none());
    assert!(
        policy.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = policy.text().unwrap();
    assert!(
        text.starts_with("version: STSv1\r\nmode: enforce\r\n"),
        "{text:?}"
    );
    let other = client
        .get(service.url("/.well-known/mta-sts.txt"))
        .header("Host", "mta-sts.unknown.example")
        .send()
        .unwrap();
    assert_eq!(other.status(), 404, "served by Host only");
    let xml = client
        .get(service.url("/mail/config-v1.1.xml"))
        .header("Host", format!("autoconfig.{MANUAL}"))
        .send()
        .unwrap();
    assert_eq!(xml.status(), 200);
    assert!(set_cookies(xml.headers()).is_empty());
    let xml = xml.text().unwrap();
    assert!(xml.contains(&format!("<domain>{MANUAL}</domain>")), "{xml}");
    let health = client.get(service.url("/healthz")).send().unwrap();
    assert_eq!(health.status(), 200);
    let (status, domains) = service.get("/api/v1/domains");
    assert_eq!(status, 200);
    assert!(domains.is_array(), "{domains}");
    let anonymous = client.get(service.url("/api/v1/domains")).send().unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "the API wants its token, not a redirect"
    );
    let body: Value = anonymous.json().unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
}

/// Signing out ends the session: the old cookie no longer opens any page or posts any
/// form, even if kept by the browser, and the answer deletes the cookie.
#[test]
fn sign_out_ends_the_session_for_good() {
    let dir = directory(&config(None, ""));
    let service = Service::start(dir.path(), None);
    let session = UiClient::sign_in(&service, PASSWORD);
    let kept = session.sign_in_again(PASSWORD);
    let answer = session.post("/ui/sign-out", &[]);
    assert_to_sign_in("sign-out", &answer);
    let cleared = set_cookie_line(&answer.headers, SESSION_COOKIE).expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(line_value(&cleared), "");
    assert_to_sign_in("the old cookie", &session.get("/ui/domains"));
    assert_to_sign_in(
        "a form with the old cookie and its token",
        &session.post("/ui/sign-out", &[]),
    );
    // The sign-in page no longer sees a session and shows its form.
    let page = session.get("/ui/sign-in");
    assert_eq!(page.status, 200);
    // Another session of the same admin is not ended.
    assert_eq!(kept.get("/ui/domains").status, 200);
}

#[test]
fn the_html_scanner_reads_maud_markup() {
    let html = r#"<form method="post" action="/ui/x"><input type="hidden" name="csrf" value="a&amp;b"><input type="checkbox" name="c" value="mx" checked><input type="checkbox" name="c" value="spf"><select name="kind"><option value="rfc2136">R</option><option value="pdns" selected>P</option></select><textarea name="t">x &lt; y</textarea><button type="submit">Go</button></form><a href="/ui/domains/a#records">a</a><a href="https://x/">x</a>"#;
    let forms = post_forms("/ui/page", html);
    assert_eq!(forms.len(), 1);
    assert_eq!(forms[0].action, "/ui/x");
    let fields: Vec<(&str, &str)> = forms[0]
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("csrf", "a&b"),
            ("c", "mx"),
            ("kind", "pdns"),
            ("t", "x < y")
        ]
    );
    assert_eq!(ui_links(html), ["/ui/domains/a"]);
}
