//! `mailzone dkim rotate` against a real Knot with a clock the test sets (`--at`): at every
//! step the active key's selector is served (asserted with kdig), a new key becomes active
//! only after its record is served, and a failed publication leaves the old key active.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};
use serde_json::Value;

const ZONE: &str = "rotate.test";
const DAY: i64 = 86_400;
/// 2026-11-02, a fixed start for the test's clock.
const T0: i64 = 1_793_577_600;

fn config(server: &DnsServer, on_key_change: &str) -> String {
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
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"], rotateAfter = "90d", retireAfter = "7d", deleteAfter = "30d"{on_key_change} }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["dkim", "mx"] }} }}
"#,
        port = server.addr.port(),
        key = server.key.name,
    )
}

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
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

    fn rotate(&self, at: i64, now: bool) -> Value {
        let at = at.to_string();
        let mut args = vec!["dkim", "rotate", "--format", "json", "--at", &at];
        if now {
            args.push("--now");
        }
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// (selector, stage) of every key, by selector.
    fn stages(&self) -> Vec<(String, String)> {
        let keys: Vec<Value> =
            serde_json::from_str(&self.ok(&["dkim", "list", "--format", "json"])).unwrap();
        let mut out: Vec<(String, String)> = keys
            .iter()
            .map(|k| {
                (
                    k["selector"].as_str().unwrap().to_string(),
                    k["stage"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

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
    if let Some(python) = python() {
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

/// The test venv's Python with dkimpy, or `None` (skip the dkimpy part) without one.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("MAILZONE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/python")
        });
    let usable = Command::new(&path)
        .args(["-c", "import dkim"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable && std::env::var("MAILZONE_REQUIRE_TOOLS").is_ok_and(|v| v.trim() == "1") {
        panic!("{} with dkimpy missing: run scripts/test", path.display());
    }
    usable.then_some(path)
}

fn start() -> Option<(DnsServer, Run)> {
    start_with("")
}

/// Knot and a config whose automatic DKIM settings end with `on_key_change` (e.g.
/// `, onKeyChange = [...]`).
fn start_with(on_key_change: &str) -> Option<(DnsServer, Run)> {
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
        config(&knot, on_key_change),
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
    let Some((knot, run)) = start_with(r#", onKeyChange = ["./hook.sh", "--from-mailzone"]"#)
    else {
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

fn mailzone_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[allow(dead_code)]
fn unused(_: &Path) {}
