//! `mailzone apply` killed with SIGKILL at each named step (`MAILZONE_CRASH_AT`) and at
//! random instants, against a real Knot, then run again: every time the zone converges
//! (`plan --detailed-exitcode` finds nothing to do), each record is served once, the
//! foreign records are there byte for byte, the state database passes SQLite's
//! `PRAGMA integrity_check` (asked through Python's sqlite3, not our code), and no DKIM key
//! is `Active` that the server does not serve.
//!
//! `MAILZONE_CRASH_ITERATIONS` sets the number of random kills (default 100) and
//! `MAILZONE_CRASH_SEED` replays a run (the seed is printed).

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{mailzone, mailzone_ok};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};
use serde_json::Value;

const ZONE: &str = "crash.test";

const FOREIGN: &str = "\
@ 3600 IN TXT \"google-site-verification=abc123\"
www 3600 IN A 192.0.2.80
google._domainkey 3600 IN TXT \"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC\"
@ 3600 IN CAA 0 issue \"digicert.com\"
";

/// Two variants of one config (`variant` 0 or 1), so that every apply has changes to make.
fn config(server: &DnsServer, variant: u32) -> String {
    let (priority, policy) = if variant == 0 {
        (10, "reject")
    } else {
        (20, "quarantine")
    };
    format!(
        r#"
[server]
hostname = "mail.crash.test"
ipv4 = ["192.0.2.10"]

[[server.mailExchangers]]
hostname = "mail.crash.test"
priority = {priority}

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
protocol = "tcp"
keyName = "{key_name}"
key = "{secret}"
propagationDelay = "0s"
pollingInterval = "50ms"
propagationTimeout = "5s"

[domain."crash.test"]
dmarc = {{ policy = "{policy}" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["mx", "spf", "dkim", "dmarc", "caa", "address"] }} }}
"#,
        port = server.addr.port(),
        key_name = server.key.name,
        secret = server.key.secret_base64,
    )
}

fn start_knot() -> DnsServer {
    let key = TsigKey::generate("mailzone");
    DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(ZONE, FOREIGN)],
        &key,
        &ServerOptions::default(),
    )
    .unwrap()
}

fn write_config(dir: &Path, server: &DnsServer, variant: u32) {
    std::fs::write(dir.join("mailzone.toml"), config(server, variant)).unwrap();
}

/// The zone's records as Knot serves them, SOA aside.
fn zone_lines(server: &DnsServer) -> Vec<String> {
    let mut lines: Vec<String> = server
        .axfr(ZONE)
        .into_iter()
        .filter(|l| !l.contains(" SOA "))
        .collect();
    lines.sort();
    lines
}

/// `mailzone apply` with `MAILZONE_CRASH_AT=step`: it must die by SIGKILL.
fn apply_crashing_at(dir: &Path, args: &[&str], step: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(args)
        .arg("--config")
        .arg(dir.join("mailzone.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("MAILZONE_CRASH_AT", step)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{step}: expected a SIGKILL at the step, got {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everything that must hold after a crash and one more complete run.
fn assert_converged(dir: &Path, server: &DnsServer, foreign: &[String], context: &str) {
    let plan = mailzone(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{context}: not converged: {}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    let lines = zone_lines(server);
    for line in foreign {
        assert!(
            lines.contains(line),
            "{context}: foreign record lost: {line}"
        );
    }
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(unique, lines, "{context}: a record is served twice");

    let integrity = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(dir.join("state/mailzone.db"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&integrity.stdout).trim(),
        "ok",
        "{context}: {}",
        String::from_utf8_lossy(&integrity.stderr)
    );

    let keys: Vec<Value> =
        serde_json::from_str(&mailzone_ok(dir, &["dkim", "list", "--format", "json"])).unwrap();
    for key in keys.iter().filter(|k| k["stage"] == "Active") {
        let selector = key["selector"].as_str().unwrap();
        let served = server.query(&format!("{selector}._domainkey.{ZONE}"), "TXT");
        assert!(
            served.iter().any(|t| t.contains("v=DKIM1")),
            "{context}: DKIM key {selector} is Active but not served"
        );
    }
}

#[test]
fn a_kill_at_each_named_step_converges_on_the_next_run() {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return;
    }
    for step in [
        "ledger-intent",
        "update-sent",
        "propagation",
        "dkim-promotion",
    ] {
        let server = start_knot();
        let foreign = zone_lines(&server);
        let tmp = tempfile::tempdir().unwrap();
        write_config(tmp.path(), &server, 0);
        apply_crashing_at(tmp.path(), &["apply"], step);
        mailzone_ok(tmp.path(), &["apply"]);
        assert_converged(tmp.path(), &server, &foreign, step);
    }

    // A rotation killed between retiring the old key and activating the new one.
    let server = start_knot();
    let foreign = zone_lines(&server);
    let tmp = tempfile::tempdir().unwrap();
    write_config(tmp.path(), &server, 0);
    mailzone_ok(tmp.path(), &["apply"]);
    apply_crashing_at(tmp.path(), &["dkim", "rotate", "--now"], "dkim-promotion");
    mailzone_ok(tmp.path(), &["apply"]);
    assert_converged(tmp.path(), &server, &foreign, "rotation");
    let stages = common::dkim_stages(tmp.path());
    assert!(
        stages.iter().filter(|(_, s)| s == "Active").count() == 1
            && stages.iter().any(|(_, s)| s == "Retiring"),
        "the new key active, the old one retiring: {stages:?}"
    );
}

/// A small xorshift generator: the test needs reproducible, not strong, randomness.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[test]
fn kills_at_random_instants_lose_nothing() {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return;
    }
    let iterations: u32 = std::env::var("MAILZONE_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("MAILZONE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("MAILZONE_CRASH_SEED={seed}");
    let mut random = Random(seed);
    let server = start_knot();
    let foreign = zone_lines(&server);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // How long a complete apply takes: kills land anywhere in it, and a little after.
    write_config(dir, &server, 1);
    let started = Instant::now();
    mailzone_ok(dir, &["apply"]);
    let span = started.elapsed().as_micros() as u64 * 12 / 10;

    let (mut killed, mut finished) = (0, 0);
    for i in 0..iterations {
        write_config(dir, &server, i % 2);
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(["apply", "--config"])
            .arg(dir.join("mailzone.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_micros(random.below(span));
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            finished += 1;
        } else {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        mailzone_ok(dir, &["apply"]);
        assert_converged(
            dir,
            &server,
            &foreign,
            &format!("kill {i} after {delay:?} (seed {seed})"),
        );
    }
    eprintln!(
        "{iterations} runs: {killed} killed mid-run, {finished} finished before the kill; every one converged"
    );
    assert!(killed * 2 >= iterations, "most kills must land mid-run");
}
