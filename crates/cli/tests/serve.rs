//! `mailzone serve` as a real process against a real Knot: the task lifecycle through the
//! HTTP API, a wrong TSIG key failing clearly and retried after the fix, a kill -9 in the
//! middle of a reconcile, authentication, bad input, and the public endpoints.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Service, client, free_port};
use mailzone_testkit::{
    DnsServer, POSTGRES_TOOLS, Postgres, ServerKind, ServerOptions, TsigKey, ZoneSpec, poll_until,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ZONE: &str = "example.test";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap()
}

/// The config: the TSIG secret in `tsig.key` beside it; `extra_authoritative` adds a
/// server that must also serve the change (a dead one keeps the task waiting).
fn config(server: &DnsServer, extra_authoritative: Option<SocketAddr>) -> String {
    let ex = examples().display().to_string();
    let mut authoritative = vec![server.addr.to_string()];
    authoritative.extend(extra_authoritative.map(|a| a.to_string()));
    let authoritative = authoritative
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[server.services]
imap = {{}}
submission = {{ cleartext = true }}

[server.tls]
certificate = "{ex}/certs/mail.example.org.pem"

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyFile = "tsig.key"
authoritativeServers = [{authoritative}]
pollingInterval = "100ms"
propagationTimeout = "60s"

[domain."{ZONE}"]
mtaSts = {{ mode = "enforce" }}
dkimManagement = {{ manual = {{ keys = [{{ selector = "202611e", privateKeyFile = "{ex}/keys/202611e.pem" }}] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary" }} }}

[domain."manual.example"]
"#,
        port = server.addr.port(),
        key = server.key.name,
    )
}

fn start_knot() -> Option<DnsServer> {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return None;
    }
    let key = TsigKey::generate("mailzone");
    let zone = ZoneSpec::new(ZONE, "@ 3600 IN TXT \"site-verification=xyz\"\n");
    Some(DnsServer::start(ServerKind::Knot, &[zone], &key, &ServerOptions::default()).unwrap())
}

fn setup(server: &DnsServer, secret: &str, extra: Option<SocketAddr>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), config(server, extra)).unwrap();
    std::fs::write(dir.path().join("tsig.key"), secret).unwrap();
    dir
}

fn only_task(service: &Service) -> Value {
    let mut found = Vec::new();
    poll_until(Duration::from_secs(10), || {
        found = service.tasks();
        !found.is_empty()
    });
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

#[test]
fn task_lifecycle_wrong_key_fails_clearly_then_retry_succeeds() {
    let Some(knot) = start_knot() else { return };
    let wrong = TsigKey::generate("mailzone").secret_base64;
    let dir = setup(&knot, &wrong, None);
    let service = Service::start(dir.path(), None);

    // The domain under automatic management got a DnsManagement task at start.
    let task = only_task(&service);
    assert_eq!(task["type"], "DnsManagement");
    assert_eq!(task["domain"], ZONE);
    let id = task["id"].as_str().unwrap().to_string();
    let failed = service.wait_for_task(&id, "Failed", Duration::from_secs(20));
    let reason = failed["failureReason"].as_str().unwrap();
    assert!(reason.contains("TSIG") && reason.contains(ZONE), "{reason}");
    assert!(!reason.contains(&wrong), "the secret leaked: {reason}");
    assert!(knot.query(ZONE, "MX").is_empty(), "nothing was published");

    // The key is fixed in its file; a retry succeeds and the records are served.
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    let (status, retried) = service.post(&format!("/api/v1/tasks/{id}/retry"), &json!({}));
    assert_eq!(status, 202, "{retried}");
    assert_eq!(retried["status"], "Scheduled");
    let done = service.wait_for_task(&id, "Succeeded", Duration::from_secs(30));
    assert!(done["failureReason"].is_null(), "{done}");
    assert_eq!(knot.query(ZONE, "MX"), ["10 mail.example.test."]);
    let txt = knot.query(ZONE, "TXT");
    assert!(
        txt.contains(&"\"site-verification=xyz\"".to_string()),
        "{txt:?}"
    );
    assert!(txt.iter().any(|t| t.starts_with("\"v=spf1")), "{txt:?}");

    // A task made by hand with updateRecords runs too, and finds the zone in sync.
    let (status, made) = service.post(
        "/api/v1/tasks",
        &json!({ "domain": ZONE, "updateRecords": ["mx", "spf"] }),
    );
    assert_eq!(status, 202, "{made}");
    assert_eq!(made["updateRecords"], json!(["mx", "spf"]));
    let made = service.wait_for_task(
        made["id"].as_str().unwrap(),
        "Succeeded",
        Duration::from_secs(30),
    );
    assert!(
        made["result"].as_str().unwrap().contains("in sync"),
        "{made}"
    );

    // Retrying a Succeeded task is a conflict, an unknown one a 404.
    assert_eq!(
        service
            .post(&format!("/api/v1/tasks/{id}/retry"), &json!({}))
            .0,
        409
    );
    assert_eq!(service.post("/api/v1/tasks/nope/retry", &json!({})).0, 404);

    let (_, metrics_text) = (
        0,
        client()
            .get(service.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
    );
    assert!(
        metrics_text.contains("mailzone_tasks{status=\"Succeeded\"} 2"),
        "{metrics_text}"
    );
    assert!(
        metrics_text.contains("mailzone_task_failures_total 1"),
        "{metrics_text}"
    );

    let log = service.terminate();
    for secret in [&wrong, &knot.key.secret_base64] {
        assert!(
            !log.contains(secret.as_str()),
            "a TSIG secret is in the log:\n{log}"
        );
    }
}

#[test]
fn kill_9_during_a_reconcile_then_restart_converges() {
    let Some(knot) = start_knot() else { return };
    // A second authoritative server that never answers keeps the task in its propagation
    // wait: the service is killed there, after the UPDATE.
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dir = setup(&knot, &knot.key.secret_base64, Some(dead));
    let service = Service::start(dir.path(), None);
    let token = service.token.clone();
    let task = only_task(&service);
    let id = task["id"].as_str().unwrap().to_string();
    let running = poll_until(Duration::from_secs(20), || {
        let t = service.get(&format!("/api/v1/tasks/{id}")).1;
        t["status"] == "Running"
            && t["progress"]
                .as_str()
                .is_some_and(|p| p.contains("propagation"))
    });
    assert!(
        running,
        "the task never waited for propagation: {}",
        service.output()
    );
    service.kill_9();

    // The lagging server is taken out of the config; a new process takes the task over
    // once the dead one's lease (3 s) has expired.
    std::fs::write(dir.path().join("mailzone.toml"), config(&knot, None)).unwrap();
    let service = Service::start(dir.path(), Some(&token));
    let done = service.wait_for_task(&id, "Succeeded", Duration::from_secs(30));
    assert!(done["attempts"].as_u64().unwrap() >= 2, "{done}");
    // The restart queued a fresh task behind the one still leased to the dead process;
    // both end Succeeded and the zone holds each record once.
    for t in service.tasks() {
        let t = service.wait_for_task(
            t["id"].as_str().unwrap(),
            "Succeeded",
            Duration::from_secs(30),
        );
        assert!(t["failureReason"].is_null(), "{t}");
    }
    assert_eq!(
        knot.query(ZONE, "MX"),
        ["10 mail.example.test."],
        "one MX, no duplicate"
    );
    let spf: Vec<String> = knot
        .query(ZONE, "TXT")
        .into_iter()
        .filter(|t| t.starts_with("\"v=spf1"))
        .collect();
    assert_eq!(spf.len(), 1, "{spf:?}");
    assert_eq!(knot.query(&format!("_dmarc.{ZONE}"), "TXT").len(), 1);
}

/// A task that waits long for propagation (8 s, four times its 2 s lease) keeps its lease:
/// the renewals run beside the work and do not wait for the task's own database
/// connection, so the task runs once, and the API (on the same one-connection SQLite pool)
/// keeps answering meanwhile. Before, a renewal could wait behind the unpolled task future
/// holding the connection: the lease expired, the task ran again, and requests waited for
/// the pool for up to 30 s.
#[test]
fn a_long_propagation_wait_keeps_its_lease_and_the_api_answers() {
    let Some(knot) = start_knot() else { return };
    let dir = setup(&knot, &knot.key.secret_base64, None);
    let text = std::fs::read_to_string(dir.path().join("mailzone.toml"))
        .unwrap()
        .replace(
            "pollingInterval = \"100ms\"",
            "pollingInterval = \"100ms\"\npropagationDelay = \"8s\"",
        );
    std::fs::write(dir.path().join("mailzone.toml"), text).unwrap();
    let service = Service::start_with(dir.path(), None, &["--lease", "2s"]);
    let id = only_task(&service)["id"].as_str().unwrap().to_string();
    let http = client();
    let mut slowest = Duration::ZERO;
    let mut asked = 0;
    let done = poll_until(Duration::from_secs(40), || {
        let started = std::time::Instant::now();
        let task: Value = http
            .get(service.url(&format!("/api/v1/tasks/{id}")))
            .bearer_auth(&service.token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        slowest = slowest.max(started.elapsed());
        asked += 1;
        task["status"] == "Succeeded"
    });
    assert!(done, "the task did not end: {}", service.output());
    let task = service.get(&format!("/api/v1/tasks/{id}")).1;
    assert_eq!(
        task["attempts"],
        1,
        "the task ran again: {task:#}\n{}",
        service.output()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "an API answer took {slowest:?} ({asked} asked) while the task waited"
    );
    assert!(
        !service.output().contains("pool timed out"),
        "{}",
        service.output()
    );
}

#[test]
fn every_api_route_needs_a_valid_token() {
    let Some(knot) = start_knot() else { return };
    let dir = setup(&knot, &knot.key.secret_base64, None);
    let service = Service::start(dir.path(), None);
    let http = client();
    let routes = [
        ("GET", "/api/v1/domains"),
        ("POST", "/api/v1/domains"),
        ("GET", "/api/v1/domains/example.test"),
        ("DELETE", "/api/v1/domains/example.test"),
        ("GET", "/api/v1/domains/example.test/records"),
        ("POST", "/api/v1/domains/example.test/plan"),
        ("POST", "/api/v1/domains/example.test/check"),
        ("GET", "/api/v1/dnsServers"),
        ("GET", "/api/v1/dnsServers/primary"),
        ("GET", "/api/v1/dkimSignatures"),
        ("GET", "/api/v1/tasks"),
        ("POST", "/api/v1/tasks"),
        ("GET", "/api/v1/tasks/x"),
        ("POST", "/api/v1/tasks/x/retry"),
        ("POST", "/api/v1/apiTokens"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/no-such-route"),
    ];
    for (method, path) in routes {
        for auth in [
            None,
            Some("Bearer mzt_wrong"),
            Some(&*format!("Basic {}", service.token)),
        ] {
            let mut request = http.request(method.parse().unwrap(), service.url(path));
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            let response = request.send().unwrap();
            assert_eq!(
                response.status().as_u16(),
                401,
                "{method} {path} with {auth:?}"
            );
            let body: Value = response.json().unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
        }
    }
    assert_eq!(
        http.get(service.url("/healthz")).send().unwrap().status(),
        200
    );

    // A token made through the API works, and is shown only in that answer.
    let (status, made) = service.post("/api/v1/apiTokens", &json!({ "name": "ci" }));
    assert_eq!(status, 201, "{made}");
    let second = made["token"].as_str().unwrap();
    let r = http
        .get(service.url("/api/v1/domains"))
        .bearer_auth(second)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // No answer carries a secret: not the TSIG key, not a token, not a DKIM private key.
    let mut bodies = String::new();
    for path in [
        "/api/v1/dnsServers",
        "/api/v1/dkimSignatures",
        "/api/v1/domains",
        "/api/v1/tasks",
    ] {
        bodies.push_str(&service.get(path).1.to_string());
    }
    assert!(bodies.contains("keySet"), "{bodies}");
    let dkim_private = std::fs::read_to_string(examples().join("keys/202611e.pem")).unwrap();
    let dkim_body: String = dkim_private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for secret in [
        &knot.key.secret_base64,
        &service.token,
        &second.to_string(),
        &dkim_body,
    ] {
        assert!(
            !bodies.contains(secret.as_str()),
            "a secret is in an API answer"
        );
    }
    let log = service.terminate();
    assert!(!log.contains(&knot.key.secret_base64), "{log}");
    assert!(!log.contains(second), "{log}");
}

#[test]
fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let Some(knot) = start_knot() else { return };
    let dir = setup(&knot, &knot.key.secret_base64, None);
    let service = Service::start(dir.path(), None);
    let before = service.tasks().len();
    let http = client();
    let post_raw = |path: &str, body: Vec<u8>, content_type: &str| {
        let r = http
            .post(service.url(path))
            .bearer_auth(&service.token)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        (
            "/api/v1/tasks",
            b"{\"domain\": ".to_vec(),
            "application/json",
            400,
        ),
        (
            "/api/v1/tasks",
            b"{\"domain\": \"example.test\", \"bogus\": 1}".to_vec(),
            "application/json",
            422, // well-formed JSON of the wrong shape
        ),
        (
            "/api/v1/tasks",
            b"{\"domain\": \"exa mple..test\"}".to_vec(),
            "application/json",
            400,
        ),
        (
            "/api/v1/tasks",
            b"{\"domain\": \"unknown.example\"}".to_vec(),
            "application/json",
            404,
        ),
        (
            "/api/v1/tasks",
            b"{\"domain\": \"manual.example\"}".to_vec(),
            "application/json",
            422,
        ),
        (
            "/api/v1/tasks",
            b"{\"domain\": \"example.test\", \"updateRecords\": [\"nope\"]}".to_vec(),
            "application/json",
            422,
        ),
        (
            "/api/v1/tasks",
            b"{\"domain\": \"example.test\", \"type\": \"Other\"}".to_vec(),
            "application/json",
            422,
        ),
        (
            "/api/v1/tasks",
            b"domain=example.test".to_vec(),
            "application/x-www-form-urlencoded",
            415,
        ),
        (
            "/api/v1/tasks",
            vec![b' '; 200 * 1024],
            "application/json",
            413,
        ),
        (
            "/api/v1/domains",
            b"{\"name\": \"example.test\"}".to_vec(),
            "application/json",
            409,
        ),
        (
            "/api/v1/domains/example.test/check",
            b"{\"nameservers\": [\"not an ip\"]}".to_vec(),
            "application/json",
            422,
        ),
        (
            "/api/v1/apiTokens",
            b"{\"name\": \"\"}".to_vec(),
            "application/json",
            422,
        ),
    ];
    for (path, body, content_type, expected) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let (status, answer) = post_raw(path, body, content_type);
        assert_eq!(status, expected, "{path} {shown}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{path} {shown}: no error message in {answer}"
        );
    }
    let (status, answer) = service.get("/api/v1/domains/bad..name");
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = service.get("/api/v1/tasks?status=Sleeping");
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = service.get("/api/v1/domains/example.test/records?format=xml");
    assert_eq!(status, 400, "{answer}");
    // A Unicode name is accepted and found as its A-label.
    let (status, _) = service.get("/api/v1/domains/b%C3%BCcher.example");
    assert_eq!(status, 404);
    let config_domain = http
        .put(service.url("/api/v1/domains/example.test"))
        .bearer_auth(&service.token)
        .send()
        .unwrap();
    assert_eq!(config_domain.status(), 409);
    let message: Value = config_domain.json().unwrap();
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mailzone.toml"),
        "{message}"
    );
    assert_eq!(service.tasks().len(), before, "bad input scheduled nothing");
}

#[test]
fn public_endpoints_match_the_published_records() {
    let Some(knot) = start_knot() else { return };
    let dir = setup(&knot, &knot.key.secret_base64, None);
    let service = Service::start(dir.path(), None);
    let http = client();
    let (status, records) = service.get(&format!("/api/v1/domains/{ZONE}/records"));
    assert_eq!(status, 200, "{records}");
    let txt_of = |name: &str| -> String {
        records
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name && r["type"] == "TXT")
            .unwrap_or_else(|| panic!("no TXT at {name}: {records:#}"))["value"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // MTA-STS: the served policy's hash is the id in the TXT record.
    let policy = http
        .get(service.url("/.well-known/mta-sts.txt"))
        .header("Host", format!("mta-sts.{ZONE}"))
        .send()
        .unwrap();
    assert_eq!(policy.status(), 200);
    assert!(
        policy.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let policy = policy.text().unwrap();
    assert!(
        policy.starts_with("version: STSv1\r\nmode: enforce\r\n"),
        "{policy:?}"
    );
    assert!(policy.contains("mx: mail.example.test\r\n"), "{policy:?}");
    let id: String = Sha256::digest(policy.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        txt_of(&format!("_mta-sts.{ZONE}.")),
        format!("v=STSv1; id={id}")
    );
    let other = http
        .get(service.url("/.well-known/mta-sts.txt"))
        .header("Host", "mta-sts.unknown.example")
        .send()
        .unwrap();
    assert_eq!(other.status(), 404);

    // Thunderbird autoconfig: well-formed XML (parsed by Python's xml.etree) naming the
    // host and the ports.
    for path in [
        "/mail/config-v1.1.xml",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
    ] {
        let xml = http
            .get(service.url(path))
            .header("Host", format!("autoconfig.{ZONE}"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let parsed = python_xml_summary(&xml);
        assert!(
            parsed.contains("incomingServer imap mail.example.test 993 SSL"),
            "{parsed}\n{xml}"
        );
        assert!(
            parsed.contains("outgoingServer smtp mail.example.test 465 SSL"),
            "{parsed}\n{xml}"
        );
        assert!(
            parsed.contains("outgoingServer smtp mail.example.test 587 STARTTLS"),
            "{parsed}\n{xml}"
        );
    }
    // Outlook autodiscover.
    let answer = http
        .post(service.url("/autodiscover/autodiscover.xml"))
        .header("Content-Type", "text/xml")
        .body(format!("<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>alice@{ZONE}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let parsed = python_xml_summary(&answer);
    assert!(
        parsed.contains("Protocol IMAP mail.example.test 993"),
        "{parsed}\n{answer}"
    );
    // PACC: the document's SHA-256 is in `_ua-auto-config`.
    let pacc = http
        .get(service.url("/.well-known/user-agent-configuration.json"))
        .header("Host", format!("ua-auto-config.{ZONE}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    use base64::Engine as _;
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(pacc.as_bytes()));
    assert_eq!(
        txt_of(&format!("_ua-auto-config.{ZONE}.")),
        format!("v=UAAC1; a=sha256; d={digest}")
    );
}

/// Parses XML with Python's standard library (a parser nobody here wrote) and prints one
/// line per server: `incomingServer imap host port socketType` or `Protocol IMAP host port`.
fn python_xml_summary(xml: &str) -> String {
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
def local(tag): return tag.split('}')[-1]
for el in root.iter():
    kids = {local(k.tag): (k.text or '') for k in el}
    if local(el.tag) in ('incomingServer', 'outgoingServer'):
        print(local(el.tag), el.get('type'), kids['hostname'], kids['port'], kids['socketType'])
    if local(el.tag) == 'Protocol':
        print('Protocol', kids['Type'], kids['Server'], kids['Port'])
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not well-formed XML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// schemathesis (from PyPI, in the test venv) generates requests from the OpenAPI
/// description and finds no server error (5xx). `check` is left out: without
/// `nameservers` it asks the zone's real authoritative servers, and tests stay on loopback.
#[test]
fn schemathesis_finds_no_server_error() {
    let Some(knot) = start_knot() else { return };
    let Some(st) = schemathesis() else { return };
    let dir = setup(&knot, &knot.key.secret_base64, None);
    let service = Service::start(dir.path(), None);
    let out = Command::new(&st)
        .args(["run", &service.url("/api/v1/openapi.json")])
        .args(["--url", &service.url("/api/v1")])
        .args(["-H", &format!("Authorization: Bearer {}", service.token)])
        .args(["--checks", "not_a_server_error"])
        .args(["--exclude-path", "/domains/{name}/check"])
        .args([
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--request-timeout",
            "20",
        ])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found a problem:\n{report}\n{}\nservice log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        service.output()
    );
    assert!(report.contains("passed"), "{report}");
}

/// `st` of the test venv, or `None` (skip) when there is none.
fn schemathesis() -> Option<PathBuf> {
    mailzone_testkit::test_venv_program("st")
}

/// Two `serve` processes on one real PostgreSQL share 200 tasks: each task runs once, and
/// when one process is killed (-9) its running tasks move to the other after their lease.
#[test]
fn two_instances_on_postgres_share_200_tasks_and_survive_a_kill() {
    const ZONES: usize = 200;
    if !mailzone_testkit::require_tools(&["knotd", "kdig"])
        || !mailzone_testkit::require_tools(POSTGRES_TOOLS)
    {
        return;
    }
    let pg = Postgres::start().expect("postgres starts");
    let key = TsigKey::generate("mailzone");
    let names: Vec<String> = (0..ZONES).map(|i| format!("z{i:03}.test")).collect();
    let specs: Vec<ZoneSpec> = names.iter().map(|n| ZoneSpec::new(n, "")).collect();
    let knot = DnsServer::start(ServerKind::Knot, &specs, &key, &ServerOptions::default()).unwrap();
    let ex = examples().display().to_string();
    let mut config = format!(
        r#"
[server]
hostname = "mail.example.org"
ipv4 = ["192.0.2.10"]

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyFile = "tsig.key"
authoritativeServers = ["{addr}"]
propagationDelay = "200ms"
pollingInterval = "100ms"
"#,
        port = knot.addr.port(),
        key = knot.key.name,
        addr = knot.addr,
    );
    for name in &names {
        config.push_str(&format!(
            "\n[domain.\"{name}\"]\ndkimManagement = {{ manual = {{ keys = [{{ selector = \"202611e\", privateKeyFile = \"{ex}/keys/202611e.pem\" }}] }} }}\ndnsManagement = {{ automatic = {{ dnsServer = \"primary\", publishRecords = [\"mx\", \"spf\", \"dmarc\"] }} }}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), config).unwrap();
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    let args = ["--database", pg.url.as_str(), "--workers", "2"];
    let a = Service::start_with(dir.path(), None, &args);
    let b = Service::start_with(dir.path(), Some(&a.token), &args);
    let all = |s: &Service| {
        let (status, tasks) = s.get("/api/v1/tasks?limit=1000");
        assert_eq!(status, 200, "{tasks}");
        tasks.as_array().unwrap().clone()
    };
    let count =
        |tasks: &[Value], status: &str| tasks.iter().filter(|t| t["status"] == status).count();
    let started = poll_until(Duration::from_secs(60), || {
        count(&all(&b), "Succeeded") >= 40
    });
    assert!(started, "tasks do not run: {}", b.output());
    let before_kill = all(&b);
    assert_eq!(
        before_kill.len(),
        ZONES,
        "one task per domain, none scheduled twice"
    );
    a.kill_9();
    let finished = poll_until(Duration::from_secs(120), || {
        count(&all(&b), "Succeeded") == ZONES
    });
    let tasks = all(&b);
    assert!(
        finished,
        "not all tasks succeeded: {:#?}\n{}",
        tasks
            .iter()
            .filter(|t| t["status"] != "Succeeded")
            .collect::<Vec<_>>(),
        b.output()
    );
    assert_eq!(tasks.len(), ZONES);
    let retaken: Vec<&Value> = tasks.iter().filter(|t| t["attempts"] != 1).collect();
    assert!(
        !retaken.is_empty() && retaken.len() <= 2 && retaken.iter().all(|t| t["attempts"] == 2),
        "the killed instance's running tasks (its 2 workers were busy) and only they run twice: {retaken:#?}"
    );
    for name in &names {
        assert_eq!(knot.query(name, "MX"), ["10 mail.example.org."], "{name}");
    }
}

/// SIGTERM while a task runs: the service exits, the task is given back (Scheduled, the
/// attempt not counted) and the next start finishes it.
#[test]
fn sigterm_gives_the_running_task_back() {
    let Some(knot) = start_knot() else { return };
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dir = setup(&knot, &knot.key.secret_base64, Some(dead));
    let service = Service::start(dir.path(), None);
    let token = service.token.clone();
    let id = only_task(&service)["id"].as_str().unwrap().to_string();
    let running = poll_until(Duration::from_secs(20), || {
        service.get(&format!("/api/v1/tasks/{id}")).1["status"] == "Running"
    });
    assert!(running, "{}", service.output());
    let log = service.terminate();
    assert!(log.contains("given back"), "{log}");

    std::fs::write(dir.path().join("mailzone.toml"), config(&knot, None)).unwrap();
    let service = Service::start(dir.path(), Some(&token));
    let done = service.wait_for_task(&id, "Succeeded", Duration::from_secs(30));
    assert_eq!(
        done["attempts"], 1,
        "the interrupted attempt was not counted: {done}"
    );
    assert_eq!(service.tasks().len(), 1, "{:#?}", service.tasks());
}

/// A domain created through the API (the issue's "create domain → task scheduled →
/// succeeded → records served"), kept in the database across restarts, changed and removed
/// through the API; file-defined domains stay read-only.
#[test]
fn domain_created_through_the_api_is_published() {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return;
    }
    let key = TsigKey::generate("mailzone");
    let zones = [
        ZoneSpec::new(ZONE, ""),
        ZoneSpec::new("api.test", "@ 3600 IN TXT \"site-verification=api\"\n"),
    ];
    let knot = DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default()).unwrap();
    let dir = setup(&knot, &knot.key.secret_base64, None);
    let service = Service::start(dir.path(), None);
    let token = service.token.clone();
    let definition = json!({
        "name": "api.test",
        "dnsManagement": { "automatic": { "dnsServer": "primary", "publishRecords": ["mx", "spf", "dkim", "dmarc"] } },
        "dkimManagement": { "automatic": { "algorithms": ["ed25519-sha256"] } },
        "dmarc": { "policy": "quarantine" }
    });
    let (status, created) = service.post("/api/v1/domains", &definition);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"], "api");
    assert_eq!(created["task"]["status"], "Scheduled", "{created}");
    let id = created["task"]["id"].as_str().unwrap().to_string();
    service.wait_for_task(&id, "Succeeded", Duration::from_secs(30));
    assert_eq!(knot.query("api.test", "MX"), ["10 mail.example.test."]);
    let dmarc = knot.query("_dmarc.api.test", "TXT");
    assert!(
        dmarc.iter().any(|t| t.contains("p=quarantine")),
        "{dmarc:?}"
    );
    let txt = knot.query("api.test", "TXT");
    assert!(
        txt.contains(&"\"site-verification=api\"".to_string()),
        "{txt:?}"
    );

    // Its automatic DKIM keys are rotated by DkimRotation tasks (nothing due yet); a domain
    // with manual keys has none to rotate.
    let (status, rotation) = service.post(
        "/api/v1/tasks",
        &json!({ "type": "DkimRotation", "domain": "api.test" }),
    );
    assert_eq!(status, 202, "{rotation}");
    let rotation = service.wait_for_task(
        rotation["id"].as_str().unwrap(),
        "Succeeded",
        Duration::from_secs(30),
    );
    assert!(
        rotation["result"].as_str().unwrap().contains("nothing due"),
        "{rotation}"
    );
    let (status, e) = service.post(
        "/api/v1/tasks",
        &json!({ "type": "DkimRotation", "domain": ZONE }),
    );
    assert_eq!(status, 422, "{e}");
    // TLSA is not in this domain's publishRecords: mailzone has no TLSA to sync there.
    let (status, e) = service.post(
        "/api/v1/tasks",
        &json!({ "type": "TlsaSync", "domain": ZONE }),
    );
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("TLSA"),
        "{e}"
    );

    // Mistakes are refused and change nothing.
    assert_eq!(
        service.post("/api/v1/domains", &definition).0,
        409,
        "exists"
    );
    let (status, e) = service.post(
        "/api/v1/domains",
        &json!({ "name": "other.test", "dnsManagement": { "automatic": { "dnsServer": "nope" } } }),
    );
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("nope"),
        "{e}"
    );
    let (status, e) = service.post(
        "/api/v1/domains",
        &json!({ "name": "files.test", "dkimManagement": { "manual": { "keys": [{ "selector": "s", "privateKeyFile": "/etc/shadow" }] } } }),
    );
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("privateKeyFile"),
        "{e}"
    );
    // Nor a command to run.
    let (status, e) = service.post(
        "/api/v1/domains",
        &json!({ "name": "hook.test", "dkimManagement": { "automatic": { "onKeyChange": ["/bin/sh", "-c", "id"] } } }),
    );
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("onKeyChange"),
        "{e}"
    );
    // Nor a zone-file DNS server, which writes files and runs its reload command.
    let (status, e) = service.post(
        "/api/v1/dnsServers",
        &json!({ "name": "files", "kind": "zonefile", "path": "/etc/cron.d/{zone}", "reloadCommand": ["/bin/sh", "-c", "id"] }),
    );
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("zonefile"),
        "{e}"
    );
    assert_eq!(service.get("/api/v1/dnsServers/files").0, 404);
    // An HTTP provider's token is write-only and sealed at rest.
    let (status, created) = service.post(
        "/api/v1/dnsServers",
        &json!({ "name": "cf", "kind": "cloudflare", "apiToken": "cf-token-never-shown", "maxRequestsPerSecond": 4 }),
    );
    assert_eq!(status, 201, "{created}");
    let (_, shown) = service.get("/api/v1/dnsServers/cf");
    assert_eq!(shown["kind"], "cloudflare", "{shown}");
    assert_eq!(shown["secretsSet"], json!(["apiToken"]), "{shown}");
    assert!(
        !shown.to_string().contains("cf-token-never-shown"),
        "{shown}"
    );
    assert!(
        !created.to_string().contains("cf-token-never-shown"),
        "{created}"
    );
    let db = std::fs::read(dir.path().join("state/mailzone.db")).unwrap();
    let wal = std::fs::read(dir.path().join("state/mailzone.db-wal")).unwrap_or_default();
    let needle = b"cf-token-never-shown";
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the token is sealed"
        );
    }
    assert_eq!(service.get("/api/v1/domains/other.test").0, 404);

    // The commands run beside the service see it too: its DKIM key reaches the MTA through
    // `dkim export` like a file-defined domain's.
    let listed = common::mailzone_ok(dir.path(), &["dkim", "list", "api.test"]);
    assert!(
        listed.contains("api.test") && listed.contains("ed25519") && listed.contains("Active"),
        "{listed}"
    );
    let export = dir.path().join("export");
    common::mailzone_ok(
        dir.path(),
        &[
            "dkim",
            "export",
            "api.test",
            "--format",
            "pem",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    let exported: Vec<_> = std::fs::read_dir(export.join("api.test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        exported.len() == 1 && exported[0].ends_with(".pem"),
        "{exported:?}"
    );
    let records = common::mailzone_ok(dir.path(), &["records", "api.test"]);
    assert!(records.contains("p=quarantine"), "{records}");

    // It survives a restart (it lives in the database).
    drop(service.terminate());
    let service = Service::start(dir.path(), Some(&token));
    let (status, again) = service.get("/api/v1/domains/api.test");
    assert_eq!(
        (status, again["source"].as_str()),
        (200, Some("api")),
        "{again}"
    );

    // Switched to manual management: no task; then removed.
    let http = client();
    let switched: Value = http
        .put(service.url("/api/v1/domains/api.test"))
        .bearer_auth(&token)
        .json(&json!({ "dnsManagement": { "manual": {} } }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        switched["dnsManagement"],
        json!({ "manual": {} }),
        "{switched}"
    );
    assert!(switched["task"].is_null(), "{switched}");
    let deleted = http
        .delete(service.url("/api/v1/domains/api.test"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(service.get("/api/v1/domains/api.test").0, 404);
    let file_domain = http
        .delete(service.url(&format!("/api/v1/domains/{ZONE}")))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(file_domain.status(), 409);
}

/// `[serve.tls]` in the config: the listener speaks HTTPS with that certificate (checked by
/// curl against the example CA), and plain HTTP gets no answer.
#[test]
fn tls_from_the_config_serves_https() {
    if !mailzone_testkit::require_tools(&["curl"]) {
        return;
    }
    let Some(knot) = start_knot() else { return };
    let ex = examples();
    let dir = setup(&knot, &knot.key.secret_base64, None);
    let mut text = std::fs::read_to_string(dir.path().join("mailzone.toml")).unwrap();
    text.push_str(&format!(
        "\n[serve.tls]\ncertificate = \"{}\"\nprivateKey = \"{}\"\n",
        ex.join("certs/mail.example.org.pem").display(),
        ex.join("certs/mail.example.org.key").display()
    ));
    std::fs::write(dir.path().join("mailzone.toml"), text).unwrap();
    let service = Service::start(dir.path(), None);
    assert!(
        service.output().contains("API on https://"),
        "{}",
        service.output()
    );
    let port = service.addr.port();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ex.join("certs/ca.pem"))
        .args(["--resolve", &format!("mail.example.org:{port}:127.0.0.1")])
        .arg(format!("https://mail.example.org:{port}/healthz"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), r#"{"status":"ok"}"#);
    let plain = client().get(service.url("/healthz")).send();
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP answered"
    );
}

/// A DNS server created through the API: its TSIG key is write-only (never in an answer),
/// sealed in the database, and used by an API-created domain's task.
#[test]
fn dns_server_created_through_the_api_keeps_its_key_sealed() {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return;
    }
    let key = TsigKey::generate("mailzone");
    let zones = [ZoneSpec::new(ZONE, ""), ZoneSpec::new("viaapi.test", "")];
    let knot = DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default()).unwrap();
    let dir = setup(&knot, &knot.key.secret_base64, None);
    let service = Service::start(dir.path(), None);
    let secret = knot.key.secret_base64.clone();
    let server = json!({
        "name": "apiprimary", "kind": "rfc2136", "host": "127.0.0.1", "port": knot.addr.port(),
        "keyName": knot.key.name, "key": secret, "pollingInterval": "100ms"
    });
    let (status, created) = service.post("/api/v1/dnsServers", &server);
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["source"].as_str(), created["keySet"].as_bool()),
        (Some("api"), Some(true))
    );
    assert_eq!(service.post("/api/v1/dnsServers", &server).0, 409);
    let (status, e) = service.post(
        "/api/v1/dnsServers",
        &json!({ "name": "envy", "kind": "rfc2136", "host": "127.0.0.1", "keyName": "k", "keyEnv": "HOME" }),
    );
    assert_eq!(status, 422, "{e}");
    let (status, _) = service.post(
        "/api/v1/dnsServers",
        &json!({ "name": "bad name!", "kind": "rfc2136" }),
    );
    assert_eq!(status, 400);
    let (status, e) = service.post(
        "/api/v1/dnsServers",
        &json!({ "name": "typo", "kind": "rfc2136", "host": "127.0.0.1", "keyName": "k", "key": "not base64!" }),
    );
    assert_eq!(status, 422, "{e}");
    assert!(
        !e.to_string().contains("not base64!"),
        "the value is echoed: {e}"
    );

    let (status, domain) = service.post(
        "/api/v1/domains",
        &json!({ "name": "viaapi.test",
                 "dnsManagement": { "automatic": { "dnsServer": "apiprimary", "publishRecords": ["mx"] } },
                 "dkimManagement": { "automatic": { "algorithms": ["ed25519-sha256"] } } }),
    );
    assert_eq!(status, 201, "{domain}");
    service.wait_for_task(
        domain["task"]["id"].as_str().unwrap(),
        "Succeeded",
        Duration::from_secs(30),
    );
    assert_eq!(knot.query("viaapi.test", "MX"), ["10 mail.example.test."]);

    // In use: cannot be removed. Config-file servers are read-only.
    let http = client();
    let in_use = http
        .delete(service.url("/api/v1/dnsServers/apiprimary"))
        .bearer_auth(&service.token)
        .send()
        .unwrap();
    assert_eq!(in_use.status(), 422);
    let file_server = http
        .put(service.url("/api/v1/dnsServers/primary"))
        .bearer_auth(&service.token)
        .json(&json!({ "kind": "rfc2136", "host": "127.0.0.1" }))
        .send()
        .unwrap();
    assert_eq!(file_server.status(), 409);

    // The secret is in no answer, no log line, and not in clear in the database.
    let mut answers = service.get("/api/v1/dnsServers").1.to_string();
    answers.push_str(&service.get("/api/v1/dnsServers/apiprimary").1.to_string());
    answers.push_str(&service.get("/api/v1/tasks").1.to_string());
    assert!(!answers.contains(&secret), "{answers}");
    let log = service.terminate();
    assert!(!log.contains(&secret), "{log}");
    let db = std::fs::read(dir.path().join("state/mailzone.db")).unwrap();
    let wal = std::fs::read(dir.path().join("state/mailzone.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the TSIG secret is in the database in clear"
        );
    }
}
