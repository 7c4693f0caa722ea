//! Publishing through a fault-injecting proxy in front of a real Knot: for each fault (lost,
//! late, doubled, truncated, reordered answers; SERVFAIL, REFUSED, NOTAUTH, BADSIG; a TCP
//! connection cut in a message or in a transfer) the run ends with the right class of
//! failure and a reason naming the server, the zone is either unchanged or fully changed —
//! never half — the foreign records are untouched, and once the fault is gone the next run
//! converges, each managed record served exactly once.

use std::path::Path;
use std::time::{Duration, Instant};

use mailzone_engine::{EngineError, ReconcileReport};
mod common;

use mailzone_testkit::{
    DnsServer, Fault, FaultProxy, Match, Rule, ServerKind, ServerOptions, TsigKey, ZoneSpec,
};

const ZONE: &str = "faults.test";

/// Records someone else keeps in the zone, and enough of them that a transfer takes
/// several messages (Knot fills a TCP message up to 64 KB).
fn foreign_records() -> String {
    let mut text = String::from(
        "@ 3600 IN TXT \"google-site-verification=abc123\"\n\
         www 3600 IN A 192.0.2.80\n\
         @ 3600 IN CAA 0 issue \"digicert.com\"\n",
    );
    for i in 0..1500 {
        text.push_str(&format!(
            "bulk{i} 3600 IN TXT \"filler record number {i} of a zone with many names\"\n"
        ));
    }
    text
}

fn config_text(server: &DnsServer, port: u16, protocol: &str) -> String {
    format!(
        r#"
[server]
hostname = "mail.faults.test"
ipv4 = ["192.0.2.10"]

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
protocol = "{protocol}"
keyName = "{key_name}"
key = "{secret}"
algorithm = "hmac-sha256"
timeout = "1s"
propagationDelay = "0s"
pollingInterval = "100ms"
propagationTimeout = "3s"

[domain."faults.test"]
dmarc = {{ policy = "reject" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["mx", "spf", "dmarc", "mtaSts", "tlsRpt", "caa", "address"] }} }}
"#,
        key_name = server.key.name,
        secret = server.key.secret_base64,
    )
}

async fn run(dir: &Path, text: &str, apply: bool) -> Result<ReconcileReport, EngineError> {
    let run = common::Run {
        domains: &[],
        apply,
        after_read: None,
    };
    common::reconcile_text(dir, text, run).await
}

fn change_count(report: &ReconcileReport) -> usize {
    report
        .zones
        .iter()
        .map(|z| z.changes.adds.len() + z.changes.deletes.len())
        .sum()
}

/// How a run through the fault ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Success,
    /// Fails and is worth retrying.
    Transient,
    /// Fails and retrying cannot help.
    Permanent,
}

struct Case {
    name: &'static str,
    protocol: &'static str,
    rule: Rule,
    expect: Expect,
}

fn cases() -> Vec<Case> {
    use Expect::*;
    use Fault::*;
    let ms = Duration::from_millis;
    let case = |name, protocol, rule, expect| Case {
        name,
        protocol,
        rule,
        expect,
    };
    vec![
        case(
            "every answer late",
            "udp",
            Rule::always(Match::Any, Delay(ms(300))),
            Success,
        ),
        // Duplicates happen on UDP only: TCP delivers each byte once.
        case(
            "SOA answers twice",
            "udp",
            Rule::always(Match::Soa, Duplicate),
            Success,
        ),
        case(
            "UPDATE answer twice",
            "udp",
            Rule::always(Match::Update, Duplicate),
            Success,
        ),
        case(
            "SOA answers truncated",
            "udp",
            Rule::always(Match::Soa, Truncate),
            Success,
        ),
        case(
            "UPDATE answer truncated",
            "udp",
            Rule::always(Match::Update, Truncate),
            Success,
        ),
        case(
            "SOA answers reordered",
            "udp",
            Rule::always(Match::Soa, Reorder),
            Success,
        ),
        case(
            "one SOA query lost",
            "udp",
            Rule::times(Match::Soa, DropRequest, 1),
            Success,
        ),
        case(
            "transfer refused (NOTAUTH)",
            "tcp",
            Rule::always(Match::Axfr, Rcode(9)),
            Success,
        ),
        case(
            "transfer SERVFAIL",
            "tcp",
            Rule::always(Match::Axfr, Rcode(2)),
            Transient,
        ),
        case(
            "transfer answer lost",
            "tcp",
            Rule::always(Match::Axfr, DropAnswer),
            Transient,
        ),
        case(
            "transfer cut after one message",
            "tcp",
            Rule::always(Match::Axfr, CutAfterMessages(1)),
            Transient,
        ),
        case(
            "transfer cut mid-message",
            "tcp",
            Rule::always(Match::Axfr, CutMidMessage),
            Transient,
        ),
        case(
            "UPDATE lost on the way",
            "tcp",
            Rule::always(Match::Update, DropRequest),
            Transient,
        ),
        case(
            "UPDATE answer lost",
            "tcp",
            Rule::always(Match::Update, DropAnswer),
            Transient,
        ),
        case(
            "UPDATE answer lost (UDP)",
            "udp",
            Rule::always(Match::Update, DropAnswer),
            Transient,
        ),
        case(
            "UPDATE answer cut mid-message",
            "tcp",
            Rule::always(Match::Update, CutMidMessage),
            Transient,
        ),
        case(
            "UPDATE SERVFAIL",
            "tcp",
            Rule::always(Match::Update, Rcode(2)),
            Transient,
        ),
        case(
            "UPDATE REFUSED",
            "tcp",
            Rule::always(Match::Update, Rcode(5)),
            Permanent,
        ),
        case(
            "UPDATE NOTAUTH",
            "tcp",
            Rule::always(Match::Update, Rcode(9)),
            Permanent,
        ),
        case(
            "UPDATE BADSIG",
            "tcp",
            Rule::always(Match::Update, BadSig),
            Permanent,
        ),
        case(
            "propagation SOA SERVFAIL",
            "udp",
            Rule::always(Match::Soa, Rcode(2)),
            Transient,
        ),
        case(
            "propagation SOA lost",
            "udp",
            Rule::always(Match::Soa, DropAnswer),
            Transient,
        ),
    ]
}

/// Every record of the zone as Knot serves it, SOA aside (its serial moves).
fn zone_lines(server: &DnsServer) -> Vec<String> {
    let mut lines: Vec<String> = server
        .axfr(ZONE)
        .into_iter()
        .filter(|l| !l.contains(" SOA "))
        .collect();
    lines.sort();
    lines
}

async fn one_case(case: &Case) -> String {
    let key = TsigKey::generate("mailzone");
    let server = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(ZONE, &foreign_records())],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    let proxy = FaultProxy::start(server.addr).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text(&server, proxy.addr.port(), case.protocol);
    let before = zone_lines(&server);

    proxy.inject(case.rule);
    let started = Instant::now();
    let outcome = run(tmp.path(), &text, true).await;
    let took = started.elapsed();
    proxy.clear();
    let name = case.name;
    assert!(
        proxy.faults_applied() > 0,
        "{name}: the fault never applied (the run sent no such message)"
    );
    assert!(took < Duration::from_secs(20), "{name}: took {took:?}");
    let got = match &outcome {
        Ok(_) => Expect::Success,
        Err(e) if e.is_transient() => Expect::Transient,
        Err(_) => Expect::Permanent,
    };
    assert_eq!(got, case.expect, "{name}: {outcome:?}");
    if let Err(e) = &outcome {
        let reason = e.to_string();
        assert!(
            reason.contains(ZONE) || reason.contains(&proxy.addr.to_string()),
            "{name}: the reason names neither the zone nor the server: {reason}"
        );
    }

    // Unchanged or fully changed, and the foreign records all still there.
    let after = zone_lines(&server);
    for line in &before {
        assert!(after.contains(line), "{name}: foreign record lost: {line}");
    }
    let changed = after != before;
    let verify_dir = tempfile::tempdir().unwrap();
    let plan = run(verify_dir.path(), &text, false).await.unwrap();
    assert!(
        !changed || change_count(&plan) == 0,
        "{name}: the zone was changed half-way: {:#?}",
        plan.zones[0].entries()
    );

    // Without the fault, the next run converges and the one after has nothing to do.
    run(tmp.path(), &text, true)
        .await
        .unwrap_or_else(|e| panic!("{name}: the run after the fault failed: {e}"));
    let again = run(tmp.path(), &text, true).await.unwrap();
    assert_eq!(change_count(&again), 0, "{name}: not converged");
    let converged = zone_lines(&server);
    let mut unique = converged.clone();
    unique.dedup();
    assert_eq!(unique, converged, "{name}: a record is served twice");
    assert_eq!(server.query(ZONE, "MX"), vec!["10 mail.faults.test."]);
    format!(
        "{name:<34} {:<9} {:>3} faults  {:>6.2}s  {}",
        format!("{got:?}"),
        proxy.faults_applied(),
        took.as_secs_f64(),
        if changed {
            "zone fully changed"
        } else {
            "zone unchanged"
        }
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fault_gives_its_class_and_never_half_a_change() {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return;
    }
    // MAILZONE_FAULT_CASE=<part of a name> runs the matching cases only.
    let only = std::env::var("MAILZONE_FAULT_CASE").unwrap_or_default();
    let mut table = Vec::new();
    for case in cases().into_iter().filter(|c| c.name.contains(&only)) {
        table.push(one_case(&case).await);
    }
    // The figures docs/reliability.md quotes.
    eprintln!("{}", table.join("\n"));
}
