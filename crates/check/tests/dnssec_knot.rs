//! DNSSEC against a real Knot DNS (testkit): zones signed by Knot's automatic signing
//! validate from the DS Knot's key manager (`keymgr`) gives; broken zones are reported with
//! the exact code. `delv` (BIND) and `ldns-verify-zone` / `ldns-signzone` (ldns), written
//! by people who never saw mailzone, say the same about the same zones.
//!
//! How the broken cases are made:
//! - an altered signature: the zone Knot signed is transferred (AXFR), one record changed
//!   (the MX preference) while its RRSIG is kept, and the text is served verbatim by a
//!   second Knot that does not sign;
//! - expired signatures: `ldns-signzone` signs the zone with a validity period in 2020, and
//!   Knot (not signing) serves it;
//! - a wrong trust anchor: the DS of another Knot's keys for the same zone;
//! - the parent's DS: one Knot serves `test` and `example.test`, both signed; the DS is
//!   added to (or left out of, or wrong in) the parent by an RFC 2136 update.
//!
//! Skipped when Knot, keymgr, delv or ldnsutils are missing (a failure under
//! `MAILZONE_REQUIRE_TOOLS=1`).

mod dnssec_common;

use dnssec_common::{
    Fixture, ServerLookup, anchored, assert_one, check_all, delv, knot, only, zone_spec,
};
use mailzone_check::Severity;
use mailzone_testkit::{ZoneSpec, require_tool, tool_path};

fn errors_and_warnings(findings: &[mailzone_check::Finding]) -> Vec<&mailzone_check::Finding> {
    findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .collect()
}

#[tokio::test]
async fn knot_signed_zone_validates_with_its_ds() {
    let fixture = Fixture::new();
    let Some(server) = knot(&[zone_spec(&fixture.zone_text())], true) else {
        return;
    };
    let ds = server.ds_records("example.test").unwrap();
    let lookup = ServerLookup {
        server: server.addr,
    };
    let findings = check_all(&fixture, &lookup, &anchored(&ds)).await;
    assert!(findings.is_empty(), "{findings:#?}");

    // Without an anchor: valid signatures, chain not followed (information only).
    let findings = check_all(&fixture, &lookup, &anchored(&[])).await;
    assert!(errors_and_warnings(&findings).is_empty(), "{findings:#?}");
    assert_one(
        &findings,
        "dnssec-chain-unverified",
        Severity::Info,
        "example.test.",
    );

    // delv agrees: the MX and the SMTP TLSA RRset are fully validated from that DS.
    let Some((validated, text)) = delv(server.addr, &ds, "example.test", "example.test", "MX")
    else {
        return;
    };
    assert!(validated, "delv: {text}");
    let (validated, text) = delv(
        server.addr,
        &ds,
        "example.test",
        "_25._tcp.mail.example.test",
        "TLSA",
    )
    .unwrap();
    assert!(validated, "delv: {text}");
}

#[tokio::test]
async fn altered_record_under_a_knot_signature_is_invalid() {
    let fixture = Fixture::new();
    let Some(signer) = knot(&[zone_spec(&fixture.zone_text())], true) else {
        return;
    };
    let ds = signer.ds_records("example.test").unwrap();
    let signed = signer.axfr("example.test");
    let mut changed = 0;
    let altered: Vec<String> = signed
        .iter()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields[0] == "example.test." && fields[3] == "MX" {
                changed += 1;
                line.replace(" MX 10 ", " MX 20 ")
            } else {
                line.clone()
            }
        })
        .collect();
    assert_eq!(changed, 1, "{signed:#?}");
    let text = altered.join("\n") + "\n";

    // Served verbatim by a Knot that does not sign.
    let Some(server) = knot(&[ZoneSpec::empty("example.test")], false) else {
        return;
    };
    server.replace_zone("example.test", &text).unwrap();
    assert_eq!(
        server.query("example.test", "MX"),
        ["20 mail.example.test."]
    );
    let lookup = ServerLookup {
        server: server.addr,
    };
    let findings = check_all(&fixture, &lookup, &anchored(&ds)).await;
    let dnssec = only(&findings, "dnssec-");
    let f = assert_one(
        &findings,
        "dnssec-signature-invalid",
        Severity::Error,
        "example.test.",
    );
    assert!(f.message.starts_with("example.test. MX"), "{f:#?}");
    assert_eq!(dnssec.len(), 1, "{findings:#?}");

    // delv: the MX does not validate; ldns-verify-zone: the zone has a bad signature.
    if let Some((validated, text)) = delv(server.addr, &ds, "example.test", "example.test", "MX") {
        assert!(!validated, "delv validated an altered MX: {text}");
    }
    if require_tool("ldns-verify-zone") {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.zone");
        let bad = dir.path().join("bad.zone");
        std::fs::write(&good, signed.join("\n") + "\n").unwrap();
        std::fs::write(&bad, &text).unwrap();
        let verify = |path: &std::path::Path| {
            std::process::Command::new(tool_path("ldns-verify-zone").unwrap())
                .arg(path)
                .output()
                .unwrap()
        };
        let ok = verify(&good);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stdout)
        );
        let broken = verify(&bad);
        assert!(
            !broken.status.success(),
            "ldns-verify-zone accepted the altered zone"
        );
    }
}

#[tokio::test]
async fn expired_signatures_made_by_ldns_signzone() {
    let fixture = Fixture::new();
    if !require_tool("ldns-keygen") || !require_tool("ldns-signzone") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(tool_path(args[0]).unwrap())
            .args(&args[1..])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let key = run(&["ldns-keygen", "-a", "ED25519", "-k", "example.test"]);
    let ds = std::fs::read_to_string(dir.path().join(format!("{key}.ds"))).unwrap();
    let zone_text = mailzone_testkit::zone_file_text(&zone_spec(&fixture.zone_text()));
    std::fs::write(dir.path().join("example.test.zone"), &zone_text).unwrap();
    run(&[
        "ldns-signzone",
        "-i",
        "20200101000000",
        "-e",
        "20200201000000",
        "-f",
        "signed.zone",
        "example.test.zone",
        &key,
    ]);
    let signed = std::fs::read_to_string(dir.path().join("signed.zone")).unwrap();

    let Some(server) = knot(&[ZoneSpec::empty("example.test")], false) else {
        return;
    };
    server.replace_zone("example.test", &signed).unwrap();
    let lookup = ServerLookup {
        server: server.addr,
    };
    let findings = check_all(&fixture, &lookup, &anchored(&[ds.trim().to_string()])).await;
    // The DNSKEY RRset's own signature has expired: nothing in the zone validates.
    let f = assert_one(
        &findings,
        "dnssec-signature-expired",
        Severity::Error,
        "example.test.",
    );
    assert!(
        f.seen
            .as_deref()
            .unwrap()
            .contains("expired at 20200201000000"),
        "{f:#?}"
    );
    assert_eq!(only(&findings, "dnssec-").len(), 1, "{findings:#?}");
    // And the TLSA records are not authenticated.
    assert_one(
        &findings,
        "tlsa-not-authenticated",
        Severity::Error,
        "_25._tcp.mail.example.test.",
    );
    if let Some((validated, text)) = delv(
        server.addr,
        &[ds.trim().to_string()],
        "example.test",
        "example.test",
        "MX",
    ) {
        assert!(!validated, "delv validated expired signatures: {text}");
        assert!(text.contains("expired"), "delv: {text}");
    }
}

#[tokio::test]
async fn anchor_for_other_keys_is_a_mismatch() {
    let fixture = Fixture::new();
    let Some(server) = knot(&[zone_spec(&fixture.zone_text())], true) else {
        return;
    };
    let Some(other) = knot(&[zone_spec(&fixture.zone_text())], true) else {
        return;
    };
    let wrong = other.ds_records("example.test").unwrap();
    let lookup = ServerLookup {
        server: server.addr,
    };
    let findings = check_all(&fixture, &lookup, &anchored(&wrong)).await;
    assert_one(
        &findings,
        "dnssec-anchor-mismatch",
        Severity::Error,
        "example.test.",
    );
    assert_eq!(only(&findings, "dnssec-").len(), 1, "{findings:#?}");
    // The TLSA records cannot be trusted from that anchor either.
    assert_one(
        &findings,
        "tlsa-not-authenticated",
        Severity::Error,
        "_25._tcp.mail.example.test.",
    );
    if let Some((validated, text)) = delv(server.addr, &wrong, "example.test", "example.test", "MX")
    {
        assert!(!validated, "delv: {text}");
    }
}

#[tokio::test]
async fn ds_at_the_parent_served_by_the_same_knot() {
    let fixture = Fixture::new();
    let parent = ZoneSpec::new(
        "test",
        "example.test. 3600 IN NS ns1.example.test.\nns1.example.test. 3600 IN A 127.0.0.1\n",
    );
    let Some(server) = knot(&[parent, zone_spec(&fixture.zone_text())], true) else {
        return;
    };
    let parent_ds = server.ds_records("test").unwrap();
    let child_ds = server.ds_records("example.test").unwrap();
    let lookup = ServerLookup {
        server: server.addr,
    };

    // No DS yet: from the child's own anchor the zone validates, but the parent (reachable,
    // signed) does not vouch for it.
    let findings = check_all(&fixture, &lookup, &anchored(&child_ds)).await;
    let f = assert_one(
        &findings,
        "dnssec-ds-missing",
        Severity::Warning,
        "example.test.",
    );
    assert!(
        f.fix.as_deref().unwrap().contains("example.test. DS "),
        "{f:#?}"
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // From the parent's anchor the zone is then insecure: TLSA not authenticated.
    let findings = check_all(&fixture, &lookup, &anchored(&parent_ds)).await;
    assert_one(
        &findings,
        "dnssec-ds-missing",
        Severity::Warning,
        "example.test.",
    );
    assert_one(
        &findings,
        "tlsa-not-authenticated",
        Severity::Error,
        "_25._tcp.mail.example.test.",
    );

    // A DS for another key: bogus.
    let wrong = "example.test. 3600 DS 12345 13 2 00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";
    server.nsupdate("test", &[&format!("update add {wrong}")]);
    let findings = check_all(&fixture, &lookup, &anchored(&parent_ds)).await;
    assert_one(
        &findings,
        "dnssec-ds-mismatch",
        Severity::Error,
        "example.test.",
    );
    assert_eq!(only(&findings, "dnssec-").len(), 1, "{findings:#?}");
    if let Some((validated, text)) = delv(server.addr, &parent_ds, "test", "example.test", "MX") {
        assert!(!validated, "delv: {text}");
    }

    // The right DS (Knot signs the update): the chain from the parent's anchor holds.
    server.nsupdate(
        "test",
        &[
            "update delete example.test. DS",
            &format!("update add {} ", child_ds[0].replace(" DS ", " 3600 DS ")),
        ],
    );
    let findings = check_all(&fixture, &lookup, &anchored(&parent_ds)).await;
    assert!(findings.is_empty(), "{findings:#?}");
    if let Some((validated, text)) = delv(server.addr, &parent_ds, "test", "example.test", "MX") {
        assert!(validated, "delv: {text}");
    }
}

#[tokio::test]
async fn unsigned_zone_with_tlsa() {
    let fixture = Fixture::new();
    let Some(server) = knot(&[zone_spec(&fixture.zone_text())], false) else {
        return;
    };
    let lookup = ServerLookup {
        server: server.addr,
    };
    let findings = check_all(&fixture, &lookup, &anchored(&[])).await;
    assert_one(
        &findings,
        "dnssec-unsigned",
        Severity::Error,
        "example.test.",
    );
    assert_one(
        &findings,
        "tlsa-not-authenticated",
        Severity::Error,
        "_25._tcp.mail.example.test.",
    );
}
