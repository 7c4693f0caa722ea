//! Fuzz target: the parsers of the mail records the checker reads from DNS and HTTPS, on one
//! shared corpus of SPF, DKIM, DMARC and MTA-STS texts (so each parser also gets the
//! others' syntax): `mailzone_check::spf::parse_record` (RFC 7208), `dkim::KeyRecord::parse`
//! (RFC 6376 §3.6.1), `dmarc::analyse` (RFC 7489, RFC 9989) and `mtasts::parse_policy`
//! (RFC 8461 §3.2). Each input is accepted or refused with a reason; none panics.

use mailzone_check::{dkim, dmarc, mtasts, spf};
use mailzone_fuzz::{Inputs, Outcome, cases, fuzz};

/// Tags, mechanisms, macros and keys of the four formats.
const TOKENS: &[&str] = &[
    "v=spf1 ",
    "v=DKIM1;",
    "v=DMARC1;",
    "version: STSv1\r\n",
    "ip4:",
    "ip6:",
    "a:",
    "mx:",
    "/",
    "//",
    "/33",
    "/129",
    "/0",
    "include:",
    "exists:",
    "ptr",
    "redirect=",
    "exp=",
    "%{",
    "%{i}",
    "%{l1r+-}",
    "%{d0}",
    "%{h99999999999}",
    "%{x}",
    "%%",
    "%_",
    "%-",
    "%",
    "}",
    "-all",
    "~all",
    "+all",
    "?all",
    "k=",
    "p=",
    "h=",
    "s=",
    "t=",
    "n=",
    "rsa",
    "ed25519",
    "=",
    "==",
    "AAAA",
    "p=;",
    "sp=",
    "rua=",
    "ruf=",
    "mailto:",
    "!10m",
    "!",
    ",",
    "pct=",
    "fo=",
    "adkim=",
    "np=",
    "psd=",
    "mode: ",
    "enforce",
    "testing",
    "none",
    "max_age: ",
    "mx: ",
    "*.",
    "\r\n",
    ":",
    "::",
    "1.2.3.4",
    "::ffff:1.2.3.4",
    "2001:db8::",
];

fn inputs() -> Inputs {
    Inputs::new("records", TOKENS)
}

#[test]
fn spf_parse_record_never_panics() {
    fuzz("spf", cases(20_000), inputs().text(), |text| {
        Outcome::from(&spf::parse_record(text))
    });
}

#[test]
fn dkim_key_record_parse_never_panics() {
    fuzz("dkim", cases(20_000), inputs().text(), |text| {
        Outcome::from(&dkim::KeyRecord::parse(text))
    });
}

#[test]
fn dmarc_analyse_never_panics() {
    fuzz("dmarc", cases(20_000), inputs().text(), |text| {
        let _ = dmarc::is_dmarc_record(text.as_bytes());
        let analysis = dmarc::analyse(text);
        let _ = analysis.report_uris();
        if analysis.errors.is_empty() {
            Outcome::Accepted
        } else {
            Outcome::Refused
        }
    });
}

#[test]
fn mtasts_parse_policy_never_panics() {
    fuzz("mtasts", cases(20_000), inputs().text(), |text| {
        Outcome::from(&mtasts::parse_policy(text))
    });
}
