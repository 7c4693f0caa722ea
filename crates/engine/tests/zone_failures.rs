//! Runs whose zones fail, against a real Knot: a domain with delegated DKIM publishes into
//! its own zone and into the DKIM provider's zone, through two DNS servers. With the server
//! down both zones fail: the `DnsManagement` task goes to `Retry` (not `Failed`) with a
//! reason naming each zone and its DNS server, and once the server is back the retry
//! publishes both zones. A DNS server whose host does not resolve (a name under `.invalid`,
//! which RFC 6761 §6.4 guarantees never resolves) fails its zone transiently, naming the
//! host, while the other zone is published.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mailzone_engine::error::FailureClass;
use mailzone_engine::tasks::{DNS_MANAGEMENT, Ran, TaskPolicy, Worker};
use mailzone_engine::{
    EngineError, ReconcileRequest, RecordsRequest, Silent, clock, load_config, reconcile,
};
use mailzone_store::{NewTask, Store, TaskEnd};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const CUSTOMER: &str = "customer.test";
const PROVIDER: &str = "dkim.provider.test";

/// The customer domain (its own zone through `customer`, its DKIM keys in the provider
/// zone through `provider`); `provider_host` is where the provider's server is found.
fn config(knot: &DnsServer, provider_host: &str) -> String {
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
key = "{secret}"
timeout = "2s"
propagationDelay = "0s"
pollingInterval = "100ms"
propagationTimeout = "10s"

[dnsServer.provider]
kind = "rfc2136"
host = "{provider_host}"
port = {port}
keyName = "{key}"
key = "{secret}"
timeout = "2s"
propagationDelay = "0s"
pollingInterval = "100ms"
propagationTimeout = "10s"

[domain."{CUSTOMER}"]
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"], delegateTo = "{PROVIDER}", delegateDnsServer = "provider" }} }}
dnsManagement = {{ automatic = {{ dnsServer = "customer", publishRecords = ["dkim", "mx"] }} }}
"#,
        port = knot.addr.port(),
        key = knot.key.name,
        secret = knot.key.secret_base64,
    )
}

fn start_knot() -> Option<DnsServer> {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return None;
    }
    let key = TsigKey::generate("mailzone");
    let zones = [ZoneSpec::new(CUSTOMER, ""), ZoneSpec::new(PROVIDER, "")];
    Some(DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default()).unwrap())
}

/// The slot CNAME in the customer zone and the key TXT it points to in the provider zone.
fn dkim_served(knot: &DnsServer) -> (Vec<String>, Vec<String>) {
    (
        knot.query(&format!("e1._domainkey.{CUSTOMER}"), "CNAME"),
        knot.query(&format!("e1.{CUSTOMER}.{PROVIDER}"), "TXT"),
    )
}

/// A worker of the service over the config in `dir`, retrying at once.
async fn worker(dir: &Path) -> Worker {
    let path = dir.join("mailzone.toml");
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let loaded = load_config(&path).unwrap();
    Worker {
        store: Store::open_sqlite(&state_dir).await.unwrap(),
        config: Arc::new(RwLock::new(Arc::new(loaded))),
        state_dir,
        owner: "zone-failures-test".into(),
        config_path: path,
        policy: TaskPolicy {
            first_backoff: Duration::ZERO,
            ..TaskPolicy::default()
        },
    }
}

/// Claims the due task and runs it to its end.
async fn run_due(worker: &Worker) -> TaskEnd {
    let task = worker.claim().await.unwrap().expect("a due task");
    match worker.run(&task).await.unwrap() {
        Ran::Ended(end) => end,
        Ran::LeaseLost => panic!("lease lost"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn both_zones_down_is_retried_then_published() {
    let Some(knot) = start_knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), config(&knot, "127.0.0.1")).unwrap();
    let worker = worker(dir.path()).await;
    let now = clock::unix_now();
    let task = NewTask {
        kind: DNS_MANAGEMENT.into(),
        domain: CUSTOMER.into(),
        update_records: vec![],
        on_success_renew_certificate: false,
        due_at: now,
    };
    worker.store.create_task(&task, now).await.unwrap();

    // The server is down: both zones fail without an answer.
    knot.stop();
    let end = run_due(&worker).await;
    let TaskEnd::Retry { reason, .. } = &end else {
        panic!("a server that is down is worth a retry: {end:?}");
    };
    assert!(reason.starts_with("2 zones failed: "), "{reason}");
    for (zone, server) in [(CUSTOMER, "customer"), (PROVIDER, "provider")] {
        assert!(
            reason.contains(&format!(
                "zone {zone}. (dnsServer {server}): connection refused by {}",
                knot.addr
            )),
            "names {zone} and {server}: {reason}"
        );
    }
    assert!(reason.contains("(attempt 1 of 8; next in 0s)"), "{reason}");

    // The server is back: the retry publishes both zones.
    knot.restart().unwrap();
    let end = run_due(&worker).await;
    assert!(matches!(end, TaskEnd::Succeeded { .. }), "{end:?}");
    let (cname, txt) = dkim_served(&knot);
    assert_eq!(cname, [format!("e1.{CUSTOMER}.{PROVIDER}.")]);
    assert!(
        txt.first().is_some_and(|t| t.contains("k=ed25519")),
        "{txt:?}"
    );
    worker.store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unresolvable_dns_server_fails_its_zone_transiently() {
    let Some(knot) = start_knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailzone.toml");
    std::fs::write(&path, config(&knot, "nonexistent.invalid")).unwrap();
    let loaded = load_config(&path).unwrap();
    let request = ReconcileRequest {
        records: RecordsRequest {
            domains: vec![],
            types: vec![],
            state_dir: dir.path().join("state"),
            now_unix: clock::unix_now(),
            store: None,
        },
        apply: true,
        force: false,
        delete_limit: 0.3,
        after_read: None,
        on_zone: None,
        concurrency: 4,
        both_cores: false,
    };
    let err = reconcile(&loaded, &request, &Silent).await.unwrap_err();
    assert!(err.is_transient(), "a name may resolve later: {err}");
    assert_eq!(err.class(), FailureClass::Unreachable, "{err}");
    let EngineError::Zones(failures) = &err else {
        panic!("not the zones' failures: {err:?}");
    };
    assert_eq!(failures.len(), 1, "only the provider zone failed: {err}");
    assert_eq!(failures[0].zone.as_str(), PROVIDER);
    assert_eq!(failures[0].dns_server, "provider");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "zone {PROVIDER}. (dnsServer provider): {}: dnsServer.provider.host: cannot resolve nonexistent.invalid: ",
            path.display()
        )),
        "{message}"
    );

    // The customer's zone went on: its slot CNAME is served, the key waits for the
    // provider zone.
    let (cname, txt) = dkim_served(&knot);
    assert_eq!(cname, [format!("e1.{CUSTOMER}.{PROVIDER}.")]);
    assert!(txt.is_empty(), "{txt:?}");
}
