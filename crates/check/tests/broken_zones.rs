//! `mailzone check` against deliberately broken zones served by ONE real Knot on loopback
//! (the harness is `zone_cases`): each case `caseNN.test` is the correct zone of its config
//! with ONE defect of the record, MX, SRV, autoconfig, CAA, zone, MTA-STS, TLS-RPT or PTR
//! checks, and the test asserts the exact finding code, severity and owner name.
//! `case00.test` has no defect: it yields no error and no warning at all (the DNSSEC module
//! may only note that the test zones are unsigned), and its MTA-STS policy is fetched from
//! a local web server. Defects Knot refuses to load (a CNAME at the apex, TXT strings over
//! 255 bytes) are covered by unit tests.

#[macro_use]
mod zone_cases;

use mailzone_check::{Finding, Severity};
use zone_cases::{Case, DEFAULT_CONFIG, Suite};

const CASES: &[Case] = &[
    zone_cases::CORRECT_CASE,
    Case {
        n: 1,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "",
        expect: ("record-missing", Severity::Error, "_dmarc.{d}."),
        policy: None,
    },
    Case {
        n: 2,
        config: DEFAULT_CONFIG,
        remove: &["{d}. 3600 IN MX"],
        add: "{d}. 300 IN MX 20 mail.{d}.",
        expect: ("record-wrong-value", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 3,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "mail.{d}. 300 IN A 192.0.2.99",
        expect: ("record-extra-value", Severity::Error, "mail.{d}."),
        policy: None,
    },
    Case {
        n: 4,
        config: DEFAULT_CONFIG,
        remove: &["{d}. 3600 IN MX"],
        add: "{d}. 300 IN MX 10 mx.{d}.\nmx.{d}. 300 IN CNAME mail.{d}.",
        expect: ("mx-target-cname", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 5,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "{d}. 300 IN MX 20 backup.{d}.",
        expect: ("mx-target-no-address", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 6,
        config: DEFAULT_CONFIG,
        remove: &["{d}. 3600 IN MX"],
        add: "{d}. 300 IN MX 0 .",
        expect: ("mx-null", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 7,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "{d}. 300 IN MX 20 relay.{d}.\nrelay.{d}. 300 IN A 192.0.2.77",
        expect: ("mx-unexpected-host", Severity::Warning, "{d}."),
        policy: None,
    },
    Case {
        n: 8,
        config: DEFAULT_CONFIG,
        remove: &["_imaps._tcp.{d}."],
        add: "_imaps._tcp.{d}. 300 IN SRV 0 1 143 mail.{d}.",
        expect: ("srv-wrong-endpoint", Severity::Error, "_imaps._tcp.{d}."),
        policy: None,
    },
    Case {
        n: 9,
        config: DEFAULT_CONFIG,
        remove: &["_submissions._tcp.{d}."],
        add: "_submissions._tcp.{d}. 300 IN SRV 0 1 465 smtp.{d}.\nsmtp.{d}. 300 IN CNAME mail.{d}.",
        expect: (
            "srv-target-cname",
            Severity::Error,
            "_submissions._tcp.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 10,
        config: DEFAULT_CONFIG,
        remove: &["_pop3s._tcp.{d}."],
        add: "_pop3s._tcp.{d}. 300 IN SRV 0 1 995 mail.{d}.",
        expect: (
            "srv-advertises-unoffered",
            Severity::Warning,
            "_pop3s._tcp.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 11,
        config: DEFAULT_CONFIG,
        remove: &["autoconfig.{d}."],
        add: "autoconfig.{d}. 300 IN CNAME www.{d}.\nwww.{d}. 300 IN A 192.0.2.200",
        expect: (
            "autoconfig-wrong-host",
            Severity::Warning,
            "autoconfig.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 12,
        config: DEFAULT_CONFIG,
        remove: &["autodiscover.{d}."],
        add: "",
        expect: (
            "autoconfig-unresolved",
            Severity::Warning,
            "autodiscover.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 13,
        config: DEFAULT_CONFIG,
        remove: &["IN CAA 0 issue"],
        add: "{d}. 300 IN CAA 0 issue \"digicert.com\"",
        expect: ("caa-forbids-ca", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 14,
        config: "",
        remove: &[],
        add: "",
        expect: ("caa-missing", Severity::Info, "{d}."),
        policy: None,
    },
    Case {
        n: 15,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "{d}. 300 IN CAA 128 tbs \"unknown\"",
        expect: ("caa-unknown-critical", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 16,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "{d}. 300 IN TXT \"v=spf1 a -all\"",
        expect: ("zone-multiple-records", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 17,
        config: DEFAULT_CONFIG,
        remove: &["_mta-sts.{d}."],
        add: "_mta-sts.{d}. 300 IN TXT \"v=STSv1; id=2024-01-01\"",
        expect: ("mta-sts-txt-syntax", Severity::Error, "_mta-sts.{d}."),
        policy: None,
    },
    Case {
        n: 18,
        config: DEFAULT_CONFIG,
        remove: &["_smtp._tls.{d}."],
        add: "_smtp._tls.{d}. 300 IN TXT \"v=TLSRPTv1; rua=tls@{d}\"",
        expect: ("tls-rpt-syntax", Severity::Error, "_smtp._tls.{d}."),
        policy: None,
    },
    Case {
        n: 19,
        config: DEFAULT_CONFIG,
        remove: &["{rev4}"],
        add: "",
        expect: ("ptr-missing", Severity::Error, "{rev4}"),
        policy: None,
    },
    Case {
        n: 20,
        config: DEFAULT_CONFIG,
        remove: &["{rev4}"],
        add: "{rev4} 300 IN PTR host.{d}.\nhost.{d}. 300 IN A 192.0.2.250",
        expect: ("ptr-not-confirmed", Severity::Error, "{rev4}"),
        policy: None,
    },
    Case {
        n: 21,
        config: DEFAULT_CONFIG,
        remove: &["{rev6}"],
        add: "{rev6} 300 IN PTR static.{d}.\nstatic.{d}. 300 IN AAAA {ip6}",
        expect: ("ptr-not-hostname", Severity::Warning, "{rev6}"),
        policy: None,
    },
    Case {
        n: 22,
        config: DEFAULT_CONFIG,
        remove: &["{d}. 3600 IN MX"],
        add: "{d}. 300 IN MX 10 backup.{d}.\n{d}. 300 IN MX 20 mail.{d}.",
        expect: ("mx-priority-order", Severity::Warning, "{d}."),
        policy: None,
    },
    Case {
        n: 23,
        config: DEFAULT_CONFIG,
        remove: &["_jmap._tcp.{d}."],
        add: "_jmap._tcp.{d}. 300 IN SRV 0 1 443 jmap.{d}.",
        expect: ("srv-target-no-address", Severity::Error, "_jmap._tcp.{d}."),
        policy: None,
    },
    Case {
        n: 24,
        config: DEFAULT_CONFIG,
        remove: &["ua-auto-config.{d}. "],
        add: "ua-auto-config.{d}. 300 IN CNAME web.elsewhere.example.",
        expect: ("dns-lookup-failed", Severity::Error, "ua-auto-config.{d}."),
        policy: None,
    },
    Case {
        n: 25,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "",
        expect: (
            "mta-sts-policy-mx-uncovered",
            Severity::Error,
            "mta-sts.{d}.",
        ),
        policy: Some("version: STSv1\r\nmode: enforce\r\nmx: *.mail.{d}\r\nmax_age: 604800\r\n"),
    },
    Case {
        n: 26,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "",
        expect: ("mta-sts-policy-invalid", Severity::Error, "mta-sts.{d}."),
        policy: Some("version: STSv1\r\nmode: enforce\r\n"),
    },
    Case {
        n: 27,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "",
        expect: ("mta-sts-policy-differs", Severity::Warning, "mta-sts.{d}."),
        policy: Some("version: STSv1\r\nmode: testing\r\nmx: mail.{d}\r\nmax_age: 86400\r\n"),
    },
];

static SUITE: Suite = Suite {
    cases: CASES,
    two_exchangers: &[22],
    long_rsa_key: &[],
    add_placeholders: &[],
};

/// Codes of the checks this file is about (the other modules have their own tests).
fn is_ours(code: &str) -> bool {
    mailzone_check::codes::all().iter().any(|c| c.id == code)
        && [
            "record-",
            "mx-",
            "srv-",
            "autoconfig-",
            "caa-",
            "zone-",
            "dns-",
            "mta-sts-",
            "tls-rpt-",
            "ptr-",
        ]
        .iter()
        .any(|p| code.starts_with(p))
}

#[tokio::test]
async fn case00_correct_zone_has_no_error_and_no_warning() {
    let Some(findings) = zone_cases::findings_of(&SUITE, 0).await else {
        return;
    };
    let unexpected: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            is_ours(f.code)
                || f.severity != Severity::Info
                    && !(f.code.starts_with("dnssec-") || f.code.starts_with("dane-"))
        })
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert!(
        findings.iter().all(|f| f.severity != Severity::Error),
        "{findings:#?}"
    );
}

cases! {
    SUITE;
    case01_record_missing = 1;
    case02_record_wrong_value = 2;
    case03_record_extra_value = 3;
    case04_mx_target_cname = 4;
    case05_mx_target_no_address = 5;
    case06_mx_null = 6;
    case07_mx_unexpected_host = 7;
    case08_srv_wrong_endpoint = 8;
    case09_srv_target_cname = 9;
    case10_srv_advertises_unoffered = 10;
    case11_autoconfig_wrong_host = 11;
    case12_autoconfig_unresolved = 12;
    case13_caa_forbids_ca = 13;
    case14_caa_missing = 14;
    case15_caa_unknown_critical = 15;
    case16_zone_multiple_records = 16;
    case17_mta_sts_txt_syntax = 17;
    case18_tls_rpt_syntax = 18;
    case19_ptr_missing = 19;
    case20_ptr_not_confirmed = 20;
    case21_ptr_not_hostname_ipv6 = 21;
    case22_mx_priority_order = 22;
    case23_srv_target_no_address = 23;
    case24_dns_lookup_failed = 24;
    case25_mta_sts_policy_mx_uncovered = 25;
    case26_mta_sts_policy_invalid = 26;
    case27_mta_sts_policy_differs = 27;
}

/// Each case's own codes fire only where the defect is: the correct parts of a broken zone
/// stay quiet (e.g. a wrong SRV port is not also a PTR problem).
#[tokio::test]
async fn defects_do_not_leak_into_unrelated_checks() {
    let Some(findings) = zone_cases::findings_of(&SUITE, 8).await else {
        return;
    };
    let ours: Vec<&Finding> = findings.iter().filter(|f| is_ours(f.code)).collect();
    let codes: Vec<&str> = ours.iter().map(|f| f.code).collect();
    assert_eq!(
        codes,
        ["record-wrong-value", "srv-wrong-endpoint"],
        "{ours:#?}"
    );
}
