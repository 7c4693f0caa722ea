//! DMARC checks against zones served by a real Knot (one defect per zone), asked over DNS
//! through `DnsLookup`: each asserts the exact finding code, severity and name. The report
//! destination zone `reports.test` is served too, with one authorisation record and a
//! wildcard one.

mod spf_support;

use std::sync::OnceLock;
use std::time::Duration;

use mailzone_check::DnsLookup;
use mailzone_check::dmarc;
use mailzone_check::finding::Severity;
use mailzone_testkit::{DnsServer, ZoneSpec};
use spf_support::{Case, knot, summary};

/// The cases: (zone, lines to remove from the correct zone, lines to add).
const CASES: &[(&str, &[&str], &str)] = &[
    ("dmarc-good.test", &[], ""),
    (
        "dmarc-none.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=none\"\n",
    ),
    (
        "dmarc-two.test",
        &[],
        "_dmarc 300 IN TXT \"v=DMARC1; p=none\"\n",
    ),
    ("dmarc-missing.test", &["v=DMARC1"], ""),
    (
        "dmarc-nop.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; rua=mailto:postmaster@dmarc-nop.test\"\n",
    ),
    (
        "dmarc-block.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=block\"\n",
    ),
    (
        "dmarc-extrua.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@reports.test\"\n",
    ),
    (
        "dmarc-authorised.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@reports.test\"\n",
    ),
    (
        "dmarc-wildcard.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@wild.reports.test\"\n",
    ),
    (
        "dmarc-pct.test",
        &["v=DMARC1"],
        "_dmarc 300 IN TXT \"v=DMARC1; p=reject; pct=50\"\n",
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
            zones.push(ZoneSpec::new(
                "reports.test",
                "dmarc-authorised.test._report._dmarc 300 IN TXT \"v=DMARC1\"\n\
                 *._report._dmarc.wild 300 IN TXT \"v=DMARC1\"\n\
                 reports.test. 300 IN MX 10 mx.reports.test.\n\
                 wild 300 IN MX 10 mx.reports.test.\n\
                 mx 300 IN A 192.0.2.25\n",
            ));
            knot(&zones)
        })
        .as_ref()
}

/// The DMARC findings of `zone` as Knot serves it: (code, severity, name), sorted.
async fn dmarc_findings(zone: &str) -> Option<Vec<(&'static str, Severity, String)>> {
    let server = server()?;
    let case = Case::new(zone, "");
    let lookup = DnsLookup::with_servers(vec![server.addr], Duration::from_secs(5));
    let findings = dmarc::check(&case.ctx(&lookup)).await;
    eprintln!("{zone}: {findings:#?}");
    Some(summary(&findings))
}

#[tokio::test]
async fn correct_zone_has_no_dmarc_findings() {
    let Some(f) = dmarc_findings("dmarc-good.test").await else {
        return;
    };
    assert_eq!(f, []);
}

#[tokio::test]
async fn policy_none() {
    let Some(f) = dmarc_findings("dmarc-none.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "dmarc-policy-none",
            Severity::Warning,
            "_dmarc.dmarc-none.test.".into()
        )]
    );
}

#[tokio::test]
async fn two_dmarc_records() {
    let Some(f) = dmarc_findings("dmarc-two.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "dmarc-multiple",
            Severity::Error,
            "_dmarc.dmarc-two.test.".into()
        )]
    );
}

#[tokio::test]
async fn no_dmarc_record() {
    let Some(f) = dmarc_findings("dmarc-missing.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "dmarc-missing",
            Severity::Error,
            "_dmarc.dmarc-missing.test.".into()
        )]
    );
}

#[tokio::test]
async fn no_policy_tag_means_none() {
    // RFC 9989 §4.7 (checkdmarc agrees): not a syntax error, but p=none.
    let Some(f) = dmarc_findings("dmarc-nop.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "dmarc-policy-none",
            Severity::Warning,
            "_dmarc.dmarc-nop.test.".into()
        )]
    );
}

#[tokio::test]
async fn invalid_policy_value() {
    let Some(f) = dmarc_findings("dmarc-block.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "dmarc-syntax",
            Severity::Error,
            "_dmarc.dmarc-block.test.".into()
        )]
    );
}

#[tokio::test]
async fn external_rua_without_authorisation() {
    let Some(f) = dmarc_findings("dmarc-extrua.test").await else {
        return;
    };
    assert_eq!(
        f,
        [(
            "dmarc-report-unauthorized",
            Severity::Warning,
            "dmarc-extrua.test._report._dmarc.reports.test.".into()
        )]
    );
}

#[tokio::test]
async fn external_rua_with_authorisation_or_wildcard() {
    let Some(f) = dmarc_findings("dmarc-authorised.test").await else {
        return;
    };
    assert_eq!(f, []);
    let Some(f) = dmarc_findings("dmarc-wildcard.test").await else {
        return;
    };
    assert_eq!(f, []);
}

#[tokio::test]
async fn pct_removed_by_rfc_9989_and_partial_under_rfc_7489() {
    let Some(f) = dmarc_findings("dmarc-pct.test").await else {
        return;
    };
    assert_eq!(
        f,
        [
            (
                "dmarc-pct-partial",
                Severity::Warning,
                "_dmarc.dmarc-pct.test.".into()
            ),
            (
                "dmarc-removed-tag",
                Severity::Warning,
                "_dmarc.dmarc-pct.test.".into()
            )
        ]
    );
}
