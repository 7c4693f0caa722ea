//! TLSA rollover against a real Knot with a clock the test sets (`apply --at`): a
//! certificate renewed under a new key goes {old} → {old, new} → {new} in the served `3 1 1`
//! set (RFC 7671 §8.1), `ldns-dane` accepts the certificate file against the served records
//! at every step after the switch, and `mailzone serve` notices a renewed certificate file
//! by itself (TlsaSync). Digests are computed with openssl, not with mailzone's code.
//!
//! Skipped when Knot or openssl is missing (a failure under `MAILZONE_REQUIRE_TOOLS=1`);
//! the ldns-dane verdicts are skipped without ldns-dane.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::Service;
use std::time::Duration;

use mailzone_testkit::{
    DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec, poll_until, require_tool, tool_path,
};
use serde_json::Value;

const ZONE: &str = "rollover.test";
const SMTP: &str = "_25._tcp.mail.rollover.test";
const DAY: i64 = 86_400;
/// 2026-11-02, a fixed start for the test's clock.
const T0: i64 = 1_793_577_600;

/// A CA and two leaf keys with their certificates, made by openssl in `dir`.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=Rollover Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        for leaf in ["old", "new"] {
            pki.openssl(&[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{leaf}.key"),
                "-out",
                &format!("{leaf}.csr"),
                "-subj",
                &format!("/CN=mail.{ZONE}"),
            ]);
            std::fs::write(
                dir.join("leaf.ext"),
                format!("basicConstraints=CA:FALSE\nsubjectAltName=DNS:mail.{ZONE}\n"),
            )
            .unwrap();
            pki.openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{leaf}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "365",
                "-extfile",
                "leaf.ext",
                "-out",
                &format!("{leaf}.crt"),
            ]);
            let chain = [
                std::fs::read_to_string(dir.join(format!("{leaf}.crt"))).unwrap(),
                std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
            ]
            .concat();
            std::fs::write(dir.join(format!("{leaf}.chain.pem")), chain).unwrap();
            pki.openssl(&[
                "pkey",
                "-in",
                &format!("{leaf}.key"),
                "-pubout",
                "-out",
                &format!("{leaf}.pub"),
            ]);
        }
        pki
    }

    fn openssl(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// SHA-256 of the key's DER SubjectPublicKeyInfo, by openssl: the `3 1 1` data.
    fn spki_sha256(&self, leaf: &str) -> String {
        let der = self.openssl(&[
            "pkey",
            "-pubin",
            "-in",
            &format!("{leaf}.pub"),
            "-outform",
            "DER",
        ]);
        let path = self.dir.join(format!("{leaf}.spki.der"));
        std::fs::write(&path, der).unwrap();
        let out = self.openssl(&["dgst", "-sha256", "-r", path.to_str().unwrap()]);
        String::from_utf8(out).unwrap()[..64].to_string()
    }

    fn chain(&self, leaf: &str) -> PathBuf {
        self.dir.join(format!("{leaf}.chain.pem"))
    }
}

/// `openssl s_server` serving a leaf's certificate and chain on a loopback port.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(pki: &Pki, leaf: &str) -> TlsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-naccept", "1", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "-cert",
                &format!("{leaf}.crt"),
                "-key",
                &format!("{leaf}.key"),
            ])
            .args(["-cert_chain", "ca.pem"])
            .current_dir(&pki.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let listening = poll_until(Duration::from_secs(10), || {
            // A probe would use up -naccept 1: look at the listening sockets instead.
            std::fs::read_to_string("/proc/net/tcp")
                .is_ok_and(|t| t.contains(&format!(":{port:04X} 00000000:0000 0A")))
        });
        assert!(listening, "openssl s_server did not listen on {port}");
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    dir: tempfile::TempDir,
    knot: DnsServer,
    pki: Pki,
}

impl Run {
    fn start() -> Option<Run> {
        if !mailzone_testkit::require_tools(&["knotd", "kdig", "openssl", "sqlite3"]) {
            return None;
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
        std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
        let pki_dir = dir.path().join("pki");
        std::fs::create_dir(&pki_dir).unwrap();
        let pki = Pki::new(&pki_dir);
        let run = Run { dir, knot, pki };
        run.install_certificate("old");
        run.write_config(None);
        Some(run)
    }

    /// The config; `next_key` names a public key file for `server.tls.nextKey`.
    fn write_config(&self, next_key: Option<&str>) {
        self.write_config_retiring_after(next_key, "2d");
    }

    fn write_config_retiring_after(&self, next_key: Option<&str>, retire_after: &str) {
        self.write_config_publishing(next_key, retire_after, r#""mx", "tlsa""#);
    }

    /// The config publishing `publish` (a TOML list's items); DKIM keys are automatic (the
    /// default).
    fn write_config_publishing(&self, next_key: Option<&str>, retire_after: &str, publish: &str) {
        let next = next_key
            .map(|k| format!("nextKey = \"pki/{k}.pub\"\n"))
            .unwrap_or_default();
        let text = format!(
            r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[server.services]
imap = {{}}
submission = {{}}

[server.tls]
certificate = "cert.pem"
retireAfter = "{retire_after}"
{next}
[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyFile = "tsig.key"
pollingInterval = "100ms"

[domain."{ZONE}"]
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = [{publish}] }} }}
"#,
            port = self.knot.addr.port(),
            key = self.knot.key.name,
        );
        std::fs::write(self.dir.path().join("mailzone.toml"), text).unwrap();
    }

    /// What the mail server would serve: the leaf's chain in the configured path.
    fn install_certificate(&self, leaf: &str) {
        std::fs::copy(self.pki.chain(leaf), self.dir.path().join("cert.pem")).unwrap();
    }

    fn mailzone(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("mailzone.toml"))
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .output()
            .unwrap()
    }

    /// `apply` at time `at`; returns its stderr (progress lines and warnings: not `--quiet`,
    /// which leaves out warnings too).
    fn apply(&self, at: i64) -> String {
        let out = self.mailzone(&["apply", "--at", &at.to_string()]);
        assert!(
            out.status.success(),
            "apply: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `plan` at time `at`; returns its stdout (the changes).
    fn plan(&self, at: i64) -> String {
        self.ok(&["plan", "--quiet", "--at", &at.to_string()])
    }

    /// Runs a command, requiring success; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.mailzone(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The state database as it is on disk once no mailzone process holds it: the bytes of
    /// the SQLite file (and of a write-ahead log, if one was left), and every table's rows
    /// as `sqlite3 .dump` prints them.
    fn state_snapshot(&self) -> (Vec<Vec<u8>>, String) {
        let db = self.dir.path().join("state/mailzone.db");
        let bytes = ["", "-wal"]
            .iter()
            .map(|suffix| {
                let mut path = db.clone().into_os_string();
                path.push(suffix);
                std::fs::read(path).unwrap_or_default()
            })
            .collect();
        (bytes, self.sql(".dump"))
    }

    /// `sqlite3 -readonly` on the state database: a query's rows, or a dot command's output.
    fn sql(&self, query: &str) -> String {
        let out = Command::new(tool_path("sqlite3").unwrap())
            .arg("-readonly")
            .arg(self.dir.path().join("state/mailzone.db"))
            .arg(query)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The served TLSA records at `name` as (usage, lowercase digest), sorted.
    fn served(&self, name: &str) -> Vec<(u8, String)> {
        let mut out: Vec<(u8, String)> = self
            .knot
            .query(name, "TLSA")
            .iter()
            .map(|rdata| {
                let fields: Vec<&str> = rdata.split_whitespace().collect();
                (
                    fields[0].parse().unwrap(),
                    fields[3..].concat().to_lowercase(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The served `3 1 1` digests at `_25._tcp`, checked equal at every TLSA name.
    fn served_ee(&self) -> Vec<String> {
        let smtp = self.served(SMTP);
        for port in [993, 465] {
            let other = format!("_{port}._tcp.mail.{ZONE}");
            assert_eq!(self.served(&other), smtp, "{other} differs from {SMTP}");
        }
        self.served_smtp_ee()
    }

    /// The served `3 1 1` digests at `_25._tcp` only (for polling while a service may be
    /// publishing between two questions).
    fn served_smtp_ee(&self) -> Vec<String> {
        self.served(SMTP)
            .into_iter()
            .filter(|(usage, _)| *usage == 3)
            .map(|(_, d)| d)
            .collect()
    }

    /// ldns-dane's verdict on the certificate a TLS server really serves (`openssl
    /// s_server` on loopback with `leaf`'s key and chain) against the `3 1 1` records Knot
    /// serves, taken alone (the `2 1 1` of the shared CA would accept either leaf). `None`
    /// without ldns-dane.
    fn ldns_dane_accepts(&self, leaf: &str) -> Option<bool> {
        if !require_tool("ldns-dane") {
            return None;
        }
        let tls = TlsServer::start(&self.pki, leaf);
        // The records as served, under the name of the port the TLS server listens on.
        let records: String = self
            .served_ee()
            .iter()
            .map(|d| format!("_{}._tcp.mail.{ZONE}. 3600 IN TLSA 3 1 1 {d}\n", tls.port))
            .collect();
        let file = self.dir.path().join("tlsa.txt");
        std::fs::write(&file, records).unwrap();
        // -a: connect to the loopback server; -n: DANE-EE binds the key, not the name
        // (RFC 7672 §3.1.1); -d: DNSSEC is not what is tested here.
        let out = Command::new(tool_path("ldns-dane").unwrap())
            .args(["-n", "-d", "-a", "127.0.0.1", "-t"])
            .arg(&file)
            .arg("verify")
            .output()
            .unwrap();
        eprintln!(
            "ldns-dane ({leaf}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(out.status.success())
    }

    fn status(&self) -> Value {
        let out = self.mailzone(&["tlsa", "status", "--format", "json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        })
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn announced_renewal_goes_old_then_both_then_new() {
    let Some(run) = Run::start() else { return };
    let old = run.pki.spki_sha256("old");
    let new = run.pki.spki_sha256("new");

    run.apply(T0);
    assert_eq!(run.served_ee(), vec![old.clone()]);
    if let Some(accepted) = run.ldns_dane_accepts("old") {
        assert!(accepted, "ldns-dane rejects the current certificate");
    }

    // The next key is announced before the certificate changes.
    run.write_config(Some("new"));
    run.apply(T0 + DAY);
    assert_eq!(run.served_ee(), sorted(vec![old.clone(), new.clone()]));
    if let Some(accepted) = run.ldns_dane_accepts("old") {
        assert!(
            accepted,
            "ldns-dane rejects the still-served old certificate"
        );
    }

    // The certificate is renewed under the announced key: both stay published.
    run.install_certificate("new");
    run.write_config(None);
    let warnings = run.apply(T0 + 2 * DAY);
    assert!(!warnings.contains("never announced"), "{warnings}");
    assert_eq!(run.served_ee(), sorted(vec![old.clone(), new.clone()]));
    if let Some(accepted) = run.ldns_dane_accepts("new") {
        assert!(
            accepted,
            "ldns-dane rejects the new certificate after the switch"
        );
    }
    let status = run.status();
    let rows = status["digests"].as_array().unwrap();
    let row = |d: &str| rows.iter().find(|r| r["digest"] == d).unwrap().clone();
    assert_eq!(row(&new)["role"], "current", "{status:#}");
    assert_eq!(row(&new)["inCertificate"], true, "{status:#}");
    assert_eq!(row(&old)["role"], "retiring", "{status:#}");
    assert_eq!(row(&old)["retireAt"], T0 + 4 * DAY, "{status:#}");
    assert_eq!(row(&old)["servedBy"].as_array().unwrap().len(), 1);

    // One second before retireAfter: still both.
    run.apply(T0 + 4 * DAY - 1);
    assert_eq!(run.served_ee(), sorted(vec![old.clone(), new.clone()]));

    // retireAfter has passed: only the new key.
    run.apply(T0 + 4 * DAY);
    assert_eq!(run.served_ee(), vec![new.clone()]);
    if let Some(accepted) = run.ldns_dane_accepts("new") {
        assert!(accepted, "ldns-dane rejects the new certificate");
    }
    if let Some(accepted) = run.ldns_dane_accepts("old") {
        assert!(!accepted, "ldns-dane still accepts the withdrawn key");
    }
    // The CA's `2 1 1` stayed throughout.
    let ca = run.served(SMTP);
    assert_eq!(ca.iter().filter(|(u, _)| *u == 2).count(), 1, "{ca:?}");
}

#[test]
fn unannounced_renewal_keeps_the_old_key_and_warns() {
    let Some(run) = Run::start() else { return };
    let old = run.pki.spki_sha256("old");
    let new = run.pki.spki_sha256("new");
    run.apply(T0);
    run.install_certificate("new");
    let warnings = run.apply(T0 + DAY);
    assert!(warnings.contains("never announced"), "{warnings}");
    assert_eq!(run.served_ee(), sorted(vec![old.clone(), new.clone()]));
    if let Some(accepted) = run.ldns_dane_accepts("new") {
        assert!(accepted);
    }
    run.apply(T0 + 3 * DAY);
    assert_eq!(run.served_ee(), vec![new]);
}

/// `mailzone serve` reads the certificate files every `--certificate-check-interval`: a
/// renewed file is published (old and new) by a TlsaSync task without a reload or a call.
#[test]
fn serve_publishes_a_renewed_certificate_by_itself() {
    let Some(run) = Run::start() else { return };
    let old = run.pki.spki_sha256("old");
    let new = run.pki.spki_sha256("new");
    // Withdrawn 3 s after the switch, by a TlsaSync task scheduled for then (the drift
    // check is an hour away).
    run.write_config_retiring_after(None, "3s");
    let service = Service::start_with(
        run.dir.path(),
        None,
        &["--certificate-check-interval", "200ms"],
    );
    let first = poll_until(Duration::from_secs(30), || {
        run.served_smtp_ee() == vec![old.clone()]
    });
    assert!(first, "the first publication: {}", service.output());
    run.install_certificate("new");
    let both = poll_until(Duration::from_secs(30), || {
        run.served_smtp_ee() == sorted(vec![old.clone(), new.clone()])
    });
    assert!(
        both,
        "the renewed certificate was not published: {}",
        service.output()
    );
    assert!(service.output().contains("TlsaSync tasks scheduled"));
    let withdrawn = poll_until(Duration::from_secs(30), || {
        run.served_smtp_ee() == vec![new.clone()]
    });
    assert!(
        withdrawn,
        "the old key was not withdrawn in time: {}",
        service.output()
    );
    assert_eq!(run.served_ee(), vec![new.clone()]);

    // A TlsaSync asked for through the API finds the zone in sync.
    let (status, task) = service.post(
        "/api/v1/tasks",
        &serde_json::json!({ "type": "TlsaSync", "domain": ZONE }),
    );
    assert_eq!(status, 202, "{task}");
    let task = service.wait_for_task(
        task["id"].as_str().unwrap(),
        "Succeeded",
        Duration::from_secs(30),
    );
    assert!(
        task["result"].as_str().unwrap().contains("in sync"),
        "{task:#}"
    );
}

/// RFC 7671 §8.1 asks that the old key's record stay served for a while after the new one
/// is: `retireAfter` is counted from the apply that published the new certificate's record,
/// not from a `plan` that only showed it coming.
#[test]
fn retire_after_counts_from_the_publishing_apply_not_an_earlier_plan() {
    let Some(run) = Run::start() else { return };
    let old = run.pki.spki_sha256("old");
    let new = run.pki.spki_sha256("new");
    run.apply(T0);
    run.install_certificate("new");

    // Previewed on day 1, published on day 5: retireAfter (2d) runs from day 5.
    let plan = run.plan(T0 + DAY);
    assert!(plan.contains(&new), "{plan}");
    assert_eq!(
        run.served_ee(),
        vec![old.clone()],
        "a plan publishes nothing"
    );
    run.apply(T0 + 5 * DAY);
    assert_eq!(run.served_ee(), sorted(vec![old.clone(), new.clone()]));
    let status = run.status();
    let rows = status["digests"].as_array().unwrap();
    let row = rows.iter().find(|r| r["digest"] == old.as_str()).unwrap();
    assert_eq!(row["retireAt"], T0 + 7 * DAY, "{status:#}");

    // A plan in between moves nothing either.
    run.plan(T0 + 6 * DAY);
    run.apply(T0 + 7 * DAY - 1);
    assert_eq!(run.served_ee(), sorted(vec![old.clone(), new.clone()]));
    run.apply(T0 + 7 * DAY);
    assert_eq!(run.served_ee(), vec![new]);
}

/// Reads never move a clock or a stage: after the first `records` (which creates the
/// missing automatic DKIM keys, the one write a read may make), `records`, `plan`, `check`,
/// `tlsa status` and `dkim list` leave the state database byte for byte as it was — also
/// with a renewed certificate whose rollover the next apply will start, and with a pending
/// DKIM key that only the publishing apply activates.
#[test]
fn reads_leave_the_state_database_unchanged() {
    let Some(run) = Run::start() else { return };
    run.write_config_publishing(None, "2d", r#""mx", "tlsa", "dkim""#);
    let first = run.ok(&["records"]);
    let before = run.state_snapshot();
    let stages = "SELECT stage FROM dkim_keys ORDER BY selector";
    assert_eq!(
        run.sql(stages),
        "Pending\nPending\n",
        "one key per algorithm"
    );
    let tlsa = "SELECT count(*) FROM tlsa_state";
    assert_eq!(run.sql(tlsa), "0\n", "nothing is published yet");

    let nameserver = run.knot.addr.to_string();
    let reads: [&[&str]; 5] = [
        &["records"],
        &["records", "--format", "json"],
        &["plan", "--quiet"],
        &["plan", "--quiet", "--types", "mx"],
        &["dkim", "list"],
    ];
    let check = ["check", "--no-fetch", "--nameserver", nameserver.as_str()];
    let read_all = |label: &str| {
        for args in reads {
            run.ok(args);
            assert!(
                run.state_snapshot() == before,
                "{label}: `mailzone {args:?}` wrote"
            );
        }
        // `check` and `tlsa status` find the records unpublished (exit 1): they must still
        // write nothing.
        for args in [&check[..], &["tlsa", "status"]] {
            let out = run.mailzone(args);
            assert!(out.status.code() == Some(1), "{args:?}: {out:?}");
            assert!(
                run.state_snapshot() == before,
                "{label}: `mailzone {args:?}` wrote"
            );
        }
    };
    read_all("first certificate");
    assert_eq!(run.ok(&["records"]), first, "the same keys every time");

    // A renewed certificate: its rollover starts only when published.
    run.install_certificate("new");
    read_all("renewed certificate");

    // The apply publishes: the rollover state is saved and the pending keys become active.
    run.ok(&["apply", "--quiet"]);
    let published = run.state_snapshot();
    assert_ne!(published, before);
    assert_eq!(run.sql(stages), "Active\nActive\n");
    assert_eq!(
        run.sql(tlsa),
        "2\n",
        "the new leaf's 3 1 1 and the CA's 2 1 1"
    );
    // A plan of a zone in sync (read again: other types than the apply's) remembers nothing.
    for args in [
        &["plan", "--quiet", "--types", "mx"][..],
        &["plan", "--quiet"],
        &["records"],
    ] {
        run.ok(args);
        assert!(
            run.state_snapshot() == published,
            "after apply: `mailzone {args:?}` wrote"
        );
    }
}

/// The API's reads are reads too, and a publication that failed starts no clock: with a
/// renewed certificate that the service cannot publish (its DNS server is unreachable, its
/// tasks fail and retry), `GET /domains/{d}/records` shows the rollover coming, and neither
/// it, the check call nor the failed tasks save any rollover, DKIM or zone state.
#[test]
fn api_reads_and_failed_publications_leave_the_rollover_state_alone() {
    let Some(run) = Run::start() else { return };
    let old = run.pki.spki_sha256("old");
    let new = run.pki.spki_sha256("new");
    run.apply(T0);
    run.install_certificate("new");
    let config = run.dir.path().join("mailzone.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let dead = format!("port = {}", common::free_port());
    let text = text.replace(&format!("port = {}", run.knot.addr.port()), &dead);
    std::fs::write(&config, text).unwrap();
    let tables = || {
        [
            "SELECT * FROM tlsa_state ORDER BY usage, digest",
            "SELECT domain, selector, stage, next_transition FROM dkim_keys ORDER BY selector",
            "SELECT * FROM zone_state",
            "SELECT * FROM published_records ORDER BY 1, 2, 3, 4",
        ]
        .map(|q| run.sql(q))
        .concat()
    };
    let before = tables();
    assert!(before.contains(&old) && !before.contains(&new), "{before}");

    let service = Service::start(run.dir.path(), None);
    let tried = poll_until(Duration::from_secs(30), || {
        service
            .tasks()
            .iter()
            .any(|t| t["type"] == "DnsManagement" && t["attempts"].as_u64() >= Some(2))
    });
    assert!(
        tried,
        "the service's publication was not tried: {}",
        service.output()
    );
    let path = format!("/api/v1/domains/{ZONE}/records");
    let (status, records) = service.get(&path);
    assert_eq!(status, 200, "{records}");
    let shown = records.to_string();
    assert!(shown.contains(&new) && shown.contains(&old), "{records:#}");
    assert_eq!(service.get(&path), (status, records));
    let (status, check) = service.post(
        &format!("/api/v1/domains/{ZONE}/check"),
        &serde_json::json!({ "nameservers": [run.knot.addr.to_string()], "fetchMtaSts": false }),
    );
    assert_eq!(status, 200, "{check}");
    assert_eq!(tables(), before, "{}", service.output());
    assert_eq!(run.served_smtp_ee(), vec![old], "nothing was published");
}
