//! `mailzone apply` killed with SIGKILL at each named step (`MAILZONE_CRASH_AT`) and at
//! random instants, and `mailzone serve` killed at random instants while its
//! `DnsManagement` task publishes, against a real Knot, then run again: every time the zone
//! converges
//! (`plan --detailed-exitcode` finds nothing to do), each record is served once, the
//! foreign records are there byte for byte, the state database passes SQLite's
//! `PRAGMA integrity_check` (asked through Python's sqlite3, not our code), and no DKIM key
//! is `Active` that the server does not serve.
//!
//! `MAILZONE_CRASH_ITERATIONS` sets the number of kills of `apply` that land mid-run
//! (default 100), `MAILZONE_SERVE_CRASH_ITERATIONS` those of `serve` (default 20), and
//! `MAILZONE_CRASH_SEED` replays a run (the seed is printed).

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Service, mailzone, mailzone_ok};
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

{dns_server}

[domain."crash.test"]
dmarc = {{ policy = "{policy}" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["mx", "spf", "dkim", "dmarc", "caa", "address"] }} }}
"#,
        dns_server = server.dns_server_table(
            "primary",
            "propagationDelay = \"0s\"\npollingInterval = \"50ms\"\npropagationTimeout = \"5s\"\n",
        ),
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

/// The random generator of a run: seeded from `MAILZONE_CRASH_SEED`, else the clock (the
/// seed is printed so that a failure can be replayed).
fn seeded_random() -> (Random, u64) {
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
    (Random(seed), seed)
}

/// What a random-kill test starts from: the kills wanted, the generator of the instants,
/// a Knot with its foreign records, and a directory for the config and the state.
struct KillRun {
    iterations: u32,
    random: Random,
    seed: u64,
    server: DnsServer,
    foreign: Vec<String>,
    tmp: tempfile::TempDir,
}

/// A [`KillRun`] of `default` kills (or the number in `iterations_variable`); `None` when
/// Knot is missing (the test is skipped).
fn kill_run(iterations_variable: &str, default: u32) -> Option<KillRun> {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return None;
    }
    let (random, seed) = seeded_random();
    let server = start_knot();
    Some(KillRun {
        iterations: mailzone_testkit::env_number(iterations_variable, default),
        random,
        seed,
        foreign: zone_lines(&server),
        server,
        tmp: tempfile::tempdir().unwrap(),
    })
}

#[test]
fn kills_at_random_instants_lose_nothing() {
    let Some(KillRun {
        iterations,
        mut random,
        seed,
        server,
        foreign,
        tmp,
    }) = kill_run("MAILZONE_CRASH_ITERATIONS", 100)
    else {
        return;
    };
    let dir = tmp.path();

    // How long a complete apply that changes the zone takes (the slowest of three): the
    // kills land anywhere in such a run.
    let mut span = Duration::ZERO;
    for variant in [1, 0, 1] {
        write_config(dir, &server, variant);
        let started = Instant::now();
        mailzone_ok(dir, &["apply"]);
        span = span.max(started.elapsed());
    }
    let mut span = span.as_micros() as u64;

    // Until `iterations` kills have landed mid-run (a run that finished first counts apart).
    let (mut killed, mut finished, mut runs) = (0u32, 0u32, 0u32);
    while killed < iterations {
        assert!(
            runs < iterations * 4,
            "only {killed} of {runs} kills landed mid-run (seed {seed})"
        );
        write_config(dir, &server, runs % 2);
        runs += 1;
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
            // Runs got faster than the calibration (it may have met a busy machine that
            // has calmed down since): draw the next instants from a shorter span, so that
            // kills keep landing mid-run.
            span = (span * 3 / 4).max(1_000);
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
            &format!("run {runs}, killed after {delay:?} (seed {seed})"),
        );
    }
    eprintln!(
        "{runs} runs: {killed} killed mid-run, {finished} finished before the kill; every one converged"
    );
}

/// `mailzone serve` on `dir`, not waited for: the kills may land before it listens.
fn spawn_serve(dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .args([
            "--reconcile-interval",
            "1h",
            "--retry-backoff",
            "1s",
            "--lease",
            "3s",
        ])
        .arg("--config")
        .arg(dir.join("mailzone.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the service has no task scheduled or running and none failed.
fn settle(service: &Service, context: &str) {
    let settled = mailzone_testkit::poll_until(Duration::from_secs(60), || {
        service.tasks().iter().all(|t| t["status"] == "Succeeded")
    });
    assert!(
        settled,
        "{context}: tasks did not all succeed: {:#?}\n{}",
        service.tasks(),
        service.output()
    );
}

/// The service killed at random instants from its start, while its start-up
/// `DnsManagement` task reads, updates and waits for propagation. After each kill, either
/// `apply` or (every fifth time) a restarted service finishes the work; either way the
/// zone converges with nothing lost or doubled.
#[test]
fn serve_killed_at_random_instants_loses_nothing() {
    let Some(KillRun {
        iterations,
        mut random,
        seed,
        server,
        foreign,
        tmp,
    }) = kill_run("MAILZONE_SERVE_CRASH_ITERATIONS", 20)
    else {
        return;
    };
    let dir = tmp.path();

    // How long the service takes from its start until its first task has published (the
    // slowest of two, each changing the zone): the kills land anywhere in that span.
    let mut span = Duration::ZERO;
    let mut token = None;
    for variant in [0, 1] {
        write_config(dir, &server, variant);
        let started = Instant::now();
        let service = Service::start(dir, token.as_deref());
        settle(&service, "calibration");
        span = span.max(started.elapsed());
        token = Some(service.token.clone());
        service.terminate();
    }
    let token = token.unwrap();
    let span = span.as_micros() as u64;

    let (mut killed, mut runs) = (0u32, 0u32);
    while killed < iterations {
        assert!(
            runs < iterations * 4,
            "only {killed} of {runs} kills landed before the task ended (seed {seed})"
        );
        write_config(dir, &server, runs % 2);
        runs += 1;
        let mut child = spawn_serve(dir);
        let delay = Duration::from_micros(random.below(span));
        std::thread::sleep(delay);
        // The service never exits by itself: every kill counts, but one that lands after
        // the task published does not test much, so the zone must differ from the wanted
        // state for it to count as mid-run.
        child.kill().unwrap();
        child.wait().unwrap();
        let plan = mailzone(dir, &["plan", "--detailed-exitcode"]);
        if plan.status.code() == Some(2) {
            killed += 1;
        }
        let context = format!("run {runs}, killed after {delay:?} (seed {seed})");
        if runs % 5 == 0 {
            let service = Service::start(dir, Some(&token));
            settle(&service, &context);
            service.terminate();
        } else {
            mailzone_ok(dir, &["apply"]);
        }
        assert_converged(dir, &server, &foreign, &context);
    }
    eprintln!(
        "{runs} kills of serve, {killed} of them before its task had published; every one converged"
    );
}
