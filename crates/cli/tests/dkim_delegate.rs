//! Delegated DKIM (`dkimManagement.automatic.delegateTo`) against one real Knot
//! serving the customer's zone and the provider's zone: the customer zone holds the stable
//! slot CNAMEs, the keys are published and rotated in the provider zone only (the customer
//! zone's serial does not move), a message signed with the active key verifies with dkimpy
//! through the CNAME, and `mailzone check` follows the CNAME.

mod common;

use std::path::Path;
use std::process::Command;

use common::Run;
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};
use serde_json::Value;

const CUSTOMER: &str = "customer.test";
const PROVIDER: &str = "dkim.provider.test";
const DAY: i64 = 86_400;
/// 2026-11-02, a fixed start for the test's clock.
const T0: i64 = 1_793_577_600;

/// The config: the customer domain, plus `extra` (more domains).
fn config(server: &DnsServer, extra: &str) -> String {
    format!(
        r#"
[server]
hostname = "mail.{CUSTOMER}"
ipv4 = ["192.0.2.10"]

[dnsServer.customer]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyFile = "tsig.key"
pollingInterval = "100ms"

[dnsServer.provider]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key}"
keyFile = "tsig.key"
pollingInterval = "100ms"

[domain."{CUSTOMER}"]
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"], retireAfter = "7d", deleteAfter = "30d", delegateTo = "{PROVIDER}", delegateDnsServer = "provider" }} }}
dnsManagement = {{ automatic = {{ dnsServer = "customer", publishRecords = ["dkim"] }} }}
{extra}
"#,
        port = server.addr.port(),
        key = server.key.name,
    )
}

impl Run {
    fn active(&self) -> String {
        let stages = self.stages();
        let active: Vec<&(String, String)> = stages.iter().filter(|(_, s)| s == "Active").collect();
        assert_eq!(active.len(), 1, "{stages:?}");
        active[0].0.clone()
    }

    /// `mailzone check` of the customer domain against Knot, as JSON.
    fn check(&self, knot: &DnsServer) -> Value {
        let out = self.mailzone(&[
            "check",
            "--nameserver",
            &knot.addr.to_string(),
            "--no-fetch",
            "--format",
            "json",
        ]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "check output is not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

fn start() -> Option<(DnsServer, Run)> {
    start_with("")
}

fn start_with(extra: &str) -> Option<(DnsServer, Run)> {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return None;
    }
    let key = TsigKey::generate("mailzone");
    let knot = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(CUSTOMER, ""), ZoneSpec::new(PROVIDER, "")],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), config(&knot, extra)).unwrap();
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    Some((knot, Run { dir }))
}

fn slot_name(slot: &str) -> String {
    format!("{slot}._domainkey.{CUSTOMER}")
}

fn key_name(slot: &str) -> String {
    format!("{slot}.{CUSTOMER}.{PROVIDER}")
}

/// The TXT a resolver finds for `slot`: the CNAME served in the customer zone, followed to
/// the TXT served in the provider zone.
fn txt_through_cname(knot: &DnsServer, slot: &str) -> Vec<String> {
    let cname = knot.query(&slot_name(slot), "CNAME");
    assert_eq!(
        cname,
        vec![format!("{}.", key_name(slot))],
        "CNAME at {slot}"
    );
    knot.query(cname[0].trim_end_matches('.'), "TXT")
}

/// The active key is served through its CNAME, and a message signed with the exported
/// active key verifies with dkimpy against the TXT found by following the CNAME.
fn assert_active_served(run: &Run, knot: &DnsServer) -> String {
    let selector = run.active();
    let txt = txt_through_cname(knot, &selector);
    assert_eq!(txt.len(), 1, "{selector}: {txt:?}");
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
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/xcheck/dkim_verify.py");
        let out = Command::new(python)
            .arg(script)
            .arg("--private-key")
            .arg(out_dir.join(CUSTOMER).join(format!("{selector}.pem")))
            .args([
                "--selector",
                &selector,
                "--domain",
                CUSTOMER,
                "--txt",
                &txt[0],
            ])
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

/// (code, name) of the DKIM checks' findings and of every finding about a DKIM record
/// (`record-missing`, … from the desired-vs-served comparison).
fn dkim_findings(report: &Value) -> Vec<(String, String)> {
    report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["code"].as_str().is_some_and(|c| c.starts_with("dkim-")) || f["recordType"] == "dkim"
        })
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn keys_live_in_the_provider_zone_and_rotation_leaves_the_customer_zone_alone() {
    let Some((knot, run)) = start() else { return };
    run.ok(&["apply", "--quiet"]);

    // Both slot CNAMEs in the customer zone; the first key in slot e1 of the provider zone.
    for slot in ["e1", "e2"] {
        assert_eq!(
            knot.query(&slot_name(slot), "CNAME"),
            vec![format!("{}.", key_name(slot))]
        );
    }
    let first = assert_active_served(&run, &knot);
    assert_eq!(first, "e1");
    assert!(knot.query(&key_name("e2"), "TXT").is_empty());
    assert!(
        knot.query(&slot_name("e1"), "TXT")
            .iter()
            .all(|r| !r.starts_with("\"v=DKIM1")),
        "no key TXT in the customer zone itself"
    );
    let check = run.check(&knot);
    assert_eq!(dkim_findings(&check), vec![], "{check:#}");

    // A forced rotation: the new key takes the free slot, in the provider zone only.
    let customer_serial = knot.serial(CUSTOMER);
    let provider_serial = knot.serial(PROVIDER);
    let r = run.rotate(T0 + DAY, true);
    assert_eq!(r[0]["generated"], serde_json::json!(["e2"]), "{r}");
    assert_eq!(r[0]["activated"], serde_json::json!(["e2"]), "{r}");
    assert_eq!(r[0]["retiring"], serde_json::json!(["e1"]), "{r}");
    assert_eq!(assert_active_served(&run, &knot), "e2");
    assert_eq!(
        txt_through_cname(&knot, "e1").len(),
        1,
        "the retiring key stays"
    );
    assert_eq!(
        knot.serial(CUSTOMER),
        customer_serial,
        "customer zone untouched"
    );
    assert!(knot.serial(PROVIDER) > provider_serial);

    // Both slots hold published keys: a forced rotation must wait for the retiring one.
    let r = run.rotate(T0 + 2 * DAY, true);
    assert_eq!(r[0]["generated"], serde_json::json!([]), "{r}");
    assert_eq!(run.active(), "e2");

    // retireAfter later: e1 is withdrawn. Not reused in the same run, even forced: a
    // verifier may still cache the old key there for a TTL.
    let r = run.rotate(T0 + 9 * DAY, true);
    assert_eq!(r[0]["retired"], serde_json::json!(["e1"]), "{r}");
    assert_eq!(r[0]["generated"], serde_json::json!([]), "{r}");
    assert_eq!(run.active(), "e2");
    // A day later, forced: the next key takes slot e1 back.
    assert!(
        knot.query(&key_name("e1"), "TXT").is_empty(),
        "e1 withdrawn"
    );
    let r = run.rotate(T0 + 10 * DAY, true);
    assert_eq!(r[0]["activated"], serde_json::json!(["e1"]), "{r}");
    assert_eq!(assert_active_served(&run, &knot), "e1");
    assert_eq!(
        knot.serial(CUSTOMER),
        customer_serial,
        "customer zone untouched"
    );
    let check = run.check(&knot);
    assert_eq!(dkim_findings(&check), vec![], "{check:#}");

    // Someone points the active slot elsewhere: the checker says so.
    knot.nsupdate(
        CUSTOMER,
        &[
            &format!("update delete {}. CNAME", slot_name("e1")),
            &format!(
                "update add {}. 300 CNAME e1.elsewhere.{PROVIDER}.",
                slot_name("e1")
            ),
        ],
    );
    let check = run.check(&knot);
    let findings = dkim_findings(&check);
    assert!(
        findings.contains(&(
            "dkim-delegation-cname".to_string(),
            format!("{}.", slot_name("e1"))
        )),
        "{findings:?}"
    );
    // The retiring slot's CNAME removed: reported too, with the key as missing.
    knot.nsupdate(
        CUSTOMER,
        &[&format!("update delete {}. CNAME", slot_name("e2"))],
    );
    let check = run.check(&knot);
    let findings = dkim_findings(&check);
    for code in ["dkim-delegation-cname", "dkim-missing"] {
        assert!(
            findings.contains(&(code.to_string(), format!("{}.", slot_name("e2")))),
            "{findings:?}"
        );
    }
    let finding = check["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "dkim-delegation-cname")
        .unwrap();
    assert_eq!(finding["severity"], "error");
    assert!(
        finding["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("CNAME {}.", key_name("e1"))),
        "{finding:#}"
    );
}

/// `dkim generate` names where a delegated key's record goes: the provider-zone name the
/// slot's CNAME points to.
#[test]
fn generate_names_the_provider_zone_owner() {
    let Some((_knot, run)) = start() else { return };
    run.ok(&["apply", "--quiet"]);
    let made: Value =
        serde_json::from_str(&run.ok(&["dkim", "generate", "--format", "json"])).unwrap();
    let slot = made[0]["selector"].as_str().unwrap();
    assert_eq!(made[0]["owner"], key_name(slot).as_str(), "{made}");
}

#[test]
fn a_run_for_one_customer_never_deletes_another_customers_keys() {
    // A second customer whose DNS is managed by hand (it holds the CNAMEs itself): its keys
    // are still published in the provider zone.
    let other = format!(
        r#"[domain."other.test"]
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"], delegateTo = "{PROVIDER}", delegateDnsServer = "provider" }} }}"#
    );
    let Some((knot, run)) = start_with(&other) else {
        return;
    };
    run.ok(&["apply", "--quiet"]);
    let other_key = format!("e1.other.test.{PROVIDER}");
    assert_eq!(knot.query(&other_key, "TXT").len(), 1);
    assert_eq!(knot.query(&key_name("e1"), "TXT").len(), 1);
    // What the customer publishes by hand: the CNAMEs; the key is only a comment there.
    let records = run.ok(&["records", "other.test", "--types", "dkim"]);
    assert!(
        records
            .lines()
            .any(|l| l.starts_with("e1._domainkey.other.test.")
                && l.ends_with(&format!("IN CNAME {other_key}."))),
        "{records}"
    );
    assert!(
        records
            .lines()
            .filter(|l| l.contains(&other_key) && l.contains(" TXT "))
            .all(|l| l.starts_with("; in another zone")),
        "{records}"
    );

    // A rotation of customer.test alone reconciles the provider zone for it only: the
    // other customer's key, also in mailzone's ledger there, stays.
    let at = (T0 + DAY).to_string();
    run.ok(&["dkim", "rotate", CUSTOMER, "--now", "--at", &at]);
    assert_eq!(txt_through_cname(&knot, "e2").len(), 1);
    assert_eq!(
        knot.query(&other_key, "TXT").len(),
        1,
        "other customer's key kept"
    );
    let at = (T0 + 9 * DAY).to_string();
    run.ok(&["apply", CUSTOMER, "--quiet"]);
    run.ok(&["dkim", "rotate", CUSTOMER, "--at", &at]);
    assert!(
        knot.query(&key_name("e1"), "TXT").is_empty(),
        "retired e1 withdrawn"
    );
    assert_eq!(
        knot.query(&other_key, "TXT").len(),
        1,
        "other customer's key kept"
    );
}

/// A hosting provider's zone holding the keys of more customers than one planning batch
/// (256 domains): the keys of every batch are gathered and published in one UPDATE of the
/// provider zone, every key is served, and the next run finds the zone in sync (the zone's
/// digest does not depend on how the customers fell into batches).
#[test]
fn a_provider_zone_gathers_the_keys_of_customers_from_every_batch() {
    const CUSTOMERS: usize = 300;
    let mut extra = String::new();
    for i in 0..CUSTOMERS {
        extra.push_str(&format!(
            "[domain.\"c{i:03}.test\"]\ndkimManagement = {{ automatic = {{ algorithms = [\"ed25519-sha256\"], delegateTo = \"{PROVIDER}\", delegateDnsServer = \"provider\" }} }}\n"
        ));
    }
    let Some((knot, run)) = start_with(&extra) else {
        return;
    };
    let zone_of = |report: &Value, zone: &str| -> Value {
        report["zones"]
            .as_array()
            .expect("zones")
            .iter()
            .find(|z| z["zone"] == zone)
            .unwrap_or_else(|| panic!("no outcome for {zone}: {report}"))
            .clone()
    };
    let first: Value = serde_json::from_str(&run.ok(&["apply", "--format", "json"])).unwrap();
    let provider = zone_of(&first, PROVIDER);
    assert_eq!(provider["updatesSent"], 1, "{provider}");
    let provider_outcomes = first["zones"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|z| z["zone"] == PROVIDER)
        .count();
    assert_eq!(provider_outcomes, 1, "one outcome for the provider zone");
    for i in [0, 1, 127, 255, 256, 257, CUSTOMERS - 1] {
        let owner = format!("e1.c{i:03}.test.{PROVIDER}");
        let txt = knot.query(&owner, "TXT");
        assert_eq!(txt.len(), 1, "{owner}: {txt:?}");
        assert!(txt[0].contains("p="), "{owner}: {txt:?}");
    }
    assert_eq!(txt_through_cname(&knot, "e1").len(), 1, "{CUSTOMER}'s key");

    let again: Value = serde_json::from_str(&run.ok(&["apply", "--format", "json"])).unwrap();
    let provider = zone_of(&again, PROVIDER);
    assert_eq!(provider["updatesSent"], 0, "{provider}");
    assert_eq!(again["summary"]["zonesChanged"], 0, "{}", again["summary"]);
}
