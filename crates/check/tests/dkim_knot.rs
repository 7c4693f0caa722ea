//! DKIM against a real Knot, with `dkimpy` (scripts/xcheck/dkim_verify.py, in the venv of
//! scripts/test) as the independent judge: it signs a message with the private key and
//! verifies it against the TXT value Knot serves at the selector (as kdig prints it), and
//! its verdict must be mailzone's: quiet when dkimpy verifies, an error when it does not.
//!
//! Skipped when Knot or the venv is missing (a failure under `MAILZONE_REQUIRE_TOOLS=1`).

mod dnssec_common;

use std::path::Path;

use dnssec_common::{Fixture, ServerLookup, assert_one, knot, only, options, zone_spec};
use mailzone_check::Severity;
use mailzone_records::dkim::DkimPrivateKey;
use mailzone_testkit::DnsServer;

/// dkimpy's verdict: does a message signed with `key` verify against what `server` serves
/// at `<selector>._domainkey.example.test`?
fn dkimpy_verifies(server: &DnsServer, selector: &str, key: &DkimPrivateKey) -> Option<bool> {
    let python = dnssec_common::python()?;
    let served = server.query(&format!("{selector}._domainkey.example.test"), "TXT");
    assert_eq!(served.len(), 1, "{served:?}");
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, key.pkcs8_pem()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/xcheck/dkim_verify.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .arg("--private-key")
        .arg(&pem)
        .arg("--selector")
        .arg(selector)
        .arg("--domain")
        .arg("example.test")
        .arg("--txt")
        .arg(&served[0])
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    Some(output.status.success())
}

#[tokio::test]
async fn published_keys_verify_and_dkimpy_agrees() {
    let fixture = Fixture::new();
    let Some(server) = knot(&[zone_spec(&fixture.zone_text())], false) else {
        return;
    };
    let lookup = ServerLookup {
        server: server.addr,
    };
    let options = options();
    let findings = mailzone_check::dkim::check(&fixture.ctx(&lookup, &options)).await;
    assert!(findings.is_empty(), "{findings:#?}");
    for (selector, key) in &fixture.keys {
        if let Some(ok) = dkimpy_verifies(&server, selector, key) {
            assert!(ok, "dkimpy does not verify selector {selector}");
        }
    }
}

#[tokio::test]
async fn a_published_key_that_is_not_the_signing_key() {
    // The zone publishes the 1024-bit test key under selector 202611r, but the MTA signs
    // with the 2048-bit example key.
    let fixture = Fixture::new();
    let other = DkimPrivateKey::from_pem(dnssec_common::RSA_1024_PEM).unwrap();
    let stale = Fixture::with_keys(vec![("202611r".to_string(), other)]);
    let owner = "202611r._domainkey.example.test.";
    let stale_line = stale
        .zone_text()
        .lines()
        .find(|l| l.starts_with(owner))
        .unwrap()
        .to_string();
    let zone = fixture.zone_text_with(|l| {
        Some(if l.starts_with(owner) {
            stale_line.clone()
        } else {
            l.to_string()
        })
    });
    let Some(server) = knot(&[zone_spec(&zone)], false) else {
        return;
    };
    let lookup = ServerLookup {
        server: server.addr,
    };
    let options = options();
    let findings = mailzone_check::dkim::check(&fixture.ctx(&lookup, &options)).await;
    let f = assert_one(&findings, "dkim-key-mismatch", Severity::Error, owner);
    assert!(
        f.message
            .contains("the published key does not match the private key the MTA signs with"),
        "{f:#?}"
    );
    // The published key is also weak (1024 bits); nothing else.
    assert_one(&findings, "dkim-key-weak", Severity::Warning, owner);
    assert_eq!(only(&findings, "dkim-").len(), 2, "{findings:#?}");
    let signing_key = &fixture.keys.iter().find(|(s, _)| s == "202611r").unwrap().1;
    if let Some(ok) = dkimpy_verifies(&server, "202611r", signing_key) {
        assert!(!ok, "dkimpy verifies what mailzone calls a mismatch");
    }
    // The Ed25519 selector is untouched: both agree it verifies.
    let ed = &fixture.keys.iter().find(|(s, _)| s == "202611e").unwrap().1;
    if let Some(ok) = dkimpy_verifies(&server, "202611e", ed) {
        assert!(ok);
    }
}

#[tokio::test]
async fn selector_delegated_by_cname_to_a_provider_zone() {
    let fixture = Fixture::new();
    let owner = "202611e._domainkey.example.test.";
    let value = fixture.dkim_value("202611e");
    let zone = fixture.zone_text_with(|l| {
        Some(if l.starts_with(owner) {
            format!("{owner} 300 IN CNAME 202611e.keys.provider.test.")
        } else {
            l.to_string()
        })
    });
    let provider = mailzone_testkit::ZoneSpec::new(
        "provider.test",
        &format!("202611e.keys 300 IN TXT \"{value}\"\n"),
    );
    let Some(server) = knot(&[zone_spec(&zone), provider], false) else {
        return;
    };
    let lookup = ServerLookup {
        server: server.addr,
    };
    let options = options();
    let findings = mailzone_check::dkim::check(&fixture.ctx(&lookup, &options)).await;
    assert!(findings.is_empty(), "{findings:#?}");
}
