//! The web UI over HTTP, as a browser without scripts uses it, for the UI's integration
//! tests: the admin password set with `mailzone admin set-password`, a [`UiClient`] that
//! signs in with it (the sign-in form's cookie and CSRF token, then the session cookie) and
//! GETs and POSTs with its session cookie and CSRF token, and the HTML and `Set-Cookie`
//! helpers they share. Redirects are never followed and cookies are sent only as said, so
//! every answer is seen as the service sent it.
#![allow(dead_code)] // each test binary uses its own part

use std::cell::RefCell;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{self, HeaderMap};

use super::Service;

/// The admin password the UI tests set.
pub const PASSWORD: &str = "correct horse battery staple";
/// The session cookie.
pub const SESSION_COOKIE: &str = "mailzone_session";
/// The sign-in form's cookie (its CSRF secret, until the sign-in).
pub const SIGN_IN_COOKIE: &str = "mailzone_sign_in";

/// `mailzone admin set-password --password-stdin` on the test directory's state (`dir/state`).
pub fn set_password(dir: &Path, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["admin", "set-password", "--password-stdin", "--state-dir"])
        .arg(dir.join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "set-password: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Knot serving `zones` with a fresh TSIG key named `mailzone` (`knot.key`). The caller
/// checks first that Knot is there.
pub fn start_knot(zones: &[ZoneSpec]) -> DnsServer {
    let key = TsigKey::generate("mailzone");
    DnsServer::start(ServerKind::Knot, zones, &key, &ServerOptions::default()).unwrap()
}

/// A `[dnsServer.<name>]` table for `knot` (RFC 2136 over its address, its key name, the
/// secret read from `key_file`, relative to the config), which polls it as authoritative
/// every 100 ms for up to 30 s.
pub fn knot_server_table(knot: &DnsServer, name: &str, key_file: &str) -> String {
    format!(
        r#"
[dnsServer.{name}]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyFile = "{key_file}"
authoritativeServers = ["{addr}"]
pollingInterval = "100ms"
propagationTimeout = "30s"
"#,
        port = knot.addr.port(),
        key = knot.key.name,
        addr = knot.addr,
    )
}

/// A client that follows no redirect, keeps no cookie and reuses no connection.
pub fn http_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The value of the first `name="<name>" value="…"` of a page (a hidden field's, as maud
/// writes it); panics without one.
pub fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field: {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The `Set-Cookie` lines of an answer.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The `Set-Cookie` line setting cookie `name`, if any.
pub fn set_cookie_line(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|line| line.starts_with(&format!("{name}=")))
}

/// The value a `Set-Cookie` line gives its cookie.
pub fn line_value(line: &str) -> String {
    let pair = line.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

/// The value the answer's `Set-Cookie` gives cookie `name`, if it sets it.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookie_line(headers, name).map(|line| line_value(&line))
}

/// What a request answered, its body read: status, headers, `Location` and
/// `Content-Disposition` (empty when absent), body.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub location: String,
    pub disposition: String,
    pub body: String,
}

impl Answer {
    /// The header `name` as text (empty when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// The UI of a service as one browser sees it: signed out, or with a session (its cookie
/// and the CSRF token of its forms). It keeps every body it was given, to look for secrets
/// in ([`UiClient::seen`]).
pub struct UiClient {
    base: String,
    http: Client,
    session: Option<String>,
    csrf: String,
    seen: RefCell<String>,
}

impl UiClient {
    /// A signed-out client of `service` over HTTP.
    pub fn new(service: &Service) -> UiClient {
        UiClient::with_client(&service.url(""), http_client())
    }

    /// A signed-out client of the UI at `base` (`https://…:port`) through `http` (which
    /// should follow no redirect and keep no cookie).
    pub fn with_client(base: &str, http: Client) -> UiClient {
        UiClient {
            base: base.to_string(),
            http,
            session: None,
            csrf: String::new(),
            seen: RefCell::new(String::new()),
        }
    }

    /// Signs in to `service` with `password` ([`UiClient::sign_in_again`]).
    pub fn sign_in(service: &Service, password: &str) -> UiClient {
        UiClient::new(service).sign_in_again(password)
    }

    /// A new session of this client's UI, signed in with `secret` (the admin password or an
    /// API token): the sign-in form posted with its cookie and token must answer 303 with
    /// the session cookie, and `/ui/domains` then answers 200 with the CSRF token.
    pub fn sign_in_again(&self, secret: &str) -> UiClient {
        let signed_out = self.with_session(None, "");
        let answer = signed_out.post_sign_in(secret);
        assert_eq!(answer.status, 303, "sign-in: {:?}", answer.headers);
        let cookie = cookie_value(&answer.headers, SESSION_COOKIE)
            .unwrap_or_else(|| panic!("no session cookie: {:?}", answer.headers));
        let mut session = self.with_session(Some(&cookie), "");
        let page = session.get("/ui/domains");
        assert_eq!(page.status, 200, "the first page after sign-in");
        session.csrf = hidden_value(&page.body, "csrf");
        session
    }

    /// This client's UI with another session cookie (`None`: signed out) and CSRF token, as
    /// given: a forged, expired or ended one too.
    pub fn with_session(&self, cookie: Option<&str>, csrf: &str) -> UiClient {
        UiClient {
            base: self.base.clone(),
            http: self.http.clone(),
            session: cookie.map(str::to_string),
            csrf: csrf.to_string(),
            seen: RefCell::new(String::new()),
        }
    }

    /// The session cookie's value (`None` signed out).
    pub fn cookie(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The session's CSRF token (empty signed out).
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The client, for a request made by hand (no cookie sent).
    pub fn http(&self) -> &Client {
        &self.http
    }

    /// Every body answered so far, one after the other.
    pub fn seen(&self) -> String {
        self.seen.borrow().clone()
    }

    /// Sends `request` with the session cookie (if any).
    pub fn send(&self, request: RequestBuilder) -> Answer {
        let request = match &self.session {
            Some(cookie) => request.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}")),
            None => request,
        };
        self.answer(request.send().unwrap())
    }

    /// Reads `response` (and keeps its body).
    fn answer(&self, response: Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().unwrap();
        self.seen.borrow_mut().push_str(&body);
        let text = |name| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        Answer {
            status,
            location: text(header::LOCATION),
            disposition: text(header::CONTENT_DISPOSITION),
            headers,
            body,
        }
    }

    /// GET `path` with the session cookie.
    pub fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path)))
    }

    /// POSTs the form `fields` to `path` with the session cookie and its CSRF token.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(path, &form)
    }

    /// POSTs the form `fields` to `path` with the session cookie, as they are: no CSRF token
    /// added (a missing or wrong one on purpose, or the fields of a form as read).
    pub fn post_raw<K: AsRef<str>, V: AsRef<str>>(&self, path: &str, fields: &[(K, V)]) -> Answer {
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        self.send(self.http.post(self.url(path)).form(&fields))
    }

    /// Loads the sign-in form (signed out): the `Set-Cookie` line of its cookie and its CSRF
    /// token.
    pub fn sign_in_form(&self) -> (String, String) {
        let page = self.get("/ui/sign-in");
        assert_eq!(page.status, 200, "the sign-in page: {}", page.body);
        let line = set_cookie_line(&page.headers, SIGN_IN_COOKIE)
            .unwrap_or_else(|| panic!("no {SIGN_IN_COOKIE} cookie: {:?}", page.headers));
        (line, hidden_value(&page.body, "csrf"))
    }

    /// Loads the sign-in form and posts it with `secret`, its cookie and its token (and
    /// `next=/ui/domains`); the answer.
    pub fn post_sign_in(&self, secret: &str) -> Answer {
        let (line, csrf) = self.sign_in_form();
        let fields = [
            ("csrf", csrf.as_str()),
            ("secret", secret),
            ("next", "/ui/domains"),
        ];
        let request = self
            .http
            .post(self.url("/ui/sign-in"))
            .header(
                header::COOKIE,
                format!("{SIGN_IN_COOKIE}={}", line_value(&line)),
            )
            .form(&fields);
        self.answer(request.send().unwrap())
    }
}
