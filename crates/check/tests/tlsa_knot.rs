//! TLSA against a real Knot (signed by its automatic signing, validated from its DS), with
//! `ldns-dane` (ldnsutils) as the independent judge: for the TLSA RRset Knot serves, it
//! says whether the example certificate chain DANE-validates (`ldns-dane -t <records> -c
//! <chain> verify`, offline), and mailzone's verdict must be the same.
//!
//! Skipped when Knot, keymgr or ldns-dane is missing (a failure under
//! `MAILZONE_REQUIRE_TOOLS=1`).

mod dnssec_common;

use dnssec_common::{Fixture, ServerLookup, anchored, assert_one, examples_dir, knot, zone_spec};
use mailzone_check::Severity;
use mailzone_testkit::{DnsServer, require_tool, tool_path};

const SMTP: &str = "_25._tcp.mail.example.test.";
const OTHER_DIGEST: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// ldns-dane's verdict on the TLSA RRset `server` serves at `SMTP` for the example chain,
/// the records written under `owner` (ldns-dane takes the host name from it).
fn ldns_dane_validates(server: &DnsServer, owner: &str) -> Option<bool> {
    if !require_tool("ldns-dane") {
        return None;
    }
    let records: String = server
        .query(SMTP, "TLSA")
        .iter()
        .map(|rdata| format!("{owner} 3600 IN TLSA {rdata}\n"))
        .collect();
    assert!(!records.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tlsa.txt");
    std::fs::write(&file, records).unwrap();
    // -n: the example certificate is for mail.example.org; -d: DNSSEC was checked apart.
    let output = std::process::Command::new(tool_path("ldns-dane").unwrap())
        .arg("-n")
        .arg("-d")
        .arg("-c")
        .arg(examples_dir().join("certs/mail.example.org.pem"))
        .arg("-t")
        .arg(&file)
        .arg("verify")
        .output()
        .unwrap();
    eprintln!(
        "ldns-dane: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output.status.success())
}

async fn tlsa_findings(fixture: &Fixture, server: &DnsServer) -> Vec<mailzone_check::Finding> {
    let ds = server.ds_records("example.test").unwrap();
    let lookup = ServerLookup {
        server: server.addr,
    };
    let options = anchored(&ds);
    mailzone_check::tlsa::check(&fixture.ctx(&lookup, &options)).await
}

#[tokio::test]
async fn planned_records_match_and_ldns_dane_agrees() {
    let fixture = Fixture::new();
    let Some(server) = knot(&[zone_spec(&fixture.zone_text())], true) else {
        return;
    };
    let findings = tlsa_findings(&fixture, &server).await;
    assert!(findings.is_empty(), "{findings:#?}");
    if let Some(valid) = ldns_dane_validates(&server, SMTP) {
        assert!(valid, "ldns-dane rejects the records mailzone accepts");
    }
}

#[tokio::test]
async fn records_for_another_key_and_ldns_dane_agrees() {
    let fixture = Fixture::new();
    let zone = fixture.zone_text_with(|l| {
        if l.starts_with(SMTP) {
            let head = l.rsplit_once(' ').unwrap().0;
            Some(format!("{head} {OTHER_DIGEST}"))
        } else {
            Some(l.to_string())
        }
    });
    let Some(server) = knot(&[zone_spec(&zone)], true) else {
        return;
    };
    let findings = tlsa_findings(&fixture, &server).await;
    let f = assert_one(&findings, "tlsa-no-match", Severity::Error, SMTP);
    assert!(
        f.message.contains("DANE-enabled senders will not deliver"),
        "{f:#?}"
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    if let Some(valid) = ldns_dane_validates(&server, SMTP) {
        assert!(!valid, "ldns-dane accepts records mailzone rejects");
    }
}

#[tokio::test]
async fn issuer_record_alone_and_ldns_dane_agrees() {
    let fixture = Fixture::new();
    let zone = fixture.zone_text_with(|l| {
        (!(l.starts_with(SMTP) && l.contains(" 3 1 1 "))).then(|| l.to_string())
    });
    let Some(server) = knot(&[zone_spec(&zone)], true) else {
        return;
    };
    assert_eq!(server.query(SMTP, "TLSA").len(), 1);
    let findings = tlsa_findings(&fixture, &server).await;
    assert!(findings.is_empty(), "{findings:#?}");
    // ldns-dane's offline `verify` of a DANE-TA record always fails its host name check
    // (without a TLS connection it has no reference name, even with -n), so here it judges
    // by computing the DANE-TA record of the example chain itself (`create ... 2 1 1`): the
    // record it makes is the one Knot serves and mailzone accepts.
    if require_tool("ldns-dane") {
        let output = std::process::Command::new(tool_path("ldns-dane").unwrap())
            .arg("-n")
            .arg("-c")
            .arg(examples_dir().join("certs/mail.example.org.pem"))
            .args(["create", "mail.example.org", "25", "2", "1", "1"])
            .output()
            .unwrap();
        let made = String::from_utf8_lossy(&output.stdout).to_string();
        let digest = made
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let served = server.query(SMTP, "TLSA")[0].to_ascii_lowercase();
        assert_eq!(served, format!("2 1 1 {digest}"), "ldns-dane made: {made}");
    }
}

/// A `3 0 1` record (digest of the whole certificate) beside the right `3 1 1`: valid, but
/// it must change at every renewal (RFC 7671 §5, RFC 7672 §3.1): `tlsa-discouraged`.
#[tokio::test]
async fn whole_certificate_record_is_discouraged() {
    let fixture = Fixture::new();
    let zone = fixture.zone_text_with(|l| {
        if l.starts_with(SMTP) && l.contains(" 3 1 1 ") {
            let head = l.split(" 3 1 1 ").next().unwrap();
            Some(format!("{l}\n{head} 3 0 1 {OTHER_DIGEST}"))
        } else {
            Some(l.to_string())
        }
    });
    let Some(server) = knot(&[zone_spec(&zone)], true) else {
        return;
    };
    assert_eq!(server.query(SMTP, "TLSA").len(), 3);
    let findings = tlsa_findings(&fixture, &server).await;
    let f = assert_one(&findings, "tlsa-discouraged", Severity::Info, SMTP);
    assert!(f.seen.as_deref().unwrap_or("").contains("3 0 1"), "{f:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
}
