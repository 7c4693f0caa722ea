//! `mailzone dkim rotate` against a real Knot with a clock the test sets (`--at`): at every
//! step the active key's selector is served (asserted with kdig), a new key becomes active
//! only after its record is served, and a failed publication leaves the old key active.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Run;
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};
use serde_json::Value;

const ZONE: &str = "rotate.test";
const DAY: i64 = 86_400;
/// 2026-11-02, a fixed start for the test's clock.
const T0: i64 = 1_793_577_600;

fn config(server: &DnsServer, algorithms: &str, on_key_change: &str) -> String {
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyFile = "tsig.key"
pollingInterval = "100ms"

[domain."{ZONE}"]
dkimManagement = {{ automatic = {{ algorithms = [{algorithms}], rotateAfter = "90d", retireAfter = "7d", deleteAfter = "30d"{on_key_change} }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["dkim", "mx"] }} }}
"#,
        port = server.addr.port(),
        key = server.key.name,
    )
}

impl Run {
    fn key_file(&self) -> PathBuf {
        self.dir.path().join("tsig.key")
    }
}

fn served(knot: &DnsServer, selector: &str) -> bool {
    !knot
        .query(&format!("{selector}._domainkey.{ZONE}"), "TXT")
        .is_empty()
}

/// The active selector is served, and a message signed with the exported active key
/// verifies with dkimpy against the record DNS serves.
fn assert_active_served(run: &Run, knot: &DnsServer) -> String {
    let stages = run.stages();
    let active: Vec<&(String, String)> = stages.iter().filter(|(_, s)| s == "Active").collect();
    assert_eq!(active.len(), 1, "{stages:?}");
    let selector = active[0].0.clone();
    assert!(
        served(knot, &selector),
        "the active key {selector} is not in DNS: {stages:?}"
    );
    if let Some(python) = common::dkimpy_python() {
        let out_dir = run.dir.path().join("export");
        let _ = std::fs::remove_dir_all(&out_dir);
        run.ok(&[
            "dkim",
            "export",
            "--format",
            "pem",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        let txt = knot
            .query(&format!("{selector}._domainkey.{ZONE}"), "TXT")
            .join(" ");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/xcheck/dkim_verify.py");
        let out = Command::new(python)
            .arg(script)
            .arg("--private-key")
            .arg(out_dir.join(ZONE).join(format!("{selector}.pem")))
            .args(["--selector", &selector, "--domain", ZONE, "--txt", &txt])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dkimpy: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    selector
}

fn start() -> Option<(DnsServer, Run)> {
    start_with(r#""ed25519-sha256""#, "")
}

/// Knot and a config whose automatic DKIM settings end with `on_key_change` (e.g.
/// `, onKeyChange = [...]`).
fn start_with(algorithms: &str, on_key_change: &str) -> Option<(DnsServer, Run)> {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
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
    std::fs::write(
        dir.path().join("mailzone.toml"),
        config(&knot, algorithms, on_key_change),
    )
    .unwrap();
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    Some((knot, Run { dir }))
}

#[test]
fn a_key_goes_through_every_stage_and_the_active_one_is_always_served() {
    let Some((knot, run)) = start() else { return };
    run.ok(&["apply", "--quiet"]);
    let first = assert_active_served(&run, &knot);

    // Not due yet: nothing moves.
    let r = run.rotate(T0 + DAY, false);
    assert_eq!(r[0]["generated"], serde_json::json!([]), "{r}");
    assert_eq!(assert_active_served(&run, &knot), first);

    // Forced: the new key is published and confirmed served before it becomes active.
    let r = run.rotate(T0 + 2 * DAY, true);
    let second = r[0]["activated"][0].as_str().unwrap().to_string();
    assert_eq!(r[0]["generated"][0], second.as_str(), "{r}");
    assert_eq!(r[0]["retiring"][0], first.as_str(), "{r}");
    assert_eq!(assert_active_served(&run, &knot), second);
    assert!(served(&knot, &first), "the retiring key stays published");
    let mut expected = vec![
        (first.clone(), "Retiring".to_string()),
        (second.clone(), "Active".to_string()),
    ];
    expected.sort();
    assert_eq!(run.stages(), expected);

    // retireAfter (7 days) later: withdrawn from DNS.
    let r = run.rotate(T0 + 10 * DAY, false);
    assert_eq!(r[0]["retired"][0], first.as_str(), "{r}");
    assert!(!served(&knot, &first), "the retired key was withdrawn");
    assert_eq!(assert_active_served(&run, &knot), second);

    // deleteAfter (30 days) later: deleted.
    let r = run.rotate(T0 + 41 * DAY, false);
    assert_eq!(r[0]["deleted"][0], first.as_str(), "{r}");
    assert_eq!(run.stages(), vec![(second.clone(), "Active".to_string())]);

    // rotateAfter (90 days after its creation): the next rotation comes by itself.
    let r = run.rotate(T0 + 2 * DAY + 91 * DAY, false);
    let third = r[0]["activated"][0].as_str().unwrap().to_string();
    assert_ne!(third, second);
    assert_eq!(assert_active_served(&run, &knot), third);
}

#[test]
fn a_failed_publication_keeps_the_old_key_active() {
    let Some((knot, run)) = start() else { return };
    run.ok(&["apply", "--quiet"]);
    let first = assert_active_served(&run, &knot);
    std::fs::write(run.key_file(), TsigKey::generate("mailzone").secret_base64).unwrap();
    let out = run.mailzone(&["dkim", "rotate", "--now"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TSIG"), "{stderr}");
    let stages = run.stages();
    assert!(
        stages.contains(&(first.clone(), "Active".to_string())),
        "{stages:?}"
    );
    assert!(stages.iter().any(|(_, s)| s == "Pending"), "{stages:?}");
    assert_eq!(assert_active_served(&run, &knot), first);

    // Key fixed: the next run publishes the pending key and only then activates it.
    std::fs::write(run.key_file(), &knot.key.secret_base64).unwrap();
    let r = run.rotate(mailzone_now(), false);
    assert_eq!(r[0]["retiring"][0], first.as_str(), "{r}");
    assert_ne!(assert_active_served(&run, &knot), first);
}

#[test]
fn a_generated_key_waits_until_served_then_the_rotation_activates_it() {
    let Some((knot, run)) = start() else { return };
    run.ok(&["apply", "--quiet"]);
    let first = assert_active_served(&run, &knot);
    let made: Value =
        serde_json::from_str(&run.ok(&["dkim", "generate", "--format", "json"])).unwrap();
    let new = made[0]["selector"].as_str().unwrap().to_string();
    assert_eq!(made[0]["stage"], "Pending", "{made}");
    assert_eq!(made[0]["dnsAutomatic"], true, "{made}");
    assert!(
        !served(&knot, &new),
        "generating publishes nothing by itself"
    );
    assert_eq!(assert_active_served(&run, &knot), first);

    // Not due by age, but a pending key is waiting: it is published, confirmed served,
    // and only then made active.
    let r = run.rotate(mailzone_now(), false);
    assert_eq!(r[0]["generated"], serde_json::json!([]), "{r}");
    assert_eq!(r[0]["activated"], serde_json::json!([new.as_str()]), "{r}");
    assert_eq!(r[0]["retiring"], serde_json::json!([first.as_str()]), "{r}");
    assert_eq!(assert_active_served(&run, &knot), new);
    assert!(served(&knot, &first), "the retiring key stays published");
}

/// The onKeyChange hook: a script that appends what it was told to a log beside the
/// config, and fails (stderr + exit 3) while a `fail` file exists there.
const HOOK: &str = r#"#!/bin/sh
dir=$(dirname "$MAILZONE_CONFIG")
echo "$MAILZONE_DKIM_DOMAIN $MAILZONE_DKIM_SELECTOR $MAILZONE_DKIM_ALGORITHM $MAILZONE_DKIM_STAGE [$MAILZONE_DKIM_REPLACES] $1" >> "$dir/hook.log"
if [ -e "$dir/fail" ]; then echo "reload of the MTA failed" >&2; exit 3; fi
"#;

#[test]
fn on_key_change_runs_after_activation_and_withdrawal_and_its_failure_is_reported() {
    let Some((knot, run)) = start_with(
        r#""ed25519-sha256""#,
        r#", onKeyChange = ["./hook.sh", "--from-mailzone"]"#,
    ) else {
        return;
    };
    let dir = run.dir.path();
    std::fs::write(dir.join("hook.sh"), HOOK).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.join("hook.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = || std::fs::read_to_string(dir.join("hook.log")).unwrap_or_default();

    // The first key is pending until the apply confirms it served; then the hook hears
    // of it (relative program path: beside the config; arguments passed as given).
    let out = run.ok(&["apply"]);
    let first = assert_active_served(&run, &knot);
    assert!(
        out.contains(&format!("DKIM key {first} served everywhere, now active")),
        "{out}"
    );
    assert_eq!(
        log(),
        format!("{ZONE} {first} ed25519-sha256 Active [] --from-mailzone\n")
    );

    // A rotation: the new key is announced with the key it replaces.
    let r = run.rotate(T0 + DAY, true);
    let second = r[0]["activated"][0].as_str().unwrap().to_string();
    assert!(r[0].get("onKeyChangeFailed").is_none(), "{r}");
    assert!(
        log().ends_with(&format!(
            "{ZONE} {second} ed25519-sha256 Active [{first}] --from-mailzone\n"
        )),
        "{}",
        log()
    );

    // The withdrawal of the retired key is announced once DNS no longer serves it.
    run.rotate(T0 + 9 * DAY, false);
    assert!(!served(&knot, &first));
    assert!(
        log().ends_with(&format!(
            "{ZONE} {first} ed25519-sha256 Retired [] --from-mailzone\n"
        )),
        "{}",
        log()
    );

    // A failing hook: the rotation is reported failed with the hook's reason, but the
    // new key stays active (it is served; undoing it would gain nothing).
    std::fs::write(dir.join("fail"), "").unwrap();
    let at = (T0 + 10 * DAY).to_string();
    let out = run.mailzone(&["dkim", "rotate", "--now", "--at", &at]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("onKeyChange") && stderr.contains("reload of the MTA failed"),
        "{stderr}"
    );
    assert!(stderr.contains("the key change stands"), "{stderr}");
    let third = assert_active_served(&run, &knot);
    assert_ne!(third, second);
    assert!(log().contains(&format!("{ZONE} {third} ed25519-sha256 Active [{second}]")));
    assert_eq!(log().lines().count(), 4, "{}", log());
}

/// A pending key whose record some earlier run already got onto the primary (here: put
/// there by hand) is found in sync by the next apply: it is promoted only after every
/// authoritative server is confirmed to serve the zone's serial, and the apply says so.
#[test]
fn apply_promotes_a_pending_key_already_in_sync() {
    let Some((knot, run)) = start() else { return };
    run.ok(&["apply", "--quiet"]);
    let first = assert_active_served(&run, &knot);
    let made: Value =
        serde_json::from_str(&run.ok(&["dkim", "generate", "--format", "json"])).unwrap();
    let new = made[0]["selector"].as_str().unwrap().to_string();
    let record = made[0]["record"].as_str().unwrap();
    knot.nsupdate(
        ZONE,
        &[&format!(
            "update add {new}._domainkey.{ZONE}. 3600 TXT \"{record}\""
        )],
    );
    assert!(served(&knot, &new));
    let report: Value =
        serde_json::from_str(&run.ok(&["apply", "--format", "json", "--types", "dkim"])).unwrap();
    assert_eq!(report["summary"]["add"], 0, "{report}");
    assert_eq!(
        report["dkimActivated"][0]["selector"],
        new.as_str(),
        "{report}"
    );
    assert_eq!(
        report["dkimActivated"][0]["retiring"],
        serde_json::json!([first.as_str()]),
        "{report}"
    );
    assert_eq!(assert_active_served(&run, &knot), new);
}

fn mailzone_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[allow(dead_code)]
fn unused(_: &Path) {}

/// Verifies with dkimpy a signed message (`message`) against the TXT value `txt`.
fn dkimpy_verifies(python: &Path, message: &Path, txt: &str) -> Result<(), String> {
    let script = "import sys, dkim\nmsg = open(sys.argv[1], 'rb').read()\ntxt = sys.argv[2].encode()\nok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: txt)\nprint('verified' if ok else 'NOT verified')\nsys.exit(0 if ok else 1)\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(message)
        .arg(txt)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The TXT value Knot serves for a selector, joined as a DNS client joins its strings
/// (kdig prints the strings quoted; dkimpy's verify takes the joined value).
fn served_txt(knot: &DnsServer, selector: &str) -> String {
    knot.query(&format!("{selector}._domainkey.{ZONE}"), "TXT")
        .join("")
        .split('"')
        .skip(1)
        .step_by(2)
        .collect()
}

/// `dkim export --format rspamd`: rspamd accepts the written dkim_signing.conf
/// (`rspamadm configtest`, and `configdump` shows every active selector with its key
/// file), and rspamd's own DKIM signer (`rspamadm mime sign`) signs with each key file a
/// message that dkimpy verifies against the record Knot serves — Ed25519 included, in
/// the raw form rspamd needs.
#[test]
fn rspamd_signs_with_the_exported_keys() {
    if !mailzone_testkit::require_tool("rspamadm") {
        return;
    }
    let Some((knot, run)) = start_with(r#""ed25519-sha256", "rsa-sha256""#, "") else {
        return;
    };
    run.ok(&["apply", "--quiet"]);
    let out_dir = run.dir.path().join("rspamd");
    run.ok(&[
        "dkim",
        "export",
        "--format",
        "rspamd",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let conf = out_dir.join("dkim_signing.conf");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&conf), 0o600);
    assert_eq!(mode(&out_dir.join(ZONE)), 0o700);
    let main = run.dir.path().join("rspamd-main.conf");
    std::fs::write(
        &main,
        format!("dkim_signing {{ .include \"{}\" }}\n", conf.display()),
    )
    .unwrap();
    let test = Command::new("rspamadm")
        .args(["configtest", "-c"])
        .arg(&main)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "rspamadm configtest: {}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    let dump = Command::new("rspamadm")
        .args(["configdump", "-j", "-c"])
        .arg(&main)
        .arg("dkim_signing")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dump.stdout);
    let json_start = text.find('{').expect("configdump printed JSON");
    let json_end = text.rfind('}').unwrap();
    let dumped: Value = serde_json::from_str(&text[json_start..=json_end]).unwrap();
    let selectors = dumped["domain"][ZONE]["selectors"].as_array().unwrap();
    assert_eq!(selectors.len(), 2, "{dumped}");

    let message = run.dir.path().join("message.eml");
    std::fs::write(
        &message,
        format!("From: test@{ZONE}\r\nTo: someone@example.net\r\nSubject: rspamd export\r\nDate: Fri, 27 Nov 2026 06:00:00 +0000\r\nMessage-ID: <rspamd@{ZONE}>\r\n\r\nSigned by rspamd with a key mailzone exported.\r\n"),
    )
    .unwrap();
    let mut algorithms = Vec::new();
    for entry in selectors {
        let selector = entry["selector"].as_str().unwrap();
        let path = Path::new(entry["path"].as_str().unwrap());
        assert!(path.is_absolute(), "{}", path.display());
        assert_eq!(mode(path), 0o600);
        assert!(served(&knot, selector), "{selector} is not served");
        let signed = Command::new("rspamadm")
            .args(["mime", "sign", "-d", ZONE, "-s", selector, "-k"])
            .arg(path)
            .args(["-o", "message"])
            .arg(&message)
            .output()
            .unwrap();
        let signed_text = String::from_utf8_lossy(&signed.stdout).to_string();
        assert!(
            signed.status.success() && signed_text.contains("DKIM-Signature:"),
            "rspamadm mime sign with {}: {signed_text}{}",
            path.display(),
            String::from_utf8_lossy(&signed.stderr)
        );
        let algorithm = if signed_text.contains("a=ed25519-sha256") {
            "ed25519"
        } else {
            "rsa"
        };
        algorithms.push(algorithm);
        if let Some(python) = common::dkimpy_python() {
            let signed_file = run.dir.path().join(format!("signed-{selector}.eml"));
            // rspamadm prints the message with LF line ends: back to the wire's CRLF.
            let crlf = signed_text.replace("\r\n", "\n").replace('\n', "\r\n");
            std::fs::write(&signed_file, crlf).unwrap();
            let txt = served_txt(&knot, selector);
            dkimpy_verifies(&python, &signed_file, &txt)
                .unwrap_or_else(|e| panic!("{selector} ({algorithm}): {e}"));
        }
    }
    algorithms.sort();
    assert_eq!(algorithms, ["ed25519", "rsa"]);
}

/// `dkim export --format opendkim`: `opendkim-testkey` (Debian's opendkim-tools), given the
/// exported KeyTable's entry, loads the RSA key file, queries Knot for the selector's
/// record and finds it matching the private key (it cannot check Ed25519 keys: that entry
/// is proved with dkimpy against the served record). opendkim resolves through libunbound; its
/// `ResolverConfiguration` names an unbound config whose stub zone sends the zone's
/// questions to Knot's loopback port (`local-zone: "test." nodefault`: unbound answers
/// the RFC 6761 `test.` names itself otherwise).
#[test]
fn opendkim_testkey_accepts_the_exported_rsa_key_against_knot() {
    if !mailzone_testkit::require_tool("opendkim-testkey") {
        return;
    }
    let Some((knot, run)) = start_with(r#""ed25519-sha256", "rsa-sha256""#, "") else {
        return;
    };
    run.ok(&["apply", "--quiet"]);
    let out_dir = run.dir.path().join("opendkim");
    run.ok(&[
        "dkim",
        "export",
        "--format",
        "opendkim",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let unbound = run.dir.path().join("unbound.conf");
    std::fs::write(
        &unbound,
        format!(
            "server:\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n  local-zone: \"test.\" nodefault\nstub-zone:\n  name: \"{ZONE}\"\n  stub-addr: {}@{}\n",
            knot.addr.ip(),
            knot.addr.port()
        ),
    )
    .unwrap();
    let conf = run.dir.path().join("opendkim.conf");
    std::fs::write(
        &conf,
        format!(
            "KeyTable file:{}\nResolverConfiguration {}\n",
            out_dir.join("KeyTable").display(),
            unbound.display()
        ),
    )
    .unwrap();
    let key_table = std::fs::read_to_string(out_dir.join("KeyTable")).unwrap();
    assert_eq!(key_table.lines().count(), 2, "{key_table}");
    let mut checked = 0;
    for line in key_table.lines() {
        // opendkim.conf(5) KeyTable: "<name> <domain>:<selector>:<key file>".
        let (_, value) = line.split_once(' ').unwrap();
        let parts: Vec<&str> = value.splitn(3, ':').collect();
        let (domain, selector, key_file) = (parts[0], parts[1], parts[2]);
        assert!(served(&knot, selector));
        let pem = std::fs::read_to_string(key_file).unwrap();
        let ed25519 = served_txt(&knot, selector).contains("k=ed25519");
        if ed25519 {
            // opendkim-testkey 2.11.0~beta2 compares keys as RSA only ("EVP_PKEY_get1_RSA()
            // failed: expecting an rsa key" for any Ed25519 key, whatever the record), so
            // the Ed25519 entry is proved with dkimpy instead: its key file signs a message
            // that verifies against the served record.
            if let Some(python) = common::dkimpy_python() {
                let script = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../scripts/xcheck/dkim_verify.py");
                let txt = served_txt(&knot, selector);
                let out = Command::new(python)
                    .arg(script)
                    .args(["--private-key", key_file, "--selector", selector])
                    .args(["--domain", domain, "--txt", &txt])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "dkimpy with {key_file}: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            assert!(pem.contains("BEGIN PRIVATE KEY"));
            continue;
        }
        let out = Command::new("opendkim-testkey")
            .args(["-vvv", "-x"])
            .arg(&conf)
            .args(["-d", domain, "-s", selector, "-k", key_file])
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Unsigned zone: "key not secure" (no DNSSEC here), "key OK" with it; a key that
        // does not match the record, or a missing record, says otherwise and exits 1.
        assert!(out.status.success(), "opendkim-testkey: {said}");
        assert!(
            said.contains("key not secure") || said.contains("key OK"),
            "opendkim-testkey: {said}"
        );
        checked += 1;
    }
    assert_eq!(checked, 1, "the RSA key was checked by opendkim-testkey");

    // And a key that does not match the served record is refused (the check has teeth).
    let other = run.dir.path().join("other.pem");
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&other)
        .output()
        .unwrap();
    if made.status.success() {
        let rsa_selector = key_table
            .lines()
            .find_map(|l| {
                let s = l.split(':').nth(1).unwrap();
                (!served_txt(&knot, s).contains("k=ed25519")).then(|| s.to_string())
            })
            .unwrap();
        let out = Command::new("opendkim-testkey")
            .args(["-vvv", "-x"])
            .arg(&conf)
            .args(["-d", ZONE, "-s", &rsa_selector, "-k"])
            .arg(&other)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
