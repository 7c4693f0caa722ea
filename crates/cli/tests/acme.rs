//! `mailzone acme renew` and `onSuccessRenewCertificate` against Debian's `pebble` (an ACME
//! test CA, RFC 8555) whose DNS resolver is a real Knot: a certificate issued over DNS-01
//! (RFC 8555 §8.4) for the configured names, the challenge records gone afterwards, nothing
//! sent when the certificate is not due, a failure leaving the old certificate in place, and
//! the service chaining issuance after a publication. Loopback traffic only.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Service, collect_output, free_port};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec, poll_until};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use sha2::Digest as _;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

const ZONE: &str = "acme.test";
const NAMES: [&str; 4] = [
    "autoconfig.acme.test",
    "autodiscover.acme.test",
    "mail.acme.test",
    "mta-sts.acme.test",
];

/// A pebble process on free loopback ports, its output collected.
struct Pebble {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

impl Pebble {
    /// Starts pebble with its DNS resolver at `dns`, and an HTTPS certificate from a CA
    /// made here (written to `dir/pebble-ca.pem`, which the config trusts).
    fn start(dir: &Path, dns: SocketAddr) -> Pebble {
        let (ca_pem, cert_pem, key_pem) = https_certificate();
        std::fs::write(dir.join("pebble-ca.pem"), ca_pem).unwrap();
        std::fs::write(dir.join("pebble-cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.join("pebble-key.pem"), key_pem).unwrap();
        let port = free_port();
        let config = json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{}", free_port()),
            "certificate": dir.join("pebble-cert.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let mut child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &dns.to_string()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // Every order needs its challenges: a reused authorization would skip DNS.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = collect_output(&mut child);
        let up = poll_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "pebble did not start: {}", output.lock().unwrap());
        Pebble {
            child,
            port,
            output,
        }
    }

    /// Lines of pebble's log containing `what`.
    fn logged(&self, what: &str) -> usize {
        self.output
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(what))
            .count()
    }

    /// Requests pebble has logged so far (one line each).
    fn requests(&self) -> usize {
        self.output
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains("GET /") || l.contains("POST /") || l.contains("HEAD /"))
            .count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (CA PEM, server certificate PEM for 127.0.0.1, its key PEM).
fn https_certificate() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mailzone test CA for pebble");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn config(knot: &DnsServer, pebble: &Pebble) -> String {
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[server.tls]
certificate = "tls/mail.pem"

[server.acme]
directory = "https://127.0.0.1:{pebble}/dir"
contact = ["mailto:hostmaster@{ZONE}"]
caCertificate = "pebble-ca.pem"

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyFile = "tsig.key"
pollingInterval = "100ms"
propagationTimeout = "5s"

[domain."{ZONE}"]
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["mx"] }} }}
"#,
        pebble = pebble.port,
        port = knot.addr.port(),
        key = knot.key.name,
    )
}

struct Setup {
    dir: tempfile::TempDir,
    knot: DnsServer,
    pebble: Pebble,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn mailzone(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(args)
            .arg("--config")
            .arg(self.path("mailzone.toml"))
            .arg("--state-dir")
            .arg(self.path("state"))
            .output()
            .unwrap()
    }

    fn renew(&self, force: bool) -> Value {
        let mut args = vec!["acme", "renew", "--format", "json"];
        if force {
            args.push("--force");
        }
        let out = self.mailzone(&args);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Every `_acme-challenge` TXT record Knot serves for the names.
    fn challenge_records(&self) -> Vec<String> {
        NAMES
            .iter()
            .flat_map(|n| self.knot.query(&format!("_acme-challenge.{n}"), "TXT"))
            .collect()
    }
}

fn start() -> Option<Setup> {
    if !mailzone_testkit::require_tools(&["knotd", "kdig", "pebble"]) {
        return None;
    }
    let key = TsigKey::generate("mailzone");
    let zone = ZoneSpec::new(ZONE, "");
    let knot =
        DnsServer::start(ServerKind::Knot, &[zone], &key, &ServerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pebble = Pebble::start(dir.path(), knot.addr);
    std::fs::write(dir.path().join("mailzone.toml"), config(&knot, &pebble)).unwrap();
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    Some(Setup { dir, knot, pebble })
}

/// (sorted DNS SANs, issuer, SPKI bytes) of the leaf in `path`.
fn leaf(path: &Path) -> (Vec<String>, String, Vec<u8>) {
    let text = std::fs::read(path).unwrap();
    let blocks = pem::parse_many(&text).unwrap();
    let (_, cert) = X509Certificate::from_der(blocks[0].contents()).unwrap();
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    names.sort();
    (
        names,
        cert.issuer().to_string(),
        cert.public_key().raw.to_vec(),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn issues_over_dns01_then_is_not_due_and_a_failure_keeps_the_old_certificate() {
    let Some(s) = start() else { return };
    let cert = s.path("tls/mail.pem");
    let key = s.path("tls/mail.key");

    // First run: no certificate yet, so one is issued over DNS-01.
    let report = s.renew(false);
    assert_eq!(report["outcome"], "issued", "{report:#}");
    assert_eq!(report["challenges"], 4, "{report:#}");
    assert_eq!(report["leftoverChallenges"], json!([]), "{report:#}");
    let (names, issuer, spki) = leaf(&cert);
    assert_eq!(names, NAMES, "the certificate's SANs");
    assert!(issuer.contains("Pebble"), "issuer {issuer}");
    assert_eq!(mode(&key), 0o600, "the private key file");
    assert!(
        s.challenge_records().is_empty(),
        "challenge records left: {:?}",
        s.challenge_records()
    );
    let account = std::fs::read(s.path("state/mailzone.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&account).contains("key_pkcs8"),
        "the ACME account is sealed in the store"
    );

    // Second run: not due, and pebble hears nothing.
    let before = s.pebble.requests();
    let report = s.renew(false);
    assert_eq!(report["outcome"], "notDue", "{report:#}");
    let text = s.mailzone(&["acme", "renew"]);
    assert!(text.status.success());
    assert!(
        String::from_utf8_lossy(&text.stdout).starts_with("not due"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        s.pebble.requests(),
        before,
        "a run with nothing due sent requests"
    );

    // Forced renewal: a new certificate for the same key (reuseKey), so TLSA 3 1 1 stays.
    let key_before = std::fs::read(&key).unwrap();
    let report = s.renew(true);
    assert_eq!(report["outcome"], "issued", "{report:#}");
    assert_eq!(report["keyReused"], true, "{report:#}");
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
    assert_eq!(leaf(&cert).2, spki, "same key, same SPKI");
    assert_eq!(
        s.pebble.logged("POST /sign-me-up"),
        1,
        "one ACME account, restored from the store for the second order"
    );
    assert!(s.challenge_records().is_empty());

    // A wrong TSIG key: the run fails with one line, the certificate stays as it was and
    // no challenge record is left.
    let cert_before = std::fs::read(&cert).unwrap();
    std::fs::write(
        s.path("tsig.key"),
        "d3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmc=",
    )
    .unwrap();
    let out = s.mailzone(&["acme", "renew", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("wrong TSIG key: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("error: no certificate written: zone acme.test.")
            && stderr.contains("TSIG"),
        "{stderr}"
    );
    assert!(!stderr.contains("d3Jvbmcg"), "the secret is never shown");
    assert_eq!(std::fs::read(&cert).unwrap(), cert_before);
    assert!(s.challenge_records().is_empty());
}

/// SHA-256 of a private key's SubjectPublicKeyInfo, by openssl (not mailzone's code).
fn openssl_spki_sha256(private_key: &Path) -> String {
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(private_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex(&sha2::Sha256::digest(&out.stdout))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Setup {
    /// The `3 1 1` digests Knot serves at `_25._tcp` of the mail host, sorted.
    fn served_tlsa(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .knot
            .query(&format!("_25._tcp.mail.{ZONE}"), "TLSA")
            .iter()
            .filter(|r| r.starts_with("3 1 1"))
            .map(|r| {
                r.split_whitespace()
                    .skip(3)
                    .collect::<String>()
                    .to_lowercase()
            })
            .collect();
        out.sort();
        out
    }

    fn apply(&self) {
        let out = self.mailzone(&["apply", "--quiet"]);
        assert!(
            out.status.success(),
            "apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `reuseKey = false`: each renewal makes the key of the next one, which is published as the
/// next TLSA key at once, so the certificate that uses it was announced a whole renewal
/// before (RFC 7671 §8.1).
#[test]
fn without_key_reuse_the_next_key_is_published_before_a_certificate_uses_it() {
    let Some(s) = start() else { return };
    let text = std::fs::read_to_string(s.path("mailzone.toml")).unwrap();
    let text = text
        .replace(
            "caCertificate = \"pebble-ca.pem\"",
            "caCertificate = \"pebble-ca.pem\"\nreuseKey = false",
        )
        .replace(
            "publishRecords = [\"mx\"]",
            "publishRecords = [\"mx\", \"tlsa\"]",
        );
    std::fs::write(s.path("mailzone.toml"), text).unwrap();
    let key = s.path("tls/mail.key");
    let next = s.path("tls/mail.key.next");

    assert_eq!(s.renew(false)["outcome"], "issued");
    let first = openssl_spki_sha256(&key);
    assert_eq!(
        hex(&sha2::Sha256::digest(&leaf(&s.path("tls/mail.pem")).2)),
        first
    );
    assert_eq!(mode(&next), 0o600, "the next key file");
    let announced = openssl_spki_sha256(&next);
    assert_ne!(announced, first);
    s.apply();
    let mut both = vec![first.clone(), announced.clone()];
    both.sort();
    assert_eq!(s.served_tlsa(), both, "current and next key published");

    // The renewal uses the announced key, and makes (and announces) the one after it.
    assert_eq!(s.renew(true)["outcome"], "issued");
    assert_eq!(
        openssl_spki_sha256(&key),
        announced,
        "the announced key is used"
    );
    let (_, _, spki) = leaf(&s.path("tls/mail.pem"));
    assert_eq!(hex(&sha2::Sha256::digest(&spki)), announced);
    let following = openssl_spki_sha256(&next);
    assert!(![first.clone(), announced.clone()].contains(&following));
    s.apply();
    let mut all = vec![first, announced, following];
    all.sort();
    assert_eq!(s.served_tlsa(), all, "old (retiring), current and next");
}

#[test]
fn a_failure_after_publishing_removes_the_challenge_records() {
    let Some(s) = start() else { return };
    // A second authoritative server that never answers: the challenge records are
    // published on Knot, propagation times out, and the records are removed again.
    let dead = free_port();
    let text = std::fs::read_to_string(s.path("mailzone.toml")).unwrap().replace(
        "pollingInterval = \"100ms\"",
        &format!(
            "pollingInterval = \"100ms\"\nauthoritativeServers = [\"{}\", \"127.0.0.1:{dead}\"]\ntimeout = \"300ms\"",
            s.knot.addr
        ),
    );
    let text = text.replace("propagationTimeout = \"5s\"", "propagationTimeout = \"1s\"");
    std::fs::write(s.path("mailzone.toml"), text).unwrap();
    let out = s.mailzone(&["acme", "renew"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    eprintln!("propagation failure: {stderr}");
    assert!(stderr.contains("did not serve the change"), "{stderr}");
    assert!(!s.path("tls/mail.pem").exists(), "no certificate written");
    assert!(
        s.challenge_records().is_empty(),
        "challenge records left: {:?}",
        s.challenge_records()
    );
}

/// `acme renew` killed by SIGKILL once its challenge records are served (crash point
/// `acme-challenge`): the records stay in DNS, recorded in the store; the next renewal
/// removes them before anything else and issues the certificate.
#[test]
fn a_renewal_killed_during_the_challenge_leaves_no_record_after_the_next_one() {
    use std::os::unix::process::ExitStatusExt as _;
    let Some(s) = start() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["acme", "renew", "--config"])
        .arg(s.path("mailzone.toml"))
        .arg("--state-dir")
        .arg(s.path("state"))
        .env("MAILZONE_CRASH_AT", "acme-challenge")
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "not killed at the challenge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = s.challenge_records();
    assert_eq!(left.len(), NAMES.len(), "served when killed: {left:?}");
    assert!(!s.path("tls/mail.pem").exists());

    let report = s.renew(false);
    assert_eq!(report["outcome"], "issued", "{report:#}");
    assert_eq!(report["leftoverChallenges"], json!([]), "{report:#}");
    assert!(
        s.challenge_records().is_empty(),
        "challenge records left: {:?}",
        s.challenge_records()
    );
    // The store holds nothing more to remove: the next run is simply not due.
    let report = s.renew(false);
    assert_eq!(report["outcome"], "notDue", "{report:#}");
    assert!(s.challenge_records().is_empty());
}

/// The tasks, waiting until none is scheduled or running.
fn settled_tasks(service: &Service) -> Vec<Value> {
    let mut tasks = Vec::new();
    let settled = poll_until(Duration::from_secs(60), || {
        tasks = service.tasks();
        !tasks.is_empty()
            && tasks
                .iter()
                .all(|t| t["status"] == "Succeeded" || t["status"] == "Failed")
    });
    assert!(
        settled,
        "tasks did not settle: {tasks:#?}\n{}",
        service.output()
    );
    tasks
}

#[test]
fn on_success_renew_certificate_chains_issuance_after_publication() {
    let Some(s) = start() else { return };
    // A certificate in place that is not due: the start-up publication chains nothing.
    assert_eq!(s.renew(false)["outcome"], "issued");
    let first = std::fs::read(s.path("tls/mail.pem")).unwrap();
    let service = Service::start(s.dir.path(), None);
    let tasks = settled_tasks(&service);
    assert!(
        tasks.iter().all(|t| t["type"] != "AcmeRenewal"),
        "nothing due, nothing chained: {tasks:#?}"
    );

    let (status, created) = service.post(
        "/api/v1/tasks",
        &json!({ "domain": ZONE, "onSuccessRenewCertificate": true }),
    );
    assert_eq!(status, 202, "{created:#}");
    assert_eq!(created["onSuccessRenewCertificate"], true, "{created:#}");
    let tasks = settled_tasks(&service);
    let publication = tasks.iter().find(|t| t["id"] == created["id"]).unwrap();
    assert_eq!(publication["status"], "Succeeded", "{publication:#}");
    assert!(
        publication["result"]
            .as_str()
            .unwrap()
            .contains("certificate renewal chained"),
        "{publication:#}"
    );
    let renewal = tasks
        .iter()
        .find(|t| t["type"] == "AcmeRenewal")
        .unwrap_or_else(|| panic!("no AcmeRenewal task: {tasks:#?}"));
    assert_eq!(renewal["status"], "Succeeded", "{renewal:#}");
    assert!(
        renewal["result"]
            .as_str()
            .unwrap()
            .starts_with("certificate issued for"),
        "{renewal:#}"
    );
    let second = std::fs::read(s.path("tls/mail.pem")).unwrap();
    assert_ne!(first, second, "a new certificate was written");
    assert_eq!(leaf(&s.path("tls/mail.pem")).0, NAMES);
    assert!(s.challenge_records().is_empty());
}

#[test]
fn on_success_renew_certificate_without_acme_is_refused() {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return;
    }
    let key = TsigKey::generate("mailzone");
    let knot = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(ZONE, "")],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nhostname = \"mail.{ZONE}\"\n\n[dnsServer.primary]\nkind = \"rfc2136\"\nhost = \"127.0.0.1\"\nport = {}\nkeyName = \"{}\"\nkeyFile = \"tsig.key\"\n\n[domain.\"{ZONE}\"]\ndnsManagement = {{ automatic = {{ dnsServer = \"primary\" }} }}\n",
        knot.addr.port(),
        knot.key.name
    );
    std::fs::write(dir.path().join("mailzone.toml"), text).unwrap();
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    let service = Service::start(dir.path(), None);
    let (status, body) = service.post(
        "/api/v1/tasks",
        &json!({ "domain": ZONE, "onSuccessRenewCertificate": true }),
    );
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("[server.acme]"), "{message}");
}
