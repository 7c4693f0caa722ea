//! SPF checks against zones served by a real Knot (one defect per zone), asked over DNS
//! through `DnsLookup`: each asserts the exact finding code, severity and name.

mod spf_support;

use std::sync::OnceLock;
use std::time::Duration;

use mailzone_check::DnsLookup;
use mailzone_check::finding::Severity;
use mailzone_check::spf;
use mailzone_testkit::{DnsServer, ZoneSpec};
use spf_support::{Case, knot, summary};

/// The cases: (zone, lines to remove from the correct zone, lines to add).
const CASES: &[(&str, &[&str], &str)] = &[
    ("spf-good.test", &[], ""),
    (
        "spf-two.test",
        &[],
        "@ 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n",
    ),
    (
        "spf-eleven.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx include:_a.spf-eleven.test include:_b.spf-eleven.test -all\"\n\
         _a 300 IN TXT \"v=spf1 include:_a1.spf-eleven.test include:_a2.spf-eleven.test include:_a3.spf-eleven.test include:_a4.spf-eleven.test -all\"\n\
         _b 300 IN TXT \"v=spf1 include:_b1.spf-eleven.test include:_b2.spf-eleven.test include:_b3.spf-eleven.test include:_b4.spf-eleven.test -all\"\n\
         _a1 300 IN TXT \"v=spf1 ip4:198.51.100.1 -all\"\n\
         _a2 300 IN TXT \"v=spf1 ip4:198.51.100.2 -all\"\n\
         _a3 300 IN TXT \"v=spf1 ip4:198.51.100.3 -all\"\n\
         _a4 300 IN TXT \"v=spf1 ip4:198.51.100.4 -all\"\n\
         _b1 300 IN TXT \"v=spf1 ip4:198.51.100.5 -all\"\n\
         _b2 300 IN TXT \"v=spf1 ip4:198.51.100.6 -all\"\n\
         _b3 300 IN TXT \"v=spf1 ip4:198.51.100.7 -all\"\n\
         _b4 300 IN TXT \"v=spf1 ip4:198.51.100.8 -all\"\n",
    ),
    (
        "spf-void.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx a:nx1.spf-void.test a:nx2.spf-void.test exists:nx3.spf-void.test -all\"\n",
    ),
    (
        "spf-ip.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 ip4:192.0.2.99 -all\"\n",
    ),
    (
        "spf-include.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx include:_missing.spf-include.test -all\"\n",
    ),
    (
        "spf-syntax.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx ip4:192.0.2.0/33 -all\"\n",
    ),
    ("spf-host.test", &["\"v=spf1 a"], ""),
    (
        "spf-plusall.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 mx +all\"\n",
    ),
    (
        "spf-ptr.test",
        &["\"v=spf1 mx"],
        "@ 300 IN TXT \"v=spf1 ptr mx -all\"\n",
    ),
];

fn server() -> Option<&'static DnsServer> {
    static SERVER: OnceLock<Option<DnsServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let mut zones: Vec<_> = CASES
                .iter()
                .map(|(zone, remove, add)| Case::new(zone, "").zone_spec(remove, add))
                .collect();
            // The reverse zones of the server's addresses, for `ptr` (RFC 7208 §5.5).
            zones.push(ZoneSpec::new(
                "2.0.192.in-addr.arpa",
                "10 300 IN PTR mail.spf-ptr.test.\n",
            ));
            zones.push(ZoneSpec::new(
                "8.b.d.0.1.0.0.2.ip6.arpa",
                "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 300 IN PTR mail.spf-ptr.test.\n",
            ));
            knot(&zones)
        })
        .as_ref()
}

/// The SPF findings of `zone` as Knot serves it: (code, severity, name), sorted.
async fn spf_findings(zone: &str) -> Option<Vec<(&'static str, Severity, String)>> {
    let server = server()?;
    let case = Case::new(zone, "");
    let lookup = DnsLookup::with_servers(vec![server.addr], Duration::from_secs(5));
    let findings = spf::check(&case.ctx(&lookup)).await;
    eprintln!("{zone}: {findings:#?}");
    Some(summary(&findings))
}

#[tokio::test]
async fn correct_zone_has_no_spf_findings() {
    let Some(f) = spf_findings("spf-good.test").await else {
        return;
    };
    assert_eq!(f, []);
}

#[tokio::test]
async fn two_spf_records() {
    let Some(f) = spf_findings("spf-two.test").await else {
        return;
    };
    assert_eq!(
        f,
        [("spf-multiple", Severity::Error, "spf-two.test.".into())]
    );
}

#[tokio::test]
async fn eleven_lookups_through_nested_includes() {
    let Some(f) = spf_findings("spf-eleven.test").await else {
        return;
    };
    // The server passes through `mx` (1 lookup), but other senders need 11.
    assert_eq!(
        f,
        [(
            "spf-too-many-lookups",
            Severity::Error,
            "spf-eleven.test.".into()
        )]
    );
}

#[tokio::test]
async fn three_void_lookups() {
    let Some(f) = spf_findings("spf-void.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "spf-too-many-void-lookups",
            Severity::Error,
            "spf-void.test.".into()
        )]
    );
}

#[tokio::test]
async fn server_ips_not_authorised() {
    let Some(f) = spf_findings("spf-ip.test").await else {
        return;
    };
    // One finding per server address (IPv4 and IPv6).
    assert_eq!(
        f,
        [
            ("spf-not-pass", Severity::Error, "spf-ip.test.".into()),
            ("spf-not-pass", Severity::Error, "spf-ip.test.".into())
        ]
    );
}

#[tokio::test]
async fn include_without_record() {
    let Some(f) = spf_findings("spf-include.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "spf-include-invalid",
            Severity::Error,
            "_missing.spf-include.test.".into()
        )]
    );
}

#[tokio::test]
async fn bad_cidr_length() {
    let Some(f) = spf_findings("spf-syntax.test").await else {
        return;
    };
    assert_eq!(
        f,
        [("spf-syntax", Severity::Error, "spf-syntax.test.".into())]
    );
}

#[tokio::test]
async fn exchanger_without_its_own_record() {
    let Some(f) = spf_findings("spf-host.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "spf-host-missing",
            Severity::Warning,
            "mail.spf-host.test.".into()
        )]
    );
}

#[tokio::test]
async fn plus_all() {
    let Some(f) = spf_findings("spf-plusall.test").await else {
        return;
    };
    assert_eq!(
        f,
        [("spf-pass-all", Severity::Error, "spf-plusall.test.".into())]
    );
}

#[tokio::test]
async fn ptr_mechanism() {
    let Some(f) = spf_findings("spf-ptr.test").await else {
        return;
    };
    assert_eq!(f, [("spf-ptr", Severity::Warning, "spf-ptr.test.".into())]);
}

#[tokio::test]
async fn evaluation_over_dns_counts_like_the_walk() {
    let Some(server) = server() else { return };
    let lookup = DnsLookup::with_servers(vec![server.addr], Duration::from_secs(5));
    let domain = mailzone_records::Name::host("spf-eleven.test").unwrap();
    let sender = "postmaster@spf-eleven.test";
    // 198.51.100.8 is authorised by the last include: reaching it takes 11 lookups.
    let o = spf::evaluate(&lookup, &domain, "198.51.100.8".parse().unwrap(), sender).await;
    assert_eq!(
        (o.result, o.lookups),
        (spf::SpfResult::PermError, 11),
        "{}",
        o.trace_text()
    );
    // 198.51.100.7 is reached with the 10th.
    let o = spf::evaluate(&lookup, &domain, "198.51.100.7".parse().unwrap(), sender).await;
    assert_eq!(
        (o.result, o.lookups),
        (spf::SpfResult::Pass, 10),
        "{}",
        o.trace_text()
    );
    let o = spf::evaluate(&lookup, &domain, "192.0.2.10".parse().unwrap(), sender).await;
    assert_eq!((o.result, o.lookups), (spf::SpfResult::Pass, 1));
    let w = spf::walk(&lookup, &domain, "192.0.2.10".parse().unwrap(), sender).await;
    assert_eq!(w.lookups, 11);
}
