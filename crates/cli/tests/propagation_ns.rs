//! Propagation on the zone's name servers, against a real Knot primary and a real BIND
//! secondary: with no `authoritativeServers`, `mailzone apply` finds the zone's NS through
//! the DNS server and waits for each of them; a new automatic DKIM key stays `Pending`
//! while one name server does not serve it, and becomes `Active` only once every one does.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const ZONE: &str = "ns-poll.test";

fn config(primary: &DnsServer) -> String {
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[dnsServer.primary]
kind = "rfc2136"
host = "{host}"
port = {port}
keyName = "{key_name}"
key = "{secret}"
timeout = "1s"
pollingInterval = "100ms"
propagationTimeout = "1s"

[domain."{ZONE}"]
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["dkim", "mx"] }} }}
"#,
        host = primary.addr.ip(),
        port = primary.addr.port(),
        key_name = primary.key.name,
        secret = primary.key.secret_base64,
    )
}

fn stage(dir: &Path) -> String {
    let stages = common::dkim_stages(dir);
    assert_eq!(stages.len(), 1, "{stages:?}");
    stages[0].1.clone()
}

#[test]
fn a_pending_dkim_key_is_promoted_only_once_every_name_server_serves_it() {
    if !mailzone_testkit::require_tools(&["knotd", "named", "kdig"]) {
        return;
    }
    // The zone's name servers share a port as they would share 53: ns1 (127.0.0.1, the
    // testkit's NS) is the BIND secondary, ns2 (127.0.0.2) the Knot primary mailzone
    // updates. The primary does not NOTIFY: the secondary is down during the first apply.
    let key = TsigKey::generate("mailzone");
    let port = common::free_port();
    let primary = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(
            ZONE,
            &format!("@ 3600 IN NS ns2.{ZONE}.\nns2 3600 IN A 127.0.0.2\n"),
        )],
        &key,
        &ServerOptions {
            port: Some(port),
            ip: Ipv4Addr::new(127, 0, 0, 2),
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let secondary = DnsServer::start_secondary_on(port, primary.addr, &[ZONE], &key).unwrap();
    let ns1 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config(&primary)).unwrap();

    secondary.stop();
    let out = common::mailzone(tmp.path(), &["apply"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ns1 does not answer: {stderr}");
    assert!(
        stderr.contains(&ns1.to_string()),
        "names the name server: {stderr}"
    );
    let selector = common::dkim_stages(tmp.path())[0].0.clone();
    let owner = format!("{selector}._domainkey.{ZONE}");
    assert!(
        !primary.query(&owner, "TXT").is_empty(),
        "the primary has it"
    );
    assert_eq!(stage(tmp.path()), "Pending", "not served everywhere yet");

    // Without its old copy, the secondary transfers the current version as it starts.
    // (BIND may not have written its copy yet: then there is nothing to remove.)
    match std::fs::remove_file(secondary.dir().join(format!("{ZONE}.zone"))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
        _ => {}
    }
    secondary.restart().unwrap();
    assert!(
        !secondary.query(&owner, "TXT").is_empty(),
        "the secondary caught up"
    );
    common::mailzone_ok(tmp.path(), &["apply"]);
    assert_eq!(stage(tmp.path()), "Active", "served by every name server");
}

/// A zone read whole by transfer names its own name servers: with both hosts' addresses
/// in the zone, the apply asks nobody for them (no NS, A or AAAA question). Both hosts are
/// the Knot primary mailzone updates, so nothing is left to poll and the count is exact.
#[test]
fn the_name_servers_are_taken_from_the_transferred_zone() {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return;
    }
    let key = TsigKey::generate("mailzone");
    // ns1 (the testkit's NS, 127.0.0.1) and ns2 are both the primary.
    let primary = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(
            ZONE,
            &format!("@ 3600 IN NS ns2.{ZONE}.\nns2 3600 IN A 127.0.0.1\n"),
        )],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let text = config(&primary).replace("[\"dkim\", \"mx\"]", "[\"mx\"]");
    std::fs::write(tmp.path().join("mailzone.toml"), text).unwrap();

    let out = common::mailzone_ok(tmp.path(), &["apply", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    // A transfer, the UPDATE and the SOA question after it. Asking for the name servers
    // would add five: NS, and A and AAAA of each host.
    assert_eq!(report["summary"]["dnsMessages"], 3, "{report}");
    assert!(
        !primary.query(ZONE, "MX").is_empty(),
        "the change is served"
    );
}
