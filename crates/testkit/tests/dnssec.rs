//! `ServerOptions::dnssec`: Knot signs the zones it serves (automatic signing), the DS of
//! each zone's KSK comes from `keymgr`, an update is signed too, BIND refuses the option,
//! and `replace_zone` serves a zone text verbatim (signatures included, not re-signed).
//!
//! A missing server skips a test, or fails it under `MAILZONE_REQUIRE_TOOLS=1`.

use mailzone_testkit::{
    DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec, require_tool, require_tools,
};

const RECORDS: &str = "@ 300 IN MX 10 mail\nmail 300 IN A 192.0.2.10\n";

fn signed_knot() -> Option<DnsServer> {
    if !ServerKind::Knot.available() || !require_tool("keymgr") {
        return None;
    }
    let options = ServerOptions {
        dnssec: true,
        ..ServerOptions::default()
    };
    let zones = [
        ZoneSpec::new("example.test", RECORDS),
        ZoneSpec::empty("test"),
    ];
    Some(
        DnsServer::start(ServerKind::Knot, &zones, &TsigKey::generate("k"), &options)
            .unwrap_or_else(|e| panic!("Knot with DNSSEC did not start: {e}")),
    )
}

/// The RRSIG lines (as kdig prints them) among a transfer.
fn rrsigs_covering(axfr: &[String], owner: &str, rtype: &str) -> usize {
    axfr.iter()
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() > 4 && f[0] == owner && f[3] == "RRSIG" && f[4] == rtype
        })
        .count()
}

#[test]
fn knot_signs_zones_and_updates() {
    let Some(server) = signed_knot() else {
        return;
    };
    for zone in ["example.test", "test"] {
        let keys = server.query(zone, "DNSKEY");
        assert_eq!(keys.len(), 2, "a KSK and a ZSK for {zone}: {keys:?}");
        assert!(keys.iter().any(|k| k.starts_with("257 3 13 ")), "{keys:?}");
        let ds = server.ds_records(zone).unwrap();
        assert_eq!(ds.len(), 1, "{ds:?}");
        let fields: Vec<&str> = ds[0].split_whitespace().collect();
        assert_eq!(fields[0], format!("{zone}."));
        assert_eq!((fields[1], fields[3], fields[4]), ("DS", "13", "2"));
        assert_eq!(fields[5].len(), 64, "SHA-256 digest: {ds:?}");
    }
    let axfr = server.axfr("example.test");
    assert_eq!(
        rrsigs_covering(&axfr, "example.test.", "MX"),
        1,
        "{axfr:#?}"
    );
    assert_eq!(
        rrsigs_covering(&axfr, "example.test.", "DNSKEY"),
        1,
        "{axfr:#?}"
    );

    // An update is signed as well.
    server.nsupdate(
        "example.test",
        &["update add www.example.test. 300 A 192.0.2.1"],
    );
    let axfr = server.axfr("example.test");
    assert_eq!(
        rrsigs_covering(&axfr, "www.example.test.", "A"),
        1,
        "{axfr:#?}"
    );
}

#[test]
fn replace_zone_serves_text_verbatim() {
    let Some(signer) = signed_knot() else {
        return;
    };
    let signed = signer.axfr("example.test").join("\n") + "\n";
    let key = TsigKey::generate("k");
    let plain = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::empty("example.test")],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    assert!(plain.query("example.test", "DNSKEY").is_empty());
    plain.replace_zone("example.test", &signed).unwrap();
    // Same keys and signatures as the signer's (not signed again).
    assert_eq!(
        plain.query("example.test", "DNSKEY"),
        signer.query("example.test", "DNSKEY")
    );
    assert_eq!(
        plain.query("example.test", "RRSIG"),
        signer.query("example.test", "RRSIG")
    );
    assert_eq!(plain.query("example.test", "MX"), ["10 mail.example.test."]);
}

#[test]
fn bind_refuses_dnssec() {
    if !require_tools(&["named"]) {
        return;
    }
    let options = ServerOptions {
        dnssec: true,
        ..ServerOptions::default()
    };
    let error = DnsServer::start(
        ServerKind::Bind,
        &[ZoneSpec::empty("example.test")],
        &TsigKey::generate("k"),
        &options,
    )
    .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
}

#[test]
fn dnssec_is_off_by_default() {
    assert!(!ServerOptions::default().dnssec);
}
