//! Alerts end to end: `mailzone serve` checks a domain served by a real Knot every second
//! (`--check-interval` over the config's `serve.checkInterval`, against
//! `serve.checkNameservers`); a record deleted behind its back is announced once to a
//! webhook receiver (a real HTTP server here, the HMAC-SHA256 signature verified with the
//! shared secret) and by mail to a real SMTP server (aiosmtpd, delivering into a Maildir);
//! a restart does not announce it again; the repair is announced as "disappeared".

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Service, client, free_port, mailzone_ok, venv_python_with};
use hmac::{Hmac, KeyInit as _, Mac as _};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec, poll_until};
use serde_json::Value;
use sha2::Sha256;

const ZONE: &str = "alerts.test";
const DMARC: &str = "_dmarc.alerts.test.";
const SECRET: &str = "webhook-signing-secret-9f3c";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap()
}

fn config(knot: SocketAddr, hook: SocketAddr, smtp_port: u16) -> String {
    let ex = examples().display().to_string();
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[[server.mailExchangers]]
hostname = "mail.{ZONE}"
priority = 10

[server.services]
imap = {{ cleartext = false }}
submission = {{}}

[domain."{ZONE}"]
dmarc = {{ policy = "reject" }}
caa = {{ issuers = ["letsencrypt.org"] }}
mtaSts = {{ enabled = false }}
dkimManagement = {{ manual = {{ keys = [{{ selector = "202611e", privateKeyFile = "{ex}/keys/202611e.pem" }}] }} }}

[serve]
# Overridden by --check-interval 1s: were it not, nothing would be checked in this test.
checkInterval = "1h"
checkNameservers = ["{knot}"]

[notify.webhook]
url = "http://{hook}/mailzone-hook"
secretFile = "webhook.secret"

[notify.smtp]
host = "127.0.0.1"
port = {smtp_port}
starttls = "never"
from = "mailzone <mailzone@{ZONE}>"
to = ["postmaster@{ZONE}", "ops@{ZONE}"]
"#
    )
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Delivery {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A minimal HTTP/1.1 server on loopback recording every request; it answers the first
/// `failures` with 503, the others with 204.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    fn start(failures: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let Some(delivery) = read_request(&stream) else {
                    continue;
                };
                let mut received = sink.lock().unwrap();
                received.push(delivery);
                let answer: &[u8] = if received.len() <= failures {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
                };
                let _ = (&stream).write_all(answer);
            }
        });
        Receiver { addr, received }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Delivery> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Delivery {
        request_line: request_line.trim_end().to_string(),
        headers,
        body,
    })
}

/// aiosmtpd's SMTP server writing every mail it accepts into a Maildir.
struct SmtpSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl SmtpSink {
    fn start(python: &Path, dir: &Path) -> SmtpSink {
        let port = free_port();
        let maildir = dir.join("maildir");
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = poll_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "aiosmtpd does not listen on {port}");
        SmtpSink {
            child,
            port,
            maildir,
        }
    }

    /// The mails delivered so far, oldest first, their header fields unfolded (RFC 5322
    /// §2.2.3) so that a long subject reads as one line.
    fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut mails: Vec<(SystemTime, String)> = entries
            .map_while(Result::ok)
            .map(|e| {
                (
                    e.metadata().unwrap().modified().unwrap(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        mails.sort_by_key(|(t, _)| *t);
        mails.into_iter().map(|(_, m)| unfold_header(&m)).collect()
    }
}

fn unfold_header(mail: &str) -> String {
    let mail = mail.replace("\r\n", "\n");
    let (header, body) = mail.split_once("\n\n").unwrap_or((&mail, ""));
    format!(
        "{}\n\n{body}",
        header.replace("\n ", " ").replace("\n\t", " ")
    )
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn metrics(service: &Service) -> String {
    client()
        .get(service.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// Waits until a scheduled check has started at `at` or later.
fn wait_for_check_from(service: &Service, at: i64) {
    let mut text = String::new();
    let checked = poll_until(Duration::from_secs(10), || {
        text = metrics(service);
        text.lines()
            .find_map(|l| l.strip_prefix("mailzone_check_last_run_timestamp_seconds "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .is_some_and(|last| last >= at)
    });
    assert!(
        checked,
        "no scheduled check since {at}:\n{text}\n{}",
        service.output()
    );
}

fn error_gauge(service: &Service) -> String {
    let text = metrics(service);
    text.lines()
        .find(|l| {
            l.starts_with(&format!(
                "mailzone_check_findings{{domain=\"{ZONE}\",severity=\"error\"}}"
            ))
        })
        .unwrap_or_else(|| panic!("no error gauge for {ZONE}:\n{text}"))
        .to_string()
}

/// The signature the receiver expects: HMAC-SHA256 of `<timestamp>.<body>`.
fn verify_signature(delivery: &Delivery) {
    let timestamp = delivery.header("X-Mailzone-Timestamp").expect("timestamp");
    let age = unix_now() - timestamp.parse::<i64>().unwrap();
    assert!(
        (0..60).contains(&age),
        "timestamp {timestamp} is {age}s old"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&delivery.body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        delivery.header("X-Mailzone-Signature"),
        Some(format!("sha256={hex}").as_str()),
        "signature over {timestamp}.{}",
        String::from_utf8_lossy(&delivery.body)
    );
    assert_eq!(delivery.request_line, "POST /mailzone-hook HTTP/1.1");
    assert_eq!(delivery.header("Content-Type"), Some("application/json"));
}

fn codes(findings: &Value) -> Vec<(String, String, String)> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// What a missing DMARC record is reported as: the DMARC check's finding and the
/// desired-versus-served one.
fn missing_dmarc() -> Vec<(String, String, String)> {
    vec![
        ("dmarc-missing".into(), "error".into(), DMARC.into()),
        ("record-missing".into(), "error".into(), DMARC.into()),
    ]
}

/// The Knot zones: the domain exactly as `mailzone records` prints it, and the PTR of its
/// mail host. Returns the server and the domain's DMARC record line.
fn start_knot(dir: &Path) -> (DnsServer, String) {
    let records = mailzone_ok(dir, &["records"]);
    let dmarc = records
        .lines()
        .find(|l| l.starts_with(DMARC))
        .unwrap_or_else(|| panic!("no DMARC record in:\n{records}"))
        .to_string();
    let zones = [
        ZoneSpec::empty("test"),
        ZoneSpec::new(ZONE, &records),
        ZoneSpec::new(
            "2.0.192.in-addr.arpa",
            &format!("10 300 IN PTR mail.{ZONE}.\n"),
        ),
    ];
    let key = TsigKey::generate("mailzone-key");
    let knot = DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default())
        .unwrap_or_else(|e| panic!("Knot does not start: {e}"));
    (knot, dmarc)
}

fn start_service(dir: &Path, token: Option<&str>) -> Service {
    Service::start_with(dir, token, &["--check-interval", "1s"])
}

/// A test directory with the config, Knot serving the domain, the webhook receiver and
/// the SMTP sink.
struct Setup {
    dir: tempfile::TempDir,
    knot: DnsServer,
    dmarc: String,
    receiver: Receiver,
    sink: SmtpSink,
}

fn setup(webhook_failures: usize) -> Option<Setup> {
    if !mailzone_testkit::require_tools(&["knotd", "kdig", "knsupdate"]) {
        return None;
    }
    let python = venv_python_with("aiosmtpd")?;
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(webhook_failures);
    let sink = SmtpSink::start(&python, dir.path());
    // A first config to print the records from; the real one names the Knot's port.
    let write_config = |knot: SocketAddr| {
        std::fs::write(
            dir.path().join("mailzone.toml"),
            config(knot, receiver.addr, sink.port),
        )
        .unwrap();
    };
    write_config("127.0.0.1:53".parse().unwrap());
    std::fs::write(dir.path().join("webhook.secret"), format!("{SECRET}\n")).unwrap();
    let (knot, dmarc) = start_knot(dir.path());
    write_config(knot.addr);
    Some(Setup {
        dir,
        knot,
        dmarc,
        receiver,
        sink,
    })
}

#[test]
fn a_broken_record_is_announced_once_by_webhook_and_mail_and_so_is_its_repair() {
    let Some(Setup {
        dir,
        knot,
        dmarc,
        receiver,
        sink,
    }) = setup(0)
    else {
        return;
    };

    // A correct domain: the first checks record it silently.
    let service = start_service(dir.path(), None);
    let token = service.token.clone();
    wait_for_check_from(&service, unix_now() + 1);
    assert!(
        receiver.deliveries().is_empty() && sink.mails().is_empty(),
        "a correct domain was announced: {:?} {:?}\n{}",
        receiver.deliveries(),
        sink.mails(),
        service.output()
    );
    assert!(
        error_gauge(&service).ends_with(" 0"),
        "{}",
        metrics(&service)
    );

    // The DMARC record is deleted behind mailzone's back.
    knot.nsupdate(ZONE, &[&format!("update delete {DMARC} TXT")]);
    let announced = poll_until(Duration::from_secs(10), || {
        !receiver.deliveries().is_empty() && !sink.mails().is_empty()
    });
    assert!(announced, "nothing announced:\n{}", service.output());
    // Two more checks find the same problem and announce nothing more.
    wait_for_check_from(&service, unix_now() + 1);
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    verify_signature(&deliveries[0]);
    let broken = deliveries[0].json();
    assert_eq!(broken["domain"], ZONE);
    assert_eq!(broken["firstCheck"], false);
    assert_eq!(codes(&broken["appeared"]), missing_dmarc(), "{broken:#}");
    assert_eq!(broken["disappeared"], serde_json::json!([]));
    assert_eq!(broken["counts"]["errors"], 2, "{broken:#}");
    let checked_at = broken["checkedAt"].as_str().unwrap();
    assert!(
        checked_at.len() == 20 && checked_at.ends_with('Z') && checked_at.as_bytes()[10] == b'T',
        "not RFC 3339: {checked_at}"
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    for expected in [
        format!("Subject: mailzone: {ZONE}: 2 appeared, 0 disappeared (2 errors, 0 warnings)"),
        format!("From: mailzone <mailzone@{ZONE}>"),
        format!("X-RcptTo: postmaster@{ZONE}, ops@{ZONE}"),
        "Auto-Submitted: auto-generated".to_string(),
        format!("error   record-missing {DMARC}"),
    ] {
        assert!(mail.contains(&expected), "{expected:?} not in:\n{mail}");
    }
    assert!(
        error_gauge(&service).ends_with(" 2"),
        "{}",
        metrics(&service)
    );

    // A restart remembers what was announced.
    let first_log = service.terminate();
    let service = start_service(dir.path(), Some(&token));
    wait_for_check_from(&service, unix_now() + 1);
    assert_eq!(receiver.deliveries().len(), 1, "{}", service.output());
    assert_eq!(sink.mails().len(), 1);

    // The record is put back: its disappearance is announced on both channels.
    knot.nsupdate(ZONE, &[&format!("update add {dmarc}")]);
    let repaired = poll_until(Duration::from_secs(10), || {
        receiver.deliveries().len() >= 2 && sink.mails().len() >= 2
    });
    assert!(
        repaired,
        "the repair was not announced:\n{}",
        service.output()
    );
    wait_for_check_from(&service, unix_now() + 1);
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:#?}");
    verify_signature(&deliveries[1]);
    let fixed = deliveries[1].json();
    assert_eq!(fixed["appeared"], serde_json::json!([]), "{fixed:#}");
    assert_eq!(codes(&fixed["disappeared"]), missing_dmarc(), "{fixed:#}");
    assert_eq!(fixed["counts"]["errors"], 0);
    let mails = sink.mails();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(
        mails[1].contains(&format!(
            "Subject: mailzone: {ZONE}: 0 appeared, 2 disappeared (0 errors, 0 warnings)"
        )),
        "{}",
        mails[1]
    );
    assert!(
        error_gauge(&service).ends_with(" 0"),
        "{}",
        metrics(&service)
    );

    let log = first_log + &service.terminate();
    assert!(
        !log.contains(SECRET),
        "the webhook secret is in the log:\n{log}"
    );
}

#[test]
fn a_broken_domain_is_announced_at_its_first_check_and_a_failed_delivery_is_retried() {
    let Some(Setup {
        dir,
        knot,
        receiver,
        sink,
        ..
    }) = setup(1)
    else {
        return;
    };
    knot.nsupdate(ZONE, &[&format!("update delete {DMARC} TXT")]);
    let service = start_service(dir.path(), None);

    // The first check finds errors: announced although nothing was before. The webhook
    // answers 503 the first time; the next check sends the same message again.
    let delivered = poll_until(Duration::from_secs(10), || {
        receiver.deliveries().len() >= 2 && !sink.mails().is_empty()
    });
    assert!(
        delivered,
        "{:?}\n{}",
        receiver.deliveries(),
        service.output()
    );
    wait_for_check_from(&service, unix_now() + 1);
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:#?}");
    for delivery in &deliveries {
        verify_signature(delivery);
        let body = delivery.json();
        assert_eq!(body["firstCheck"], true, "{body:#}");
        assert_eq!(
            codes(&body["appeared"])[..2],
            missing_dmarc()[..],
            "{body:#}"
        );
    }
    // The mail went through at once and is not repeated for the webhook's retry.
    assert_eq!(sink.mails().len(), 1, "{:#?}", sink.mails());
    let text = metrics(&service);
    assert!(
        text.contains("mailzone_notify_failures_total{channel=\"webhook\"} 1")
            && text.contains("mailzone_notify_failures_total{channel=\"smtp\"} 0"),
        "{text}"
    );
    let log = service.terminate();
    assert!(
        log.contains("notification not sent, retried at the next check") && log.contains("503"),
        "{log}"
    );
    assert!(
        !log.contains(SECRET),
        "the webhook secret is in the log:\n{log}"
    );
}

#[test]
fn an_unreadable_webhook_secret_stops_the_start_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let hook: SocketAddr = "127.0.0.1:9".parse().unwrap();
    std::fs::write(
        dir.path().join("mailzone.toml"),
        config("127.0.0.1:53".parse().unwrap(), hook, 25),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--config")
        .arg(dir.path().join("mailzone.toml"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = poll_until(Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    assert!(exited, "serve started without its webhook secret");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("notify.webhook.secretFile: cannot read")
            && stderr.contains("webhook.secret"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("API on"),
        "it listened before failing"
    );
}
