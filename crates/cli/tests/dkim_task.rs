//! The `DkimRotation` task in `mailzone serve` against a real Knot: when the publication of
//! the new key fails (the DNS server is down), the task goes to `Retry` with the reason, the
//! old key stays the active one (asserted with `dkim list` and kdig), and once the server is
//! back the retry publishes the new key and only then activates it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Service;
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec, poll_until};
use serde_json::{Value, json};

const ZONE: &str = "rotation-task.test";

fn config(knot: &DnsServer) -> String {
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
timeout = "1s"
pollingInterval = "100ms"
propagationTimeout = "10s"

[domain."{ZONE}"]
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"], rotateAfter = "2s", retireAfter = "7d" }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["dkim", "mx"] }} }}
"#,
        port = knot.addr.port(),
        key = knot.key.name,
    )
}

fn active(dir: &Path) -> Option<String> {
    common::dkim_stages(dir)
        .into_iter()
        .find(|(_, stage)| stage == "Active")
        .map(|(selector, _)| selector)
}

fn served(knot: &DnsServer, selector: &str) -> bool {
    !knot
        .query(&format!("{selector}._domainkey.{ZONE}"), "TXT")
        .is_empty()
}

#[test]
fn a_failed_publication_keeps_the_old_key_active_and_the_task_retries() {
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
    std::fs::write(dir.path().join("mailzone.toml"), config(&knot)).unwrap();
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    let service = Service::start(dir.path(), None);

    // The first key is published by the start-up DnsManagement task, then active.
    let mut first = None;
    let ready = poll_until(Duration::from_secs(30), || {
        first = active(dir.path());
        first.as_deref().is_some_and(|s| served(&knot, s))
    });
    assert!(ready, "no active, served key: {}", service.output());
    let first = first.unwrap();

    // The key is due (rotateAfter 2 s); the DNS server is down when the rotation runs.
    std::thread::sleep(Duration::from_millis(2100));
    knot.stop();
    let (status, task) = service.post(
        "/api/v1/tasks",
        &json!({ "type": "DkimRotation", "domain": ZONE }),
    );
    assert_eq!(status, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    let retried = poll_until(Duration::from_secs(30), || {
        last = service.get(&format!("/api/v1/tasks/{id}")).1;
        last["status"] == "Retry"
    });
    assert!(retried, "{last:#}\n{}", service.output());
    let reason = last["failureReason"].as_str().unwrap_or_default();
    assert!(reason.contains(ZONE), "the reason names the zone: {last:#}");
    let now = common::dkim_stages(dir.path());
    assert_eq!(
        active(dir.path()).as_deref(),
        Some(first.as_str()),
        "{now:?}"
    );
    assert!(
        now.iter().any(|(_, stage)| stage == "Pending"),
        "the new key waits: {now:?}"
    );

    // The server is back: the retry publishes the new key, then activates it.
    knot.restart().unwrap();
    let done = service.wait_for_task(&id, "Succeeded", Duration::from_secs(60));
    let second = active(dir.path()).expect("an active key");
    assert_ne!(second, first, "{done:#}");
    assert!(served(&knot, &second), "the new active key is served");
    assert!(
        served(&knot, &first),
        "the old key is retiring, still published"
    );
    assert!(
        common::dkim_stages(dir.path()).contains(&(first.clone(), "Retiring".to_string())),
        "{:?}",
        common::dkim_stages(dir.path())
    );
}
