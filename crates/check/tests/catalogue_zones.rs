//! The catalogue's conditions (docs/checks.md, "Catalogue") against deliberately broken
//! zones served by ONE real Knot on loopback (the harness of `broken_zones.rs`, in
//! `zone_cases`): one case per finding code added from the rules of the standards and the
//! checks of other mail testers, and one per code whose severity the review changed. Each
//! case `caseNN.test` is the correct zone of its config with ONE defect, and the test
//! asserts the exact finding code, severity and owner name. `case00.test` has no defect: it
//! yields no error and no warning at all (the DNSSEC module may only note that the test
//! zones are unsigned), and its MTA-STS policy is fetched from a local web server.

#[macro_use]
mod zone_cases;

use mailzone_check::{Finding, Severity};
use zone_cases::{Case, DEFAULT_CONFIG, Planned, Suite, domain};

/// An SPF record of more than 512 octets, as 255-octet strings (RFC 7208 §3.4).
fn long_spf() -> String {
    let mut record = String::from("v=spf1 mx");
    for i in 1..=40 {
        record.push_str(&format!(" ip4:198.51.100.{i}/32"));
    }
    record.push_str(" -all");
    record
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

const CASES: &[Case] = &[
    zone_cases::CORRECT_CASE,
    Case {
        n: 1,
        config: DEFAULT_CONFIG,
        remove: &["\"v=spf1 mx"],
        add: "{d}. 300 IN TXT {long_spf}",
        expect: ("spf-record-too-long", Severity::Warning, "{d}."),
        policy: None,
    },
    Case {
        n: 2,
        config: DEFAULT_CONFIG,
        remove: &["\"v=spf1 mx"],
        add: "{d}. 300 IN TXT \"v=spf1 mx redirect=_spf.{d} -all\"\n_spf.{d}. 300 IN TXT \"v=spf1 -all\"",
        expect: ("spf-redirect-ignored", Severity::Warning, "{d}."),
        policy: None,
    },
    Case {
        n: 3,
        config: DEFAULT_CONFIG,
        remove: &["\"v=spf1 mx"],
        add: "{d}. 300 IN TXT \"v=spf1 mx -all a:relay.{d}\"",
        expect: ("spf-terms-after-all", Severity::Info, "{d}."),
        policy: None,
    },
    Case {
        n: 4,
        config: DEFAULT_CONFIG,
        remove: &["\"v=spf1 mx"],
        add: "{d}. 300 IN TXT \"v=spf1 mx +all\"",
        expect: ("spf-pass-all", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 5,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=reject; pct=50\"",
        expect: ("dmarc-pct-partial", Severity::Warning, "_dmarc.{d}."),
        policy: None,
    },
    Case {
        n: 6,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=reject; sp=none\"",
        expect: (
            "dmarc-subdomain-policy-weaker",
            Severity::Warning,
            "_dmarc.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 7,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=reject; np=quarantine\"",
        expect: (
            "dmarc-subdomain-policy-weaker",
            Severity::Warning,
            "_dmarc.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 8,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@reports.test\"",
        expect: (
            "dmarc-report-unauthorized",
            Severity::Warning,
            "{d}._report._dmarc.reports.test.",
        ),
        policy: None,
    },
    Case {
        n: 9,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=reject; ri=3600\"",
        expect: ("dmarc-removed-tag", Severity::Warning, "_dmarc.{d}."),
        policy: None,
    },
    Case {
        n: 10,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "",
        expect: ("mta-sts-max-age-short", Severity::Warning, "mta-sts.{d}."),
        policy: Some("version: STSv1\r\nmode: enforce\r\nmx: mail.{d}\r\nmax_age: 3600\r\n"),
    },
    Case {
        n: 11,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "",
        expect: ("mta-sts-not-enforced", Severity::Info, "mta-sts.{d}."),
        policy: Some("version: STSv1\r\nmode: testing\r\nmx: mail.{d}\r\nmax_age: 604800\r\n"),
    },
    Case {
        n: 12,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "{d}. 300 IN MX 20 192.0.2.5.",
        expect: ("mx-target-ip-literal", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 13,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "{d}. 300 IN MX 20 lan.{d}.\nlan.{d}. 300 IN A 10.1.2.3\nlan.{d}. 300 IN AAAA fd00::25",
        expect: ("mx-target-private-address", Severity::Error, "{d}."),
        policy: None,
    },
    Case {
        n: 14,
        config: DEFAULT_CONFIG,
        remove: &["IN AAAA {ip6}"],
        add: "",
        expect: ("mx-no-ipv6", Severity::Info, "{d}."),
        policy: None,
    },
    Case {
        n: 15,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "{d}. 300 IN CAA 0 iodef \"security@{d}\"",
        expect: ("caa-iodef-invalid", Severity::Warning, "{d}."),
        policy: None,
    },
    Case {
        n: 17,
        config: DEFAULT_CONFIG,
        remove: &["202611r._domainkey.{d}."],
        add: "{dkim_r_g}",
        expect: (
            "dkim-granularity",
            Severity::Warning,
            "202611r._domainkey.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 18,
        config: DEFAULT_CONFIG,
        remove: &["_smtp._tls.{d}."],
        add: "",
        expect: ("tls-rpt-missing", Severity::Warning, "_smtp._tls.{d}."),
        policy: None,
    },
    Case {
        n: 19,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=reject; rua=https://reports.{d}/dmarc\"",
        expect: ("dmarc-report-not-mailto", Severity::Warning, "_dmarc.{d}."),
        policy: None,
    },
    Case {
        n: 20,
        config: DEFAULT_CONFIG,
        remove: &["\"v=spf1 mx"],
        add: "{d}. 300 IN TXT \"v=spf1 mx include:_open.{d} -all\"\n_open.{d}. 300 IN TXT \"v=spf1 +all\"",
        expect: ("spf-pass-all", Severity::Error, "_open.{d}."),
        policy: None,
    },
    Case {
        n: 21,
        config: DEFAULT_CONFIG,
        remove: &["\"v=spf1 mx"],
        add: "{d}. 300 IN TXT \"v=spf1 redirect=_open.{d}\"\n_open.{d}. 300 IN TXT \"v=spf1 mx all\"",
        expect: ("spf-pass-all", Severity::Error, "_open.{d}."),
        policy: None,
    },
    Case {
        n: 22,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "",
        expect: (
            "dkim-key-too-long",
            Severity::Warning,
            "202611r._domainkey.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 23,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@reports.{d}\"\nreports.{d}. 300 IN MX 0 .",
        expect: (
            "dmarc-report-undeliverable",
            Severity::Warning,
            "reports.{d}.",
        ),
        policy: None,
    },
    Case {
        n: 24,
        config: DEFAULT_CONFIG,
        remove: &["_dmarc.{d}."],
        add: "_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=reject; ruf=mailto:dmarc@gone.{d}\"",
        expect: ("dmarc-report-undeliverable", Severity::Warning, "gone.{d}."),
        policy: None,
    },
    Case {
        n: 16,
        config: DEFAULT_CONFIG,
        remove: &["\"v=spf1 mx", "_dmarc.{d}."],
        add: "{d}. 300 IN TXT \"v=spf1 mx include:_closed.{d} -all exp=explain.{d}\"\n_closed.{d}. 300 IN TXT \"v=spf1 -all\"\n_dmarc.{d}. 300 IN TXT \"v=DMARC1; p=quarantine; sp=reject; np=quarantine; pct=100\"",
        expect: ("", Severity::Info, ""),
        policy: None,
    },
];

static SUITE: Suite = Suite {
    cases: CASES,
    two_exchangers: &[],
    long_rsa_key: &[22],
    add_placeholders: &[
        ("{long_spf}", |_, _| long_spf()),
        ("{dkim_r_g}", dkim_with_granularity),
    ],
};

/// The planned DKIM record of selector `202611r`, with `g=sales` appended (RFC 4871).
fn dkim_with_granularity(planned: &Planned, n: u8) -> String {
    let owner = format!("202611r._domainkey.{}.", domain(n));
    let record = planned
        .desired
        .iter()
        .find(|d| d.record.name.to_string() == owner)
        .map(|d| &d.record)
        .expect("the planner makes the DKIM record");
    let value = format!("{}; g=sales", record.data.value());
    let data = mailzone_records::RData::Txt(value.into_bytes());
    format!(
        "{owner} 300 IN TXT {}",
        mailzone_records::zonefile::rdata_presentation(&data)
    )
}

#[tokio::test]
async fn case00_correct_zone_has_no_error_and_no_warning() {
    let Some(findings) = zone_cases::findings_of(&SUITE, 0).await else {
        return;
    };
    let unexpected: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity != Severity::Info && !f.code.starts_with("dnssec-"))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    let new_codes = [
        "spf-record-too-long",
        "spf-redirect-ignored",
        "spf-terms-after-all",
        "dmarc-pct-partial",
        "dmarc-subdomain-policy-weaker",
        "mta-sts-max-age-short",
        "mta-sts-not-enforced",
        "mx-target-ip-literal",
        "mx-target-private-address",
        "mx-no-ipv6",
        "caa-iodef-invalid",
        "dkim-granularity",
        "tls-rpt-missing",
        "dmarc-report-not-mailto",
        "dkim-key-too-long",
        "dmarc-report-undeliverable",
    ];
    let noisy: Vec<&Finding> = findings
        .iter()
        .filter(|f| new_codes.contains(&f.code))
        .collect();
    assert!(noisy.is_empty(), "{noisy:#?}");
}

cases! {
    SUITE;
    case01_spf_record_too_long = 1;
    case02_spf_redirect_ignored = 2;
    case03_spf_terms_after_all = 3;
    case04_spf_pass_all_is_an_error = 4;
    case05_dmarc_pct_partial = 5;
    case06_dmarc_sp_weaker = 6;
    case07_dmarc_np_weaker = 7;
    case08_dmarc_report_unauthorized_is_a_warning = 8;
    case09_dmarc_removed_tag_is_a_warning = 9;
    case10_mta_sts_max_age_short = 10;
    case11_mta_sts_not_enforced = 11;
    case12_mx_target_ip_literal = 12;
    case13_mx_target_private_address = 13;
    case14_mx_no_ipv6 = 14;
    case15_caa_iodef_invalid = 15;
    case17_dkim_granularity = 17;
    case18_tls_rpt_missing = 18;
    case19_dmarc_report_not_mailto = 19;
    case20_spf_include_of_pass_all = 20;
    case21_spf_redirect_to_pass_all = 21;
    case22_dkim_key_too_long = 22;
    case23_dmarc_report_to_null_mx = 23;
    case24_dmarc_report_to_domain_without_mail = 24;
}

/// The shape checks stay quiet on records that merely resemble the defects: `-all` last
/// with a modifier after it, an included record ending in `-all`, `sp` as strict as `p`, a `pct` of 100.
#[tokio::test]
async fn near_misses_stay_quiet() {
    let Some(findings) = zone_cases::findings_of(&SUITE, 16).await else {
        return;
    };
    let noisy: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            [
                "spf-terms-after-all",
                "spf-redirect-ignored",
                "spf-pass-all",
                "dmarc-pct-partial",
                "dmarc-subdomain-policy-weaker",
            ]
            .contains(&f.code)
        })
        .collect();
    assert!(noisy.is_empty(), "{noisy:#?}");
}
