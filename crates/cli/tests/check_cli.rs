//! `mailzone check` end to end: the zones are built from `mailzone records` output itself,
//! served by a real Knot, and checked through the binary with `--nameserver`: exit status,
//! text and JSON output, `--strict`, usage and config errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap()
}

fn config(domain: &str, ip: &str) -> String {
    let ex = examples().display().to_string();
    format!(
        r#"
[server]
hostname = "mail.{domain}"
ipv4 = ["{ip}"]

[[server.mailExchangers]]
hostname = "mail.{domain}"
priority = 10

[server.services]
imap = {{ cleartext = false }}
submission = {{}}

[domain."{domain}"]
dmarc = {{ policy = "reject" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [{{ selector = "202611e", privateKeyFile = "{ex}/keys/202611e.pem" }}] }} }}
"#
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Setup {
    dir: tempfile::TempDir,
    server: DnsServer,
}

impl Setup {
    fn mailzone(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(args)
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .env_remove("MAILZONE_CONFIG")
            .output()
            .unwrap()
    }

    fn config(&self, domain: &str) -> String {
        self.dir
            .path()
            .join(format!("{domain}.toml"))
            .display()
            .to_string()
    }

    fn nameserver(&self) -> String {
        self.server.addr.to_string()
    }
}

/// `good.test` served exactly as `mailzone records` prints it; `bad.test` the same without
/// its DMARC record and with its MX at another priority.
fn start() -> Option<Setup> {
    if !ServerKind::Knot.available() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut zones = vec![ZoneSpec::empty("test")];
    let mut reverse = String::new();
    for (domain, ip, last) in [
        ("good.test", "192.0.2.10", 10),
        ("bad.test", "192.0.2.11", 11),
    ] {
        let path = dir.path().join(format!("{domain}.toml"));
        std::fs::write(&path, config(domain, ip)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(["records", "--config"])
            .arg(&path)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut records = text(&out.stdout);
        if domain == "bad.test" {
            records = records
                .lines()
                .filter(|l| !l.starts_with("_dmarc.bad.test."))
                .map(|l| l.replace("IN MX    10 mail.bad.test.", "IN MX    20 mail.bad.test."))
                .map(|l| format!("{l}\n"))
                .collect();
            assert!(records.contains("IN MX    20"), "{records}");
        }
        zones.push(ZoneSpec::new(domain, &records));
        reverse.push_str(&format!("{last} 300 IN PTR mail.{domain}.\n"));
    }
    zones.push(ZoneSpec::new("2.0.192.in-addr.arpa", &reverse));
    let key = TsigKey::generate("mailzone-key");
    let server = DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default())
        .unwrap_or_else(|e| panic!("Knot does not start: {e}"));
    Some(Setup { dir, server })
}

#[test]
fn correct_zone_exits_0_and_broken_zone_exits_1_with_the_fix() {
    let Some(setup) = start() else { return };
    let ns = setup.nameserver();

    let good = setup.mailzone(&[
        "check",
        "--config",
        &setup.config("good.test"),
        "--nameserver",
        &ns,
        "--no-fetch",
    ]);
    let stdout = text(&good.stdout);
    assert_eq!(
        good.status.code(),
        Some(0),
        "{stdout}{}",
        text(&good.stderr)
    );
    assert!(!stdout.contains("error "), "{stdout}");
    assert!(
        stdout.ends_with("1 domain checked: 0 errors, 0 warnings\n"),
        "{stdout}"
    );
    // --strict: still 0 (no warning; the unsigned-zone note is information).
    let strict = setup.mailzone(&[
        "check",
        "--config",
        &setup.config("good.test"),
        "--nameserver",
        &ns,
        "--no-fetch",
        "--strict",
    ]);
    assert_eq!(strict.status.code(), Some(0), "{}", text(&strict.stdout));

    let bad = setup.mailzone(&[
        "check",
        "--config",
        &setup.config("bad.test"),
        "--nameserver",
        &ns,
        "--no-fetch",
    ]);
    let stdout = text(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}{}", text(&bad.stderr));
    assert!(
        stdout.starts_with("bad.test  3 errors, "),
        "one summary line first: {stdout}"
    );
    assert!(
        stdout.contains("\nbad.test\n 3 errors:\n"),
        "grouped by severity: {stdout}"
    );
    assert!(
        stdout.contains(
            "  error   record-missing _dmarc.bad.test. (dmarc)\n          the dmarc record _dmarc.bad.test. TXT v=DMARC1; p=reject; rua=mailto:postmaster@bad.test is not served\n          seen      nothing\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "          fix       remove bad.test. 3600 IN MX 20 mail.bad.test.; publish bad.test. 3600 IN MX 10 mail.bad.test.\n"
        ),
        "{stdout}"
    );
    // Errors first.
    let first_info = stdout.find("  info ").unwrap_or(usize::MAX);
    let last_error = stdout.rfind("  error ").unwrap();
    assert!(last_error < first_info, "{stdout}");

    let json = setup.mailzone(&[
        "check",
        "--config",
        &setup.config("bad.test"),
        "--nameserver",
        &ns,
        "--no-fetch",
        "--format",
        "json",
    ]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["domains"][0]["domain"], "bad.test");
    let findings = v["domains"][0]["findings"].as_array().unwrap();
    let missing = findings
        .iter()
        .find(|f| f["code"] == "record-missing")
        .unwrap();
    assert_eq!(missing["severity"], "error");
    assert_eq!(missing["recordType"], "dmarc");
    assert_eq!(missing["name"], "_dmarc.bad.test.");
    assert_eq!(
        missing["fix"],
        "publish _dmarc.bad.test. 3600 IN TXT \"v=DMARC1; p=reject; rua=mailto:postmaster@bad.test\""
    );
    for key in ["message", "seen", "expected"] {
        assert!(missing[key].is_string(), "{key}: {missing}");
    }
    let errors = findings.iter().filter(|f| f["severity"] == "error").count();
    assert_eq!(v["summary"]["errors"], errors);
    assert!(errors >= 2, "{findings:#?}");
}

#[test]
fn usage_and_config_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(args)
            .env_remove("MAILZONE_CONFIG")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let bad_ns = run(&["check", "--nameserver", "ns1.example.org"]);
    assert_eq!(bad_ns.status.code(), Some(1));
    assert!(
        text(&bad_ns.stderr).contains("is not an IP address with an optional port"),
        "{}",
        text(&bad_ns.stderr)
    );
    let no_config = run(&[
        "check",
        "--config",
        "missing.toml",
        "--nameserver",
        "127.0.0.1",
    ]);
    assert_eq!(no_config.status.code(), Some(1));
    assert!(
        text(&no_config.stderr).starts_with("error: missing.toml: cannot read the config file")
    );
    let path = dir.path().join("m.toml");
    std::fs::write(&path, config("good.test", "192.0.2.10")).unwrap();
    let unknown = run(&[
        "check",
        "--config",
        path.to_str().unwrap(),
        "other.test",
        "--nameserver",
        "127.0.0.1",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("domain other.test is not in"),
        "{}",
        text(&unknown.stderr)
    );
}

/// `--watch`: the whole report once, then only what changed: deleting the MX records of
/// `bad.test` on the server shows up as appeared findings, and SIGTERM ends the watch with
/// the status of the last check.
#[test]
fn watch_prints_the_report_then_only_what_changed() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let Some(setup) = start() else { return };
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["check", "--watch", "--interval", "200ms", "--no-fetch"])
        .args(["--config", &setup.config("bad.test"), "--nameserver"])
        .arg(setup.nameserver())
        .arg("--state-dir")
        .arg(setup.dir.path().join("state"))
        .env_remove("MAILZONE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut seen = seen.lock().unwrap();
                seen.push_str(&line);
                seen.push('\n');
            }
        })
    };
    let wait_for = |needle: &str| {
        let found = mailzone_testkit::poll_until(Duration::from_secs(20), || {
            seen.lock().unwrap().contains(needle)
        });
        assert!(found, "waited for {needle:?}: {}", seen.lock().unwrap());
    };
    wait_for("1 domain checked: ");
    // Unchanged DNS: a few rounds print nothing more.
    std::thread::sleep(Duration::from_millis(700));
    let first_report = seen.lock().unwrap().clone();
    assert!(first_report.starts_with("bad.test  "), "{first_report}");
    assert!(!first_report.contains("appeared"), "{first_report}");

    setup
        .server
        .nsupdate("bad.test", &["update delete bad.test. MX"]);
    wait_for("went away; now");
    let output = seen.lock().unwrap().clone();
    let changes = &output[first_report.len()..];
    assert!(
        changes.contains("1 went away") || changes.contains("appeared"),
        "{changes}"
    );
    assert!(changes.contains("+ bad.test\n"), "{changes}");
    assert!(changes.contains("record-missing bad.test."), "{changes}");
    assert!(
        !changes.contains("domain checked"),
        "only the changes: {changes}"
    );

    // SIGTERM: the watch ends with the last check's status (errors: 1).
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(1), "{}", seen.lock().unwrap());
}
