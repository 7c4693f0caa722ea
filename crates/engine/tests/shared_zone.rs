//! Two domains published into one zone (`crash.test` and `y.crash.test`, the second with
//! `origin = "crash.test"`), against a real Knot: a run scoped to one of them plans deletes
//! only for what that domain owns, never for the other's records.

use std::path::Path;

use mailzone_engine::ReconcileReport;
mod common;

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const ZONE: &str = "crash.test";

/// The two domains' config, with y.crash.test's CAA issuer and DMARC policy.
fn config_text(server: &DnsServer, sub_caa: &str, sub_policy: &str) -> String {
    format!(
        r#"
[server]
hostname = "mail.crash.test"
ipv4 = ["192.0.2.10"]

{dns_server}

[domain."crash.test"]
dmarc = {{ policy = "reject" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["mx", "spf", "dmarc", "caa", "address"] }} }}

[domain."y.crash.test"]
dmarc = {{ policy = "{sub_policy}" }}
caa = {{ issuers = ["{sub_caa}"] }}
dkimManagement = {{ manual = {{ keys = [] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", origin = "crash.test", publishRecords = ["mx", "spf", "dmarc", "caa"] }} }}
"#,
        dns_server = server.dns_server_table(
            "primary",
            "algorithm = \"hmac-sha256\"\npropagationDelay = \"0s\"\npollingInterval = \"100ms\"\npropagationTimeout = \"10s\"\n",
        ),
    )
}

async fn run(
    dir: &Path,
    text: &str,
    domains: &[&str],
) -> Result<ReconcileReport, mailzone_engine::EngineError> {
    let run = common::Run {
        domains,
        apply: true,
        after_read: None,
    };
    common::reconcile_text(dir, text, run).await
}

fn deletes(report: &ReconcileReport) -> Vec<String> {
    report
        .zones
        .iter()
        .flat_map(|z| z.changes.deletes.iter())
        .map(|(_, l)| format!("{} {}", l.record.name.as_str(), l.record.data.rtype()))
        .collect()
}

/// y.crash.test's CAA records, joined.
fn caa_issuers(server: &DnsServer) -> String {
    server.query("y.crash.test", "CAA").join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_run_leaves_the_other_domains_of_the_zone_alone() {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return;
    }
    let key = TsigKey::generate("mailzone");
    let server = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(ZONE, "")],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text(&server, "sectigo.com", "reject");

    // Both domains published by one unscoped run.
    run(tmp.path(), &text, &[]).await.unwrap();
    assert_eq!(
        server.query("y.crash.test", "MX"),
        vec!["10 mail.crash.test."]
    );
    assert!(caa_issuers(&server).contains("sectigo.com"));
    assert!(server.query("_dmarc.y.crash.test", "TXT")[0].contains("p=reject"));

    // A run for crash.test alone deletes nothing: y.crash.test's records are not its own.
    let report = run(tmp.path(), &text, &["crash.test"]).await.unwrap();
    assert_eq!(deletes(&report), Vec::<String>::new());
    assert!(caa_issuers(&server).contains("sectigo.com"));

    // The other way round: y.crash.test's run leaves crash.test's MX, SPF and address.
    let report = run(tmp.path(), &text, &["y.crash.test"]).await.unwrap();
    assert_eq!(deletes(&report), Vec::<String>::new());
    assert_eq!(server.query(ZONE, "MX"), vec!["10 mail.crash.test."]);
    assert!(
        server
            .query(ZONE, "TXT")
            .iter()
            .any(|t| t.contains("v=spf1"))
    );
    assert_eq!(server.query("mail.crash.test", "A"), vec!["192.0.2.10"]);

    // A change to y.crash.test, applied by crash.test's run, touches nothing of y's...
    let changed = config_text(&server, "digicert.com", "quarantine");
    let report = run(tmp.path(), &changed, &["crash.test"]).await.unwrap();
    assert_eq!(deletes(&report), Vec::<String>::new());
    assert!(caa_issuers(&server).contains("sectigo.com"));
    assert!(server.query("_dmarc.y.crash.test", "TXT")[0].contains("p=reject"));

    // ...and y.crash.test's own run replaces its CAA and DMARC records.
    let report = run(tmp.path(), &changed, &["y.crash.test"]).await.unwrap();
    let mut removed = deletes(&report);
    removed.sort();
    assert_eq!(
        removed,
        vec!["_dmarc.y.crash.test TXT", "y.crash.test CAA"],
        "{report:#?}"
    );
    assert!(
        caa_issuers(&server).contains("digicert.com")
            && !caa_issuers(&server).contains("sectigo.com")
    );
    assert!(server.query("_dmarc.y.crash.test", "TXT")[0].contains("p=quarantine"));
    assert_eq!(server.query(ZONE, "MX"), vec!["10 mail.crash.test."]);
}
