use super::*;
use crate::finding::Severity;
use crate::testutil::{Case, Field, Match, case, check_cases};

const NAME: &str = "_dmarc.example.org.";

/// The correct zone with the DMARC record removed.
fn without_dmarc(name: &'static str) -> Case {
    case(name).remove(&["^_dmarc.example.org."])
}

/// The correct zone with the DMARC record replaced by `text` (also the case's name).
fn record(text: &'static str) -> Case {
    without_dmarc(text).add(format!("_dmarc.example.org. 300 IN TXT \"{text}\"\n"))
}

/// One finding with `code` at the DMARC name, and nothing else.
fn only(case: Case, code: &'static str, severity: Severity) -> Case {
    case.fires(code, severity, NAME).alone()
}

fn message_has(case: Case, text: &str) -> Case {
    case.first(Field::Message, Match::Contains, text)
}

check_cases!(
    presence_cases,
    [
        only(without_dmarc("missing"), "dmarc-missing", Severity::Error).first(
            Field::Fix,
            Match::Contains,
            "v=DMARC1; p=reject",
        ),
        // A TXT record that does not start with v=DMARC1 is discarded: still missing.
        only(
            record("p=reject; v=DMARC1"),
            "dmarc-missing",
            Severity::Error,
        )
        .first(Field::Seen, Match::Contains, "discard"),
        record("v=DMARC1; p=reject; rua=mailto:postmaster@example.org")
            .add("_dmarc.example.org. 300 IN TXT \"some-verification=1\"\n")
            .quiet(),
        only(
            record("v=DMARC1; p=reject")
                .add("_dmarc.example.org. 300 IN TXT \"v=DMARC1; p=none\"\n"),
            "dmarc-multiple",
            Severity::Error,
        ),
        record("v=DMARC1; p=reject").quiet(),
    ]
);

/// Invalid records, one finding each; then valid rarities.
fn syntax() -> Vec<Case> {
    let bad = [
        "v=DMARC1; p=block",
        "v=DMARC1; p=reject; sp=maybe",
        "v=DMARC1; p=reject; np=x",
        "v=DMARC1; p=reject; adkim=strict",
        "v=DMARC1; p=reject; aspf=x",
        "v=DMARC1; p=reject; fo=2",
        "v=DMARC1; p=reject; psd=yes",
        "v=DMARC1; p=reject; t=1",
        "v=DMARC1; p=reject; rua=postmaster@example.org",
        "v=DMARC1; p=reject; rua=mailto:postmaster",
        "v=DMARC1; p=reject; rua=mailto:a@example.org!10x",
        "v=DMARC1; p=reject; p=none",
        "v=DMARC1; p=reject; P=reject",
        "v=DMARC1; p=reject; garbage",
        "v=dmarc1; p=reject",
        "v = DMARC1 ; p = reject ; v = DMARC1",
    ];
    let mut cases: Vec<Case> = bad
        .into_iter()
        .map(|text| record(text).fires("dmarc-syntax", Severity::Error, NAME))
        .collect();
    cases.push(record(
            "v=DMARC1 ;p = Reject;sp=reject;np=reject;adkim=s;aspf=r;fo=0:1:d:s;psd=n;t=n;rua=mailto:postmaster@example.org!10m, mailto:dmarc@example.org;ruf=mailto:postmaster@example.org;",
        ).quiet());
    cases
}

check_cases!(syntax_cases, syntax());

check_cases!(
    tag_cases,
    [
        only(
            record("v=DMARC1; p=none"),
            "dmarc-policy-none",
            Severity::Warning,
        ),
        record("v=DMARC1; p=quarantine").quiet(),
        // RFC 9989 §4.7: no `p` means p=none (not a syntax error any more).
        message_has(
            only(record("v=DMARC1"), "dmarc-policy-none", Severity::Warning),
            "no `p` tag",
        ),
        message_has(
            only(
                record("v=DMARC1; rua=mailto:postmaster@example.org"),
                "dmarc-policy-none",
                Severity::Warning,
            ),
            "no `p` tag",
        ),
        message_has(
            only(
                record("V=DMARC1; P=reject; ADKIM=s"),
                "dmarc-tag-case",
                Severity::Info,
            ),
            "V, P, ADKIM",
        ),
        record("v=DMARC1; p=reject; adkim=s").quiet(),
        message_has(
            only(
                record("v=DMARC1; p=reject; pct=100; rf=afrf; ri=86400"),
                "dmarc-removed-tag",
                Severity::Warning,
            ),
            "pct=100, rf=afrf, ri=86400",
        ),
        // Below 100, RFC 7489 receivers apply the policy to a sample only.
        record("v=DMARC1; p=reject; pct=50")
            .fires(
                "dmarc-pct-partial",
                Severity::Warning,
                "_dmarc.example.org."
            )
            .count("dmarc-removed-tag", 1),
        record("v=DMARC1; p=none; pct=50").count("dmarc-pct-partial", 0),
        record("v=DMARC1; p=quarantine; sp=none")
            .fires(
                "dmarc-subdomain-policy-weaker",
                Severity::Warning,
                "_dmarc.example.org.",
            )
            .alone(),
        record("v=DMARC1; p=quarantine; sp=reject; np=quarantine").quiet(),
        // An out-of-range pct is noted, not a syntax error (RFC 9989 dropped the tag).
        record("v=DMARC1; p=reject; pct=150")
            .count("dmarc-removed-tag", 1)
            .alone(),
        record("v=DMARC1; p=reject; t=y").quiet(),
        only(
            record("v=DMARC1; p=reject; rue=mailto:postmaster@example.org"),
            "dmarc-unknown-tag",
            Severity::Info,
        ),
        record("v=DMARC1; p=reject; np=reject; psd=u; t=n").quiet(),
        only(
            record("v=DMARC1; adkim=s; p=reject"),
            "dmarc-p-not-second",
            Severity::Info,
        ),
    ]
);

/// Mail exchangers for the report domains of `report_cases`, which must accept mail.
const REPORT_MX: &str = "reports.example.net. 300 IN MX 10 mx.example.net.\n\
    forensic.example.com. 300 IN MX 10 mx.example.com.\n\
    reports.example.org. 300 IN MX 10 mail.example.org.\n";

check_cases!(report_cases, [
        record("v=DMARC1; p=reject; rua=mailto:dmarc@reports.example.net")
            .add(REPORT_MX)
            .fires(
                "dmarc-report-unauthorized",
                Severity::Warning,
                "example.org._report._dmarc.reports.example.net.",
            )
            .alone(),
        // ruf too, each destination domain once.
        record(
            "v=DMARC1; p=reject; rua=mailto:a@reports.example.net,mailto:b@reports.example.net; ruf=mailto:f@forensic.example.com",
        )
        .add(REPORT_MX)
        .fires_at(
            "dmarc-report-unauthorized",
            Severity::Warning,
            &[
                "example.org._report._dmarc.reports.example.net.",
                "example.org._report._dmarc.forensic.example.com.",
            ],
        ),
        record("v=DMARC1; p=reject; rua=mailto:dmarc@reports.example.net")
            .add(REPORT_MX)
            .add("example.org._report._dmarc.reports.example.net. 300 IN TXT \"v=DMARC1\"\n")
            .quiet(),
        // (A wildcard `*._report._dmarc.<domain>` is served by a real server as the exact
        // name: tests/dmarc_knot.rs covers it.)
        // Inside the domain: no authorisation needed.
        record("v=DMARC1; p=reject; rua=mailto:dmarc@reports.example.org")
            .add(REPORT_MX)
            .quiet(),
        // Report domains that accept no mail: a null MX, or no MX and no address.
        record("v=DMARC1; p=reject; rua=mailto:dmarc@reports.example.org")
            .add("reports.example.org. 300 IN MX 0 .\n")
            .fires(
                "dmarc-report-undeliverable",
                Severity::Warning,
                "reports.example.org.",
            )
            .alone(),
        record("v=DMARC1; p=reject; ruf=mailto:dmarc@reports.example.org")
            .fires(
                "dmarc-report-undeliverable",
                Severity::Warning,
                "reports.example.org.",
            )
            .alone(),
        // An address record alone is an implicit MX (RFC 5321 §5.1).
        record("v=DMARC1; p=reject; rua=mailto:dmarc@reports.example.org")
            .add("reports.example.org. 300 IN A 192.0.2.25\n")
            .quiet(),
    ]);

#[test]
fn analysis_reads_tags() {
    let a = analyse("v=DMARC1; p=reject; rua=mailto:a@x.example!10m, mailto:b@y.example");
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    assert_eq!(a.tag("p"), Some("reject"));
    assert_eq!(
        a.report_uris(),
        ["mailto:a@x.example", "mailto:b@y.example"]
    );
    assert!(!a.p_not_second);
    assert!(is_dmarc_record(b"v = DMARC1; p=none"));
    assert!(!is_dmarc_record(b"v=DMARC2; p=none"));
    assert!(!is_dmarc_record(b"p=none; v=DMARC1"));
    assert_eq!(
        mailto_domain("mailto:dmarc@Reports.Example.NET?subject=x").map(|n| n.to_string()),
        Some("reports.example.net.".into())
    );
}
