//! Publishing through a real PowerDNS (SQLite back end, HTTP API) with `kind = "powerdns"`:
//! one PATCH per changed zone, a no-op settled by the serial alone, foreign records at
//! shared names kept byte for byte (read back with kdig over DNS), an edit made between
//! the read and the write caught and re-planned, and failures (wrong key, unknown zone,
//! server down) that change nothing and say what is wrong. With `dnsAddress` the serials
//! come from SOA queries (the API is not asked for an unchanged zone). A 429 or 503 from a
//! proxy in front of the server (the kit's replay, forwarding everything else) is waited
//! out as its `Retry-After` says, or ends the run at once when the wait is too long.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailzone_engine::{AfterRead, EngineError, FailureClass, ReconcileReport};
mod common;

use mailzone_testkit::{
    POWERDNS_TOOLS, PowerDns, ProviderReplay, ReplayResponse, ZoneSpec, query_at,
};

const ZONE: &str = "pdns.test";
/// A foreign TXT at the apex, two strings: it must come back exactly so.
const FOREIGN_TXT: &str = "\"google-site-verification=abc\" \"second string\"";

fn start() -> Option<PowerDns> {
    if !mailzone_testkit::require_tools(POWERDNS_TOOLS) {
        return None;
    }
    let records = format!("@ 3600 IN TXT {FOREIGN_TXT}\nwww 3600 IN A 192.0.2.80\n");
    Some(PowerDns::start(&[ZoneSpec::new(ZONE, &records)]).expect("PowerDNS starts"))
}

fn config_text(server_table: &str, policy: &str) -> String {
    format!(
        r#"
[server]
hostname = "mail.pdns.test"
ipv4 = ["192.0.2.10"]

{server_table}

[domain."pdns.test"]
dmarc = {{ policy = "{policy}" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "pdns", publishRecords = ["mx", "spf", "dmarc", "caa", "address"] }} }}
"#
    )
}

fn table(server: &PowerDns) -> String {
    // No NS to poll without the DNS address: the tests never ask the system's resolvers.
    server.dns_server_table(
        "pdns",
        "propagationDelay = \"0s\"\nauthoritativeServers = []\n",
    )
}

/// The same with `dnsAddress`: serials read over DNS.
fn table_with_dns(server: &PowerDns) -> String {
    server.dns_server_table(
        "pdns",
        &format!(
            "propagationDelay = \"0s\"\ndnsAddress = \"{}\"\n",
            server.dns
        ),
    )
}

/// The API requests the server logged (it writes the line just after answering).
fn logged_methods(server: &PowerDns) -> Vec<String> {
    std::thread::sleep(Duration::from_millis(200));
    server
        .api_requests()
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.status))
        .collect()
}

async fn run(
    dir: &Path,
    text: &str,
    after_read: Option<AfterRead>,
) -> Result<ReconcileReport, EngineError> {
    common::apply(dir, text, after_read).await
}

fn dig(server: &PowerDns, name: &str, rtype: &str) -> Vec<String> {
    let mut rdata = query_at(server.dns, name, rtype).unwrap().rdata;
    rdata.sort();
    rdata
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_no_op_and_change_through_the_api() {
    let Some(server) = start() else { return };
    let tmp = tempfile::tempdir().unwrap();

    let report = run(tmp.path(), &config_text(&table(&server), "reject"), None)
        .await
        .unwrap();
    let zone = &report.zones[0];
    assert!(zone.applied, "{report:#?}");
    assert_eq!(zone.updates_sent, 1, "one PATCH for the whole zone");
    assert_eq!(dig(&server, ZONE, "MX"), vec!["10 mail.pdns.test."]);
    let apex_txt = dig(&server, ZONE, "TXT");
    assert!(apex_txt.contains(&FOREIGN_TXT.to_string()), "{apex_txt:?}");
    assert!(
        apex_txt.iter().any(|t| t.contains("v=spf1")),
        "{apex_txt:?}"
    );
    assert_eq!(dig(&server, "www.pdns.test", "A"), vec!["192.0.2.80"]);

    // Nothing changed: the serial alone settles it, one GET and no write.
    let report = run(tmp.path(), &config_text(&table(&server), "reject"), None)
        .await
        .unwrap();
    assert_eq!(report.zones[0].method, None, "{report:#?}");
    assert_eq!(report.zones[0].updates_sent, 0);
    assert_eq!(report.messages, 1, "one request: the serial");

    // One change: one PATCH; the foreign TXT is untouched.
    let report = run(
        tmp.path(),
        &config_text(&table(&server), "quarantine"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.zones[0].updates_sent, 1, "{report:#?}");
    assert!(dig(&server, "_dmarc.pdns.test", "TXT")[0].contains("p=quarantine"));
    assert!(dig(&server, ZONE, "TXT").contains(&FOREIGN_TXT.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_dns_address_an_unchanged_zone_costs_one_soa_query_and_no_api_request() {
    let Some(server) = start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text(&table_with_dns(&server), "reject");
    let report = run(tmp.path(), &text, None).await.unwrap();
    assert_eq!(report.zones[0].updates_sent, 1, "{report:#?}");
    assert_eq!(dig(&server, ZONE, "MX"), vec!["10 mail.pdns.test."]);
    // The read (GET) and the PATCH went through the API; the serials did not.
    assert_eq!(logged_methods(&server), ["GET 200", "PATCH 204"]);

    let report = run(tmp.path(), &text, None).await.unwrap();
    assert_eq!(report.zones[0].method, None, "{report:#?}");
    assert_eq!(report.messages, 1, "one SOA query");
    assert_eq!(
        logged_methods(&server).len(),
        2,
        "no API request for an unchanged zone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_between_read_and_write_is_caught_and_replanned() {
    let Some(server) = start() else { return };
    if !mailzone_testkit::require_tool("curl") {
        return;
    }
    // The second run (serials over DNS) has a change to make too: another DMARC policy.
    for (with_dns, policy) in [(false, "reject"), (true, "quarantine")] {
        let server_table = if with_dns {
            table_with_dns(&server)
        } else {
            table(&server)
        };
        edit_between_read_and_write(&server, &server_table, policy).await;
    }
}

async fn edit_between_read_and_write(server: &PowerDns, server_table: &str, policy: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let edited = Arc::new(AtomicBool::new(false));
    let (url, key) = (server.api_url.clone(), server.api_key.clone());
    let once = edited.clone();
    // Someone else adds a record through the API after mailzone read the zone.
    let hook: AfterRead = Arc::new(move |_zone| {
        if once.swap(true, Ordering::SeqCst) {
            return;
        }
        let body = format!(
            r#"{{"rrsets":[{{"name":"other.pdns.test.","type":"A","ttl":300,"changetype":"REPLACE","records":[{{"content":"192.0.2.{}","disabled":false}}]}}]}}"#,
            fresh_octet()
        );
        let status = std::process::Command::new("curl")
            .args(["-sf", "-X", "PATCH", "-H"])
            .arg(format!("X-API-Key: {key}"))
            .args(["-d", &body])
            .arg(format!("{url}/api/v1/servers/localhost/zones/pdns.test."))
            .status()
            .unwrap();
        assert!(status.success());
    });
    let report = run(tmp.path(), &config_text(server_table, policy), Some(hook))
        .await
        .unwrap();
    assert!(edited.load(Ordering::SeqCst));
    assert_eq!(report.zones[0].replans, 1, "{server_table}: {report:#?}");
    assert_eq!(dig(server, "other.pdns.test", "A").len(), 1);
    assert_eq!(dig(server, ZONE, "MX"), vec!["10 mail.pdns.test."]);
}

/// A different last octet at each call, so that each edit really changes the zone.
fn fresh_octet() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(90);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A replay in front of `server`'s API: `refuse` answers a PATCH itself (its try number,
/// from 0) or lets it through; every other request is forwarded.
fn proxy_refusing_patches(
    server: &PowerDns,
    refuse: impl Fn(usize) -> Option<ReplayResponse> + Send + 'static,
) -> ProviderReplay {
    let api: std::net::SocketAddr = server
        .api_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let patches = Mutex::new(0);
    ProviderReplay::start(move |request| {
        if request.method == "PATCH" {
            let mut tries = patches.lock().unwrap();
            let this = *tries;
            *tries += 1;
            if let Some(refused) = refuse(this) {
                return refused;
            }
        }
        request.forward_to(api).unwrap_or_else(|e| {
            ReplayResponse::json(502, serde_json::json!({"error": e.to_string()}))
        })
    })
    .unwrap()
}

fn table_through(proxy: &ProviderReplay, server: &PowerDns) -> String {
    format!(
        "[dnsServer.pdns]\nkind = \"powerdns\"\nurl = \"{}\"\nkey = \"{}\"\npropagationDelay = \"0s\"\nauthoritativeServers = []\n",
        proxy.proxy_url, server.api_key
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_waited_out_as_retry_after_says_then_the_patch_sent_again() {
    let Some(server) = start() else { return };
    let proxy = proxy_refusing_patches(&server, |try_number| {
        (try_number == 0).then(|| {
            ReplayResponse::json(429, serde_json::json!({"error": "Too Many Requests"}))
                .with_header("Retry-After", "1")
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let report = run(
        tmp.path(),
        &config_text(&table_through(&proxy, &server), "reject"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.zones[0].updates_sent, 1, "{report:#?}");
    assert_eq!(dig(&server, ZONE, "MX"), vec!["10 mail.pdns.test."]);
    let patches: Vec<Instant> = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.at)
        .collect();
    assert_eq!(patches.len(), 2, "the refused PATCH, then the one applied");
    let waited = patches[1].duration_since(patches[0]);
    assert!(
        waited >= Duration::from_millis(950),
        "sent again after {waited:?}"
    );
    // PowerDNS itself saw one PATCH, and the serial compared before each try.
    let logged = logged_methods(&server);
    assert_eq!(
        logged.iter().filter(|m| m.starts_with("PATCH")).count(),
        1,
        "{logged:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_asking_for_a_long_wait_or_repeated_500s_end_the_run_transient() {
    let Some(server) = start() else { return };
    let tmp = tempfile::tempdir().unwrap();

    // Retry-After of ten minutes: not waited for within the run.
    let proxy = proxy_refusing_patches(&server, |_| {
        Some(
            ReplayResponse::json(503, serde_json::json!({"error": "maintenance"}))
                .with_header("Retry-After", "600"),
        )
    });
    let started = Instant::now();
    let e = run(
        tmp.path(),
        &config_text(&table_through(&proxy, &server), "reject"),
        None,
    )
    .await
    .unwrap_err();
    assert!(e.class().is_transient(), "{e}");
    assert!(e.to_string().contains("HTTP 503: maintenance"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let tries = |p: &ProviderReplay| p.requests().iter().filter(|r| r.method == "PATCH").count();
    assert_eq!(tries(&proxy), 1);
    drop(proxy);

    // 500 every time: tried four times (with backoff), then transient.
    let proxy = proxy_refusing_patches(&server, |_| {
        Some(ReplayResponse::json(
            500,
            serde_json::json!({"error": "Internal Server Error"}),
        ))
    });
    let e = run(
        tmp.path(),
        &config_text(&table_through(&proxy, &server), "reject"),
        None,
    )
    .await
    .unwrap_err();
    assert!(e.class().is_transient(), "{e}");
    assert_eq!(tries(&proxy), 4);
    assert!(dig(&server, ZONE, "MX").is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_change_nothing_and_say_why() {
    let Some(mut server) = start() else { return };
    let tmp = tempfile::tempdir().unwrap();

    // A wrong API key: permanent, named as an authentication failure, the key not shown.
    let wrong = format!(
        "[dnsServer.pdns]\nkind = \"powerdns\"\nurl = \"{}\"\nkey = \"not-the-key\"\n",
        server.api_url
    );
    let e = run(tmp.path(), &config_text(&wrong, "reject"), None)
        .await
        .unwrap_err();
    assert_eq!(e.class(), FailureClass::Auth, "{e}");
    let text = e.to_string();
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(!text.contains("not-the-key"), "{text}");
    assert!(dig(&server, ZONE, "MX").is_empty());

    // A zone PowerDNS does not have: permanent, the zone named.
    let other = config_text(&table(&server), "reject").replace("pdns.test\"]", "other.test\"]");
    let other = other.replace(
        "hostname = \"mail.pdns.test\"",
        "hostname = \"mail.other.test\"",
    );
    let e = run(tmp.path(), &other, None).await.unwrap_err();
    assert!(!e.class().is_transient(), "{e}");
    assert!(e.to_string().contains("HTTP 404"), "{e}");

    // The server down: transient, retried later; nothing half-written.
    let text = config_text(&table(&server), "reject");
    server.stop();
    let e = run(tmp.path(), &text, None).await.unwrap_err();
    assert_eq!(e.class(), FailureClass::Unreachable, "{e}");
}
