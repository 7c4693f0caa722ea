//! Publishing through a real PowerDNS (SQLite back end, HTTP API) with `kind = "powerdns"`:
//! one PATCH per changed zone, a no-op settled by the serial alone, foreign records at
//! shared names kept byte for byte (read back with kdig over DNS), an edit made between
//! the read and the write caught and re-planned, and failures (wrong key, unknown zone,
//! server down) that change nothing and say what is wrong.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mailzone_engine::{AfterRead, EngineError, FailureClass, ReconcileReport};
mod common;

use mailzone_testkit::{POWERDNS_TOOLS, PowerDns, ZoneSpec, query_at};

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
    server.dns_server_table("pdns", "propagationDelay = \"0s\"\n")
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
async fn an_edit_between_read_and_write_is_caught_and_replanned() {
    let Some(server) = start() else { return };
    if !mailzone_testkit::require_tool("curl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let edited = Arc::new(AtomicBool::new(false));
    let (url, key) = (server.api_url.clone(), server.api_key.clone());
    let once = edited.clone();
    // Someone else adds a record through the API after mailzone read the zone.
    let hook: AfterRead = Arc::new(move |_zone| {
        if once.swap(true, Ordering::SeqCst) {
            return;
        }
        let body = r#"{"rrsets":[{"name":"other.pdns.test.","type":"A","ttl":300,"changetype":"REPLACE","records":[{"content":"192.0.2.99","disabled":false}]}]}"#;
        let status = std::process::Command::new("curl")
            .args(["-sf", "-X", "PATCH", "-H"])
            .arg(format!("X-API-Key: {key}"))
            .args(["-d", body])
            .arg(format!("{url}/api/v1/servers/localhost/zones/pdns.test."))
            .status()
            .unwrap();
        assert!(status.success());
    });
    let report = run(
        tmp.path(),
        &config_text(&table(&server), "reject"),
        Some(hook),
    )
    .await
    .unwrap();
    assert!(edited.load(Ordering::SeqCst));
    assert_eq!(report.zones[0].replans, 1, "{report:#?}");
    assert_eq!(dig(&server, "other.pdns.test", "A"), vec!["192.0.2.99"]);
    assert_eq!(dig(&server, ZONE, "MX"), vec!["10 mail.pdns.test."]);
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
