//! `mailzone plan` and `mailzone apply` end to end against a real Knot: the text and JSON
//! plans, `--detailed-exitcode`, `--types`, and one-line errors without secrets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const ZONE: &str = "example.test";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap()
}

/// The TSIG secret comes from the environment (`keyEnv`), never from the file.
fn config(server: &DnsServer) -> String {
    let ex = examples().display().to_string();
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[server.services]
imap = {{}}

[server.tls]
certificate = "{ex}/certs/mail.example.org.pem"

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyEnv = "MAILZONE_TEST_TSIG"
authoritativeServers = ["{addr}"]
pollingInterval = "100ms"
propagationTimeout = "5s"

[domain."{ZONE}"]
dkimManagement = {{ manual = {{ keys = [{{ selector = "202611e", privateKeyFile = "{ex}/keys/202611e.pem" }}] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary" }} }}

[domain."manual.example"]
"#,
        port = server.addr.port(),
        key = server.key.name,
        addr = server.addr,
    )
}

struct Run {
    dir: tempfile::TempDir,
    secret: String,
}

impl Run {
    fn new(server: &DnsServer, secret: &str) -> Run {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mailzone.toml"), config(server)).unwrap();
        Run {
            dir,
            secret: secret.to_string(),
        }
    }

    fn mailzone(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("mailzone.toml"))
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .env("MAILZONE_TEST_TSIG", &self.secret)
            .env_remove("MAILZONE_LOG")
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A Knot serving `names`, each zone holding only the kit's SOA, NS and glue.
fn knot_of_empty_zones(names: &[String]) -> DnsServer {
    let specs: Vec<ZoneSpec> = names.iter().map(|n| ZoneSpec::new(n, "")).collect();
    let key = TsigKey::generate("mailzone");
    DnsServer::start(ServerKind::Knot, &specs, &key, &ServerOptions::default()).unwrap()
}

fn start() -> Option<DnsServer> {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return None;
    }
    let key = TsigKey::generate("mailzone");
    let zone = ZoneSpec::new(ZONE, "@ 3600 IN TXT \"site-verification=xyz\"\n");
    Some(DnsServer::start(ServerKind::Knot, &[zone], &key, &ServerOptions::default()).unwrap())
}

#[test]
fn plan_apply_plan() {
    let Some(server) = start() else { return };
    let run = Run::new(&server, &server.key.secret_base64);

    let plan = run.mailzone(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "changes pending: {}",
        text(&plan.stderr)
    );
    let out = text(&plan.stdout);
    assert!(
        out.contains("zone example.test. (dnsServer primary"),
        "{out}"
    );
    assert!(out.contains("  + add     example.test. "), "{out}");
    assert!(
        out.contains("domain manual.example.: manual DNS management, skipped"),
        "{out}"
    );
    assert!(out.lines().last().unwrap().starts_with("Plan: "), "{out}");
    assert!(server.query(ZONE, "MX").is_empty(), "plan changes nothing");

    let only_mx = run.mailzone(&["apply", "--types", "mx", "--format", "json"]);
    assert!(only_mx.status.success(), "{}", text(&only_mx.stderr));
    let json: serde_json::Value = serde_json::from_slice(&only_mx.stdout).unwrap();
    assert_eq!(json["summary"]["add"], 1, "{json}");
    assert_eq!(json["zones"][0]["updatesSent"], 1);
    assert_eq!(json["zones"][0]["changes"][0]["recordType"], "mx");
    assert_eq!(server.query(ZONE, "MX"), vec!["10 mail.example.test."]);
    assert!(
        server.query("_dmarc.example.test", "TXT").is_empty(),
        "--types mx only"
    );

    let apply = run.mailzone(&["apply"]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    assert!(
        text(&apply.stdout).contains("Applied: "),
        "{}",
        text(&apply.stdout)
    );
    assert!(server.query("_dmarc.example.test", "TXT")[0].contains("v=DMARC1"));
    assert!(
        server
            .query(ZONE, "TXT")
            .iter()
            .any(|t| t.contains("site-verification=xyz"))
    );

    let again = run.mailzone(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    assert!(text(&again.stdout).contains("in sync"));
}

#[test]
fn wrong_key_is_one_clear_line_without_the_secret() {
    let Some(server) = start() else { return };
    let wrong = TsigKey::generate("mailzone").secret_base64;
    let run = Run::new(&server, &wrong);
    // Without a terminal, progress is plain lines on stderr; the error is the last one.
    let out = run.mailzone(&["apply"]);
    assert_eq!(out.status.code(), Some(1));
    let progress = text(&out.stderr);
    assert!(
        progress.contains("example.test: reading the zone"),
        "{progress}"
    );
    assert!(
        progress
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("error: "),
        "{progress}"
    );
    assert!(!progress.contains(&wrong), "the secret leaked: {progress}");
    // --quiet leaves the one error line.
    let out = run.mailzone(&["apply", "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("TSIG") && stderr.contains("example.test"),
        "{stderr}"
    );
    assert!(!stderr.contains(&wrong), "the secret leaked: {stderr}");
    assert!(out.stdout.is_empty());
    let plan = run.mailzone(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(1),
        "an error is 1 with --detailed-exitcode too"
    );
}

#[test]
fn missing_key_environment_variable() {
    let Some(server) = start() else { return };
    let run = Run::new(&server, "x");
    let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["plan", "--config"])
        .arg(run.dir.path().join("mailzone.toml"))
        .arg("--state-dir")
        .arg(run.dir.path().join("state"))
        .env_remove("MAILZONE_TEST_TSIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("dnsServer.primary.keyEnv") && stderr.contains("MAILZONE_TEST_TSIG"),
        "{stderr}"
    );
}

/// `summary.dnsMessages` counts every message once, whichever of the two threads sent it:
/// a publish of fresh zones is a transfer, an UPDATE and a SOA question each; a warm apply
/// one SOA question each, with no zone planned once the DKIM keys are settled
/// (`summary.zonesPlanned`).
#[test]
fn every_message_is_counted_and_a_warm_apply_plans_nothing() {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return;
    }
    // More zones than a batch of the run plans at once (256), on both threads.
    let names: Vec<String> = (0..300).map(|i| format!("z{i:03}.test")).collect();
    let server = knot_of_empty_zones(&names);
    let mut text = format!(
        r#"
[server]
hostname = "mail.example.net"
ipv4 = ["192.0.2.10"]

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyEnv = "MAILZONE_TEST_TSIG"
authoritativeServers = []
propagationDelay = "0s"
"#,
        port = server.addr.port(),
        key = server.key.name,
    );
    for name in &names {
        text.push_str(&format!(
            "\n[domain.\"{name}\"]\ndnsManagement = {{ automatic = {{ dnsServer = \"primary\" }} }}\n"
        ));
    }
    let run = Run::new(&server, &server.key.secret_base64);
    std::fs::write(run.dir.path().join("mailzone.toml"), text).unwrap();
    let summary = |args: &[&str]| {
        let out = run.mailzone(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let zones = names.len() as u64;
    let published = summary(&["apply", "--format", "json"]);
    let order: Vec<&str> = published["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zone"].as_str().unwrap())
        .collect();
    assert_eq!(order, names, "the zones are reported in plan order");
    let publish = &published["summary"];
    assert_eq!(publish["zonesChanged"], zones, "{publish}");
    assert_eq!(publish["dnsMessages"], 3 * zones, "{publish}");
    assert_eq!(publish["zonesPlanned"], zones, "{publish}");
    // The publish made each domain's DKIM keys and served them `Pending`, then made them
    // `Active`: the next run plans each zone once more with its keys settled, and
    // remembers the digest of those inputs.
    let settled = &summary(&["apply", "--format", "json"])["summary"];
    assert_eq!(settled["zonesInSync"], zones, "{settled}");
    assert_eq!(settled["dnsMessages"], zones, "{settled}");
    assert_eq!(settled["zonesPlanned"], zones, "{settled}");
    let warm = &summary(&["apply", "--format", "json"])["summary"];
    assert_eq!(warm["zonesInSync"], zones, "{warm}");
    assert_eq!(warm["dnsMessages"], zones, "{warm}");
    assert_eq!(warm["zonesPlanned"], 0, "{warm}");
    let plan = &summary(&["plan", "--format", "json"])["summary"];
    assert_eq!(plan["dnsMessages"], zones, "{plan}");
    assert_eq!(plan["zonesPlanned"], 0, "{plan}");
}

/// A big config's domains are parsed once: `apply` takes a snapshot of them into the state
/// directory (0600, without the DNS server's inline secret), later runs over the same text
/// take the domains from it and find what a parse finds; a plan writes none, and a
/// snapshot of another text or cut short is passed over.
#[test]
fn a_config_s_domains_are_taken_from_the_snapshot_of_the_same_text() {
    use std::os::unix::fs::PermissionsExt as _;

    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return;
    }
    // Big enough (over 32 kB) for the file to be read in chunks, of which a snapshot is taken.
    let names: Vec<String> = (0..200).map(|i| format!("s{i:03}.test")).collect();
    let server = knot_of_empty_zones(&names);
    let mut toml = format!(
        "[server]\nhostname = \"mail.example.net\"\nipv4 = [\"192.0.2.10\"]\n\n\
         [dnsServer.primary]\nkind = \"rfc2136\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         keyName = \"{name}\"\nkey = \"{secret}\"\nauthoritativeServers = []\npropagationDelay = \"0s\"\n",
        port = server.addr.port(),
        name = server.key.name,
        secret = server.key.secret_base64,
    );
    for name in &names {
        toml.push_str(&format!(
            "\n[domain.\"{name}\"]\ndmarc = {{ policy = \"reject\" }}\n\
             caa = {{ issuers = [\"letsencrypt.org\"] }}\n\
             dnsManagement = {{ automatic = {{ dnsServer = \"primary\", publishRecords = [\"mx\", \"spf\", \"dmarc\", \"caa\"] }} }}\n"
        ));
    }
    assert!(toml.len() > 32 * 1024, "{} bytes", toml.len());
    let run = Run::new(&server, "");
    let config = run.dir.path().join("mailzone.toml");
    std::fs::write(&config, &toml).unwrap();
    let snapshot = run.dir.path().join("state/config-snapshot.jsonl");
    // The summary of a run and whether it took the domains from the snapshot.
    let summary = |args: &[&str]| {
        let out = run.mailzone(&[args, &["--format", "json", "-vv"]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let taken = text(&out.stderr).contains("taken from config-snapshot.jsonl");
        (json["summary"].clone(), taken)
    };
    let zones = names.len() as u64;

    let (published, taken) = summary(&["apply"]);
    assert!(!taken);
    assert_eq!(published["zonesChanged"], zones, "{published}");
    let mode = std::fs::metadata(&snapshot).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let written = std::fs::read_to_string(&snapshot).unwrap();
    assert!(
        !written.contains(&server.key.secret_base64),
        "the TSIG secret was written"
    );
    assert!(written.contains("s199.test"));

    // The second run settles the DKIM keys the first one made (and plans every zone);
    // the third finds every zone's inputs digest the one remembered, as after a parse.
    let (settled, taken) = summary(&["apply"]);
    assert!(taken, "the second run took the domains from the snapshot");
    assert_eq!(settled["zonesInSync"], zones, "{settled}");
    let (warm, taken) = summary(&["apply"]);
    assert!(taken);
    assert_eq!(warm["zonesInSync"], zones, "{warm}");
    assert_eq!(warm["zonesPlanned"], 0, "{warm}");

    // A plan reads a snapshot but never writes one.
    std::fs::remove_file(&snapshot).unwrap();
    let (plan, taken) = summary(&["plan"]);
    assert!(!taken);
    assert_eq!(plan["zonesInSync"], zones, "{plan}");
    assert!(!snapshot.exists(), "a plan wrote the snapshot");
    summary(&["apply"]);
    assert!(snapshot.exists());

    // Another text: the snapshot is passed over and the change planned.
    let changed = toml.replacen("policy = \"reject\"", "policy = \"quarantine\"", 1);
    std::fs::write(&config, &changed).unwrap();
    let (plan, taken) = summary(&["plan"]);
    assert!(!taken);
    assert_eq!(plan["zonesChanged"], 1, "{plan}");

    // A snapshot cut short is passed over; the parse finds the same.
    std::fs::write(&config, &toml).unwrap();
    let whole = std::fs::read(&snapshot).unwrap();
    std::fs::write(&snapshot, &whole[..whole.len() - 200]).unwrap();
    let (plan, taken) = summary(&["plan"]);
    assert!(!taken);
    assert_eq!(plan["zonesInSync"], zones, "{plan}");
    std::fs::write(&snapshot, &whole).unwrap();
    let (plan, taken) = summary(&["plan"]);
    assert!(taken);
    assert_eq!(plan["zonesInSync"], zones, "{plan}");
}
