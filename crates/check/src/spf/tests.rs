use std::net::Ipv6Addr;

use async_trait::async_trait;

use super::eval::*;
use super::parse::*;
use super::*;
use crate::finding::Severity;
use crate::lookup::{Answer, Lookup, Rcode};
use crate::lookup::{LookupError, ZoneLookup};
use crate::testutil::{Case, Field, Fixture, Match, assert_cases, case, check_cases};

const DOMAIN_SPF: &str = "example.org. 3600 IN TXT \"v=spf1 mx -all\"";

fn name(s: &str) -> Name {
    Name::owner(s).unwrap()
}

/// The correct zone with the domain's SPF record removed.
fn without_spf(name: impl Into<String>) -> Case {
    case(name).remove(&["\"v=spf1 mx"])
}

/// The correct zone with the domain's SPF record replaced by `spf` (also the case's name)
/// and `add` appended.
fn record(spf: &str, add: &str) -> Case {
    without_spf(spf)
        .add(format!("example.org. 300 IN TXT \"{spf}\"\n"))
        .add(add)
}

/// The findings with `code`, one at each of `names`, and nothing else.
fn only(case: Case, code: &'static str, severity: Severity, names: &[&str]) -> Case {
    case.fires_at(code, severity, names).alone()
}

fn has(case: Case, field: Field, text: &str) -> Case {
    case.first(field, Match::Contains, text)
}

const DOMAIN: &[&str] = &["example.org."];

/// Include targets `_i<n>.example.org`, each `v=spf1 ip4:198.51.100.<n> -all`.
fn include_targets(n: usize) -> (String, String) {
    let terms: Vec<String> = (1..=n)
        .map(|i| format!("include:_i{i}.example.org"))
        .collect();
    let zone: String = (1..=n)
        .map(|i| format!("_i{i}.example.org. 300 IN TXT \"v=spf1 ip4:198.51.100.{i} -all\"\n"))
        .collect();
    (terms.join(" "), zone)
}

/// The correct zone itself is run by every table ([`crate::testutil::assert_table`]); it
/// must hold the domain's SPF record.
#[test]
fn correct_zone_has_the_domain_spf() {
    let fixture = Fixture::new("");
    assert!(
        fixture.correct_zone().contains(DOMAIN_SPF),
        "{}",
        fixture.correct_zone()
    );
}

check_cases!(record_cases, [
    has(
        only(without_spf("missing"), "spf-missing", Severity::Error, DOMAIN)
            .expected("v=spf1 mx -all"),
        Field::Fix,
        "v=spf1 mx -all",
    ),
    record(
        "v=spf1 mx -all",
        "example.org. 300 IN TXT \"v=spf10 nonsense\"\nexample.org. 300 IN TXT \"google-site-verification=x\"\n",
    )
    .quiet(),
    only(
        record(
            "v=spf1 mx -all",
            "example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n",
        ),
        "spf-multiple",
        Severity::Error,
        DOMAIN,
    ),
    record(
        "v=spf1 mx include:_spf.example.org -all",
        "_spf.example.org. 300 IN TXT \"v=spf1 -all\"\n_spf.example.org. 300 IN TXT \"v=spf1 ?all\"\n",
    )
    .fires("spf-multiple", Severity::Error, "_spf.example.org."),
    record(
        "v=spf1 mx include:_spf.example.org -all",
        "_spf.example.org. 300 IN TXT \"v=spf1 -all\"\n",
    )
    .quiet(),
]);

/// Invalid records, one finding each; then valid rarities and an invalid included record.
fn syntax() -> Vec<Case> {
    let bad = [
        "v=spf1 mx foo -all",
        "v=spf1 mx ip4:192.0.2.300 -all",
        "v=spf1 mx ip4:192.0.2.0/33 -all",
        "v=spf1 mx ip4:192.0.2.0/024 -all",
        "v=spf1 mx ip6:2001:db8::/129 -all",
        "v=spf1 a:192.0.2.10 mx -all",
        "v=spf1 mx redirect=a.example.org redirect=b.example.org",
        "v=spf1 mx exists:%{x}.example.org -all",
        "v=spf1 mx exists:%{c}.example.org -all",
        "v=spf1 mx exists:%{i0}.example.org -all",
        "v=spf1 mx include -all",
        "v=spf1 mx -all:x",
        "v=spf1 mx 50% -all",
    ];
    let mut cases: Vec<Case> = bad
        .into_iter()
        .map(|spf| only(record(spf, ""), "spf-syntax", Severity::Error, DOMAIN))
        .collect();
    cases.push(
        record(
            "V=SPF1  MX/24//64  ip4:192.0.2.0/24 ip6:2001:db8::/32 a:mail.example.org/32 exists:%{ir}.%{v}._spf.%{d2} ?include:_spf.example.org  foo=bar.%{d} exp=explain.%{d} -all ",
            "_spf.example.org. 300 IN TXT \"v=spf1 -all\"\n",
        )
        .quiet(),
    );
    cases.push(
        record(
            "v=spf1 mx include:_spf.example.org -all",
            "_spf.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.1/40 -all\"\n",
        )
        .fires("spf-syntax", Severity::Error, "_spf.example.org."),
    );
    cases
}

check_cases!(syntax_cases, syntax());

/// The limits of RFC 7208 §4.6.4: ten lookups, two void lookups, ten MX names.
fn limits() -> Vec<Case> {
    let (nine, nine_zone) = include_targets(9);
    let (ten, ten_zone) = include_targets(10);
    let big_mx = |n: usize| -> String {
        (1..=n)
            .map(|i| format!("_big.example.org. 300 IN MX {i} mx{i}.example.net.\n"))
            .collect()
    };
    vec![
        // The server passes through `mx` (one lookup); other senders need 11.
        only(
            record(&format!("v=spf1 mx {ten} -all"), &ten_zone),
            "spf-too-many-lookups",
            Severity::Error,
            DOMAIN,
        )
        .first(Field::Seen, Match::StartsWith, "11 lookups"),
        record(&format!("v=spf1 mx {nine} -all"), &nine_zone).quiet(),
        has(
            record(
                "v=spf1 mx include:_a.example.org -all",
                "_a.example.org. 300 IN TXT \"v=spf1 include:_b.example.org -all\"\n\
                 _b.example.org. 300 IN TXT \"v=spf1 include:_a.example.org -all\"\n",
            )
            .fires("spf-too-many-lookups", Severity::Error, "example.org."),
            Field::Message,
            "loop",
        ),
        has(
            only(
                record(
                    "v=spf1 mx a:nx1.example.org a:nx2.example.org a:nx3.example.org -all",
                    "",
                ),
                "spf-too-many-void-lookups",
                Severity::Error,
                DOMAIN,
            ),
            Field::Seen,
            "nx3",
        ),
        record("v=spf1 mx a:nx1.example.org a:nx2.example.org -all", "").quiet(),
        only(
            record("v=spf1 mx mx:_big.example.org -all", &big_mx(11)),
            "spf-mx-too-many",
            Severity::Error,
            &["_big.example.org."],
        ),
        record("v=spf1 mx mx:_big.example.org -all", &big_mx(10)).quiet(),
    ]
}

check_cases!(limit_cases, limits());

check_cases!(
    include_cases,
    [
        only(
            record("v=spf1 mx include:_nothing.example.org -all", ""),
            "spf-include-invalid",
            Severity::Error,
            &["_nothing.example.org."],
        ),
        // With the redirect target missing, the server does not pass either.
        record("v=spf1 redirect=_nothing.example.org", "")
            .fires(
                "spf-include-invalid",
                Severity::Error,
                "_nothing.example.org.",
            )
            .count("spf-not-pass", 2),
        record(
            "v=spf1 include:_other.example.org redirect=_spf.example.org",
            "_spf.example.org. 300 IN TXT \"v=spf1 mx:example.org -all\"\n\
             _other.example.org. 300 IN TXT \"v=spf1 ip4:203.0.113.0/24 -all\"\n",
        )
        .quiet(),
    ]
);

/// A [`ZoneLookup`] that answers SERVFAIL for one name.
struct Failing {
    zone: ZoneLookup,
    broken: Name,
}

#[async_trait]
impl Lookup for Failing {
    async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
        let mut answer = self.zone.query(name, rtype).await?;
        if name == &self.broken {
            answer.rcode = Rcode::ServFail;
            answer.records.clear();
        }
        Ok(answer)
    }
}

#[tokio::test]
async fn temperror_fires_and_is_quiet_when_the_server_answers() {
    let fixture = Fixture::new("");
    let zone = fixture.zone_with(
        &["\"v=spf1 mx"],
        "example.org. 300 IN TXT \"v=spf1 include:_broken.example.org mx -all\"\n\
         _broken.example.org. 300 IN TXT \"v=spf1 -all\"\n",
    );
    case("the server answers")
        .quiet()
        .assert(&check(&fixture.ctx(&zone)).await);
    let lookup = Failing {
        zone,
        broken: name("_broken.example.org"),
    };
    // The include comes first, so the server's mail gets temperror too.
    case("SERVFAIL for an include")
        .fires("spf-temperror", Severity::Error, "_broken.example.org.")
        .count("spf-not-pass", 2)
        .assert(&check(&fixture.ctx(&lookup)).await);
}

#[tokio::test]
async fn ptr_matches_a_confirmed_name() {
    // Only `ptr`: the PTR of 192.0.2.10 is mail.example.org, which resolves back.
    let fixture = Fixture::new("");
    let lookup = fixture.zone_with(
        &["\"v=spf1 mx"],
        "example.org. 300 IN TXT \"v=spf1 ptr -all\"\n",
    );
    let outcome = evaluate_at(
        &lookup,
        "example.org",
        "192.0.2.10",
        "postmaster@example.org",
    )
    .await;
    assert_eq!(outcome.result, SpfResult::Pass, "{}", outcome.trace_text());
    let outcome = evaluate_at(
        &lookup,
        "example.org",
        "192.0.2.11",
        "postmaster@example.org",
    )
    .await;
    assert_eq!(outcome.result, SpfResult::Fail);
    assert_eq!(outcome.void_lookups, 1, "{}", outcome.trace_text());
}

check_cases!(
    address_cases,
    [
        only(
            record("v=spf1 ip4:192.0.2.99 -all", ""),
            "spf-not-pass",
            Severity::Error,
            &["example.org.", "example.org."],
        )
        .nth(0, Field::Message, Match::Contains, "192.0.2.10")
        .nth(0, Field::Message, Match::Contains, "`fail`")
        .nth(1, Field::Message, Match::Contains, "2001:db8::10")
        .nth(0, Field::Fix, Match::Contains, "ip4:192.0.2.10"),
        record("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/64 -all", "").quiet(),
        only(
            record("v=spf1 mx ptr -all", ""),
            "spf-ptr",
            Severity::Warning,
            DOMAIN,
        ),
        record("v=spf1 mx a -all", "example.org. 300 IN A 192.0.2.10\n").quiet(),
    ]
);

check_cases!(
    all_cases,
    [
        only(
            record("v=spf1 mx +all", ""),
            "spf-pass-all",
            Severity::Error,
            DOMAIN,
        ),
        only(
            record("v=spf1 mx all", ""),
            "spf-pass-all",
            Severity::Error,
            DOMAIN,
        ),
        record("v=spf1 mx -all", "").quiet(),
        only(
            record("v=spf1 mx ?all", ""),
            "spf-neutral-all",
            Severity::Info,
            DOMAIN,
        ),
        record("v=spf1 mx ~all", "").quiet(),
        only(
            record("v=spf1 mx", ""),
            "spf-no-all",
            Severity::Info,
            DOMAIN,
        ),
        record(
            "v=spf1 redirect=_spf.example.org",
            "_spf.example.org. 300 IN TXT \"v=spf1 mx:example.org -all\"\n",
        )
        .quiet(),
    ]
);

const HOST: &[&str] = &["mail.example.org."];

check_cases!(
    host_cases,
    [
        has(
            only(
                case("host missing").remove(&["\"v=spf1 a"]),
                "spf-host-missing",
                Severity::Warning,
                HOST,
            ),
            Field::Fix,
            "v=spf1 a -all",
        ),
        // The IPv4 address passes; the IPv6 one does not.
        has(
            only(
                case("the IPv6 address does not pass")
                    .remove(&["\"v=spf1 a"])
                    .add("mail.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n"),
                "spf-host-not-pass",
                Severity::Error,
                HOST,
            ),
            Field::Message,
            "2001:db8::10",
        ),
        case("both addresses pass")
            .remove(&["\"v=spf1 a"])
            .add("mail.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all\"\n")
            .quiet(),
    ]
);

#[tokio::test]
async fn host_missing_is_quiet_for_an_exchanger_outside_the_zone() {
    let mut config = crate::testutil::config("");
    config.server.mail_exchangers[0].hostname = name("mx.example.net");
    let quiet = case("an exchanger outside the zone")
        .remove(&["\"v=spf1 a", "\"v=spf1 mx"])
        .add("example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all\"\n")
        .quiet();
    assert_cases(check, &Fixture::from_config(config), &[quiet]).await;
}

// --- the evaluator ---------------------------------------------------------------

/// [`evaluate`] with the domain and the address as text.
async fn evaluate_at(lookup: &dyn Lookup, domain: &str, ip: &str, sender: &str) -> SpfOutcome {
    evaluate(lookup, &name(domain), ip.parse().unwrap(), sender).await
}

/// [`walk`] with the domain and the address as text.
async fn walk_at(lookup: &dyn Lookup, domain: &str, ip: &str, sender: &str) -> SpfOutcome {
    walk(lookup, &name(domain), ip.parse().unwrap(), sender).await
}

fn rfc_evaluator(ip: &str) -> Evaluator<'static> {
    static EMPTY: std::sync::OnceLock<ZoneLookup> = std::sync::OnceLock::new();
    let lookup = EMPTY.get_or_init(ZoneLookup::default);
    Evaluator::new(
        lookup,
        ip.parse().unwrap(),
        "strong-bad@email.example.com",
        false,
    )
}

fn expand(e: &Evaluator<'_>, spec: &str) -> String {
    let spec = domain_spec(spec, spec).unwrap_or_else(|err| panic!("{spec}: {err}"));
    e.expand(&name("email.example.com"), &spec)
}

#[test]
fn macros_expand_as_in_rfc_7208_section_7_4() {
    let e = rfc_evaluator("192.0.2.3");
    for (spec, expected) in [
        ("%{s}.x.example", "strong-bad@email.example.com.x.example"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        (
            "%{ir}.%{v}._spf.%{d2}",
            "3.2.0.192.in-addr._spf.example.com",
        ),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        (
            "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
            "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
        ),
        (
            "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
            "3.2.0.192.in-addr.strong.lp._spf.example.com",
        ),
        (
            "%{d2}.trusted-domains.example.net",
            "example.com.trusted-domains.example.net",
        ),
        ("%{S}.x.example", "strong-bad%40email.example.com.x.example"),
        ("a%%b%_c%-d.example.com", "a%b c%20d.example.com"),
    ] {
        assert_eq!(expand(&e, spec), expected, "{spec}");
    }
    let e6 = rfc_evaluator("2001:db8::cb01");
    assert_eq!(
        expand(&e6, "%{ir}.%{v}._spf.%{d2}"),
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    );
}

#[test]
fn cidr_matching() {
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    assert!(in_v4(ip("192.0.2.77"), ip("192.0.2.0"), 24));
    assert!(!in_v4(ip("192.0.3.1"), ip("192.0.2.0"), 24));
    assert!(in_v4(ip("203.0.113.9"), ip("0.0.0.0"), 0));
    assert!(in_v4(ip("192.0.2.1"), ip("192.0.2.1"), 32));
    let ip6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    assert!(in_v6(ip6("2001:db8::1"), ip6("2001:db8::"), 32));
    assert!(!in_v6(ip6("2001:db9::1"), ip6("2001:db8::"), 32));
    assert!(in_v6(ip6("::1"), ip6("::"), 0));
}

#[test]
fn records_are_selected_by_version() {
    assert!(is_spf_record(b"v=spf1"));
    assert!(is_spf_record(b"V=Spf1 -all"));
    assert!(!is_spf_record(b"v=spf10 -all"));
    assert!(!is_spf_record(b"v=spf1;-all"));
    assert!(!is_spf_record(b" v=spf1 -all"));
}

#[tokio::test]
async fn evaluation_follows_rfc_7208() {
    let zone = ZoneLookup::new(
        "example.com. 300 IN TXT \"v=spf1 -ip4:192.0.2.66 a/30 mx:mx.example.com include:_inc.example.com redirect=_red.example.com\"\n\
         example.com. 300 IN A 192.0.2.4\n\
         mx.example.com. 300 IN MX 10 smtp.example.net.\n\
         smtp.example.net. 300 IN A 198.51.100.25\n\
         smtp.example.net. 300 IN AAAA 2001:db8:25::1\n\
         _inc.example.com. 300 IN TXT \"v=spf1 ip6:2001:db8:1::/48 ~all\"\n\
         _red.example.com. 300 IN TXT \"v=spf1 exists:%{i}.allow.example.com ~all\"\n\
         203.0.113.5.allow.example.com. 300 IN A 127.0.0.2\n",
    );
    let domain = name("example.com");
    let eval = |ip: &'static str| {
        let zone = &zone;
        let domain = &domain;
        async move { evaluate(zone, domain, ip.parse().unwrap(), "someone@example.com").await }
    };
    let cases = [
        ("192.0.2.66", SpfResult::Fail, 0, 0),
        ("192.0.2.6", SpfResult::Pass, 1, 0),         // a/30
        ("198.51.100.25", SpfResult::Pass, 2, 0),     // mx
        ("2001:db8:25::1", SpfResult::Pass, 2, 1),    // mx (AAAA); `a` has no AAAA: void
        ("2001:db8:1::9", SpfResult::Pass, 3, 1),     // include
        ("203.0.113.5", SpfResult::Pass, 5, 0),       // redirect → exists
        ("203.0.113.6", SpfResult::SoftFail, 5, 1),   // redirect → ~all; exists void
        ("::ffff:192.0.2.6", SpfResult::Pass, 1, 0),  // IPv4-mapped: a/30
        ("2001:db8:2::1", SpfResult::SoftFail, 5, 2), // `a` and `exists` void
    ];
    for (ip, result, lookups, voids) in cases {
        let o = eval(ip).await;
        assert_eq!(
            (o.result, o.lookups, o.void_lookups),
            (result, lookups, voids),
            "{ip}:\n{}",
            o.trace_text()
        );
    }
    // The walk visits every reachable term: a, mx, include, redirect, exists.
    let w = walk_at(&zone, "example.com", "192.0.2.200", "x@example.com").await;
    assert_eq!(w.lookups, 5, "{}", w.trace_text());
    assert_eq!(w.result, SpfResult::Neutral);
    assert!(w.problems.is_empty());
}

#[tokio::test]
async fn redirect_is_ignored_beside_all_and_include_none_is_permerror() {
    let zone = ZoneLookup::new(
        "a.example. 300 IN TXT \"v=spf1 -all redirect=b.example\"\n\
         b.example. 300 IN TXT \"v=spf1 +all\"\n\
         c.example. 300 IN TXT \"v=spf1 include:nothing.example +all\"\n\
         d.example. 300 IN TXT \"v=spf1 include:b.example -all\"\n",
    );
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let a = evaluate(&zone, &name("a.example"), ip, "x@a.example").await;
    assert_eq!((a.result, a.lookups), (SpfResult::Fail, 0));
    let c = evaluate(&zone, &name("c.example"), ip, "x@c.example").await;
    assert_eq!(c.result, SpfResult::PermError);
    assert_eq!(c.problems[0].kind, ProblemKind::NoRecord);
    let d = evaluate(&zone, &name("d.example"), ip, "x@d.example").await;
    assert_eq!((d.result, d.lookups), (SpfResult::Pass, 1));
    let none = evaluate(&zone, &name("nothing.example"), ip, "x@nothing.example").await;
    assert_eq!(none.result, SpfResult::None);
}

#[tokio::test]
async fn the_eleventh_lookup_is_a_permerror_when_evaluating() {
    let (terms, zone) = include_targets(11);
    // Two character-strings: the record is longer than 255 bytes.
    let (first, second) = terms.split_at(terms.len() / 2);
    let zone = ZoneLookup::new(&format!(
        "example.org. 300 IN TXT \"v=spf1 {first}\" \"{second} -all\"\n{zone}"
    ));
    let o = evaluate_at(&zone, "example.org", "192.0.2.1", "x@example.org").await;
    assert_eq!((o.result, o.lookups), (SpfResult::PermError, 11));
    assert_eq!(o.problems[0].kind, ProblemKind::TooManyLookups);
    // The tenth include's address still passes: the limit is not reached.
    let o = evaluate_at(&zone, "example.org", "198.51.100.10", "x@example.org").await;
    assert_eq!((o.result, o.lookups), (SpfResult::Pass, 10));
    // The walk counts them all.
    let w = walk_at(&zone, "example.org", "192.0.2.1", "x@example.org").await;
    assert_eq!((w.result, w.lookups), (SpfResult::PermError, 11));
}
