use super::*;
use crate::finding::Severity;
use crate::testutil::web::web_server;
use crate::testutil::{Field, Fixture, Match, case, check_cases};

fn name(s: &str) -> Name {
    Name::host(s).unwrap()
}

#[test]
fn policies_parse_per_rfc_8461() {
    let p = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\nmx: *.backup.example.org\r\nmax_age: 604800\r\n",
        )
        .unwrap();
    assert_eq!(p.mode, MtaStsMode::Enforce);
    assert_eq!(p.max_age, 604800);
    assert_eq!(p.mx, ["mail.example.org", "*.backup.example.org"]);
    // LF line ends, extension keys and spacing are accepted.
    let p = parse_policy("version:STSv1\nmode: none\nmax_age:86400\nx-ext: 1\n").unwrap();
    assert_eq!(p.mode, MtaStsMode::None);
    for (bad, why) in [
        ("mode: enforce\nmx: a.example\nmax_age: 1\n", "version"),
        (
            "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
            "STSv1",
        ),
        (
            "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
            "mode: strict",
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 1\n",
            "no `mx` line",
        ),
        ("version: STSv1\nmode: enforce\nmx: a.example\n", "max_age"),
        (
            "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
            "above",
        ),
        (
            "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
            "not a number",
        ),
        (
            "version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 1\n",
            "more than once",
        ),
        ("<html>not found</html>", "key: value"),
        (
            "version: STSv1\nmode: enforce\nmx: a b\nmax_age: 1\n",
            "not a host",
        ),
    ] {
        let e = parse_policy(bad).unwrap_err();
        assert!(e.contains(why), "{bad:?}: {e}");
    }
}

#[test]
fn wildcards_match_exactly_one_label() {
    assert!(mx_matches("mail.example.org", &name("mail.example.org")));
    assert!(mx_matches("MAIL.example.org.", &name("mail.example.org")));
    assert!(mx_matches("*.example.org", &name("mail.example.org")));
    assert!(!mx_matches("*.example.org", &name("example.org")));
    assert!(!mx_matches("*.example.org", &name("a.b.example.org")));
    assert!(!mx_matches("mail.example.org", &name("mx.example.org")));
    assert!(!mx_matches("*.example.org", &name("mail.example.org.evil")));
}

#[test]
fn txt_syntax() {
    assert_eq!(txt_error("v=STSv1; id=20240101T000000"), None);
    assert_eq!(txt_error("v=STSv1;id=abc;"), None);
    assert_eq!(txt_error("v=STSv1; id=abc; ext=1"), None);
    assert!(txt_error("v=STSv1").unwrap().contains("missing"));
    assert!(
        txt_error("v=STSv1; id=2024-01-01")
            .unwrap()
            .contains("letters and digits")
    );
    assert!(txt_error(&format!("v=STSv1; id={}", "a".repeat(33))).is_some());
    assert!(txt_error("id=abc; v=STSv1").unwrap().contains("start"));
    assert_eq!(tlsrpt_error("v=TLSRPTv1; rua=mailto:tls@example.org"), None);
    assert_eq!(
        tlsrpt_error("v=TLSRPTv1;rua=mailto:a@example.org,https://r.example.net/tls"),
        None
    );
    assert!(tlsrpt_error("v=TLSRPTv1").unwrap().contains("missing"));
    assert!(
        tlsrpt_error("v=TLSRPTv1; rua=tls@example.org")
            .unwrap()
            .contains("not a mailto")
    );
    assert!(tlsrpt_error("v=TLSRPTv1; rua=http://r.example.net").is_some());
}

check_cases!(
    record_cases,
    [
        case("malformed STS record")
            .remove(&["^_mta-sts"])
            .add("_mta-sts.example.org. 300 IN TXT \"v=STSv1; id=2024-01-01\"\n")
            .fires(
                "mta-sts-txt-syntax",
                Severity::Error,
                "_mta-sts.example.org.",
            )
            .first(
                Field::Fix,
                Match::StartsWith,
                "replace it by _mta-sts.example.org. 3600 IN TXT \"v=STSv1; id=",
            ),
        case("malformed TLSRPT record")
            .remove(&["^_smtp._tls"])
            .add("_smtp._tls.example.org. 300 IN TXT \"v=TLSRPTv1; rua=tls@example.org\"\n")
            .fires("tls-rpt-syntax", Severity::Error, "_smtp._tls.example.org."),
        case("duplicates are left to the zone check")
            .add("_mta-sts.example.org. 300 IN TXT \"v=STSv1; bad\"\n")
            .quiet(),
    ]
);

async fn fetched(
    f: &mut Fixture,
    zone: &crate::lookup::ZoneLookup,
    status: &'static str,
    body: &str,
) -> Vec<Finding> {
    f.options.fetch_mta_sts = true;
    f.options.mta_sts_url = Some(web_server(status, body.to_string()).await);
    check(&f.ctx(zone)).await
}

fn served_policy(f: &Fixture) -> String {
    mailzone_records::mtasts::policy_text(&f.config.domains[0].mta_sts)
}

const POLICY: &str = "mta-sts.example.org.";

#[tokio::test]
async fn fetched_policy_cases() {
    let mut f = Fixture::new("");
    let zone = f.zone_with(&[], "");
    let policy = served_policy(&f);
    let cases = [
        (
            "200 OK",
            policy.clone(),
            case("a policy that matches").quiet(),
        ),
        (
            "200 OK",
            policy.replace("mx: mail.example.org", "mx: *.mail.example.org"),
            case("a policy not covering an MX")
                .fires("mta-sts-policy-mx-uncovered", Severity::Error, POLICY)
                .fires("mta-sts-policy-differs", Severity::Warning, POLICY),
        ),
        // A wildcard covering the host is fine (and differs from mailzone's text only).
        (
            "200 OK",
            policy.replace("mx: mail.example.org", "mx: *.example.org"),
            case("a wildcard covering the host").silent("mta-sts-policy-mx-uncovered"),
        ),
        (
            "200 OK",
            "<html>welcome</html>".to_string(),
            case("invalid policy").fires("mta-sts-policy-invalid", Severity::Error, POLICY),
        ),
        (
            "404 Not Found",
            "no".to_string(),
            case("unreachable policy")
                .fires("mta-sts-policy-unreachable", Severity::Info, POLICY)
                .first(Field::Seen, Match::Contains, "HTTP 404"),
        ),
        // A redirect is not followed.
        (
            "301 Moved Permanently",
            String::new(),
            case("a redirect").first(Field::Seen, Match::Contains, "redirects are not followed"),
        ),
    ];
    for (status, body, case) in &cases {
        case.assert(&fetched(&mut f, &zone, status, body).await);
    }
}

#[tokio::test]
async fn policy_without_a_listener_is_unreachable() {
    let mut f = Fixture::new("");
    let zone = f.zone_with(&[], "");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    f.options.fetch_mta_sts = true;
    f.options.mta_sts_url = Some(format!("http://127.0.0.1:{port}/x"));
    case("nobody listening")
        .fires("mta-sts-policy-unreachable", Severity::Info, POLICY)
        .assert(&check(&f.ctx(&zone)).await);
}

#[test]
fn the_default_url_is_rfc_8461s() {
    assert_eq!(
        policy_url(None, &name("example.org")),
        "https://mta-sts.example.org/.well-known/mta-sts.txt"
    );
}

/// The policy host is resolved through the check's lookup, never the system's resolver:
/// a host the zone does not resolve is not fetched, and an address outside loopback and
/// global unicast is not connected to; both say why.
#[tokio::test]
async fn the_policy_host_is_resolved_through_the_lookup_only() {
    let mut f = Fixture::new("");
    f.options.fetch_mta_sts = true;
    f.options.mta_sts_url = None;
    let zone = f.zone_with(&["^mta-sts."], "");
    case("policy host not in the zone")
        .fires("mta-sts-policy-unreachable", Severity::Info, POLICY)
        .first(
            Field::Seen,
            Match::Contains,
            "the policy host mta-sts.example.org. does not resolve through the servers asked (A: NXDOMAIN; AAAA: NXDOMAIN)",
        )
        .assert(&check(&f.ctx(&zone)).await);
    let zone = f.zone_with(
        &["^mta-sts."],
        "mta-sts.example.org. 300 IN A 192.0.2.80\nmta-sts.example.org. 300 IN AAAA fd00::80\n",
    );
    case("policy host at documentation and unique-local addresses")
        .fires("mta-sts-policy-unreachable", Severity::Info, POLICY)
        .first(
            Field::Seen,
            Match::Contains,
            "not connecting: 192.0.2.80 is a documentation address (RFC 5737), not a globally reachable address; fd00::80 is a unique local address (RFC 4193)",
        )
        .assert(&check(&f.ctx(&zone)).await);
    // A URL naming a host resolves it through the lookup too (here to loopback, where
    // nothing listens on the port: connection refused, not a resolver error).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    f.options.mta_sts_url = Some(format!("http://policy.example.org:{port}/{{domain}}"));
    let zone = f.zone_with(&[], "policy.example.org. 300 IN A 127.0.0.1\n");
    let findings = check(&f.ctx(&zone)).await;
    let seen = findings
        .iter()
        .find(|x| x.code == "mta-sts-policy-unreachable")
        .and_then(|x| x.seen.clone())
        .expect("the fetch failed");
    assert!(!seen.contains("not resolved"), "{seen}");
    assert!(seen.contains("onnect"), "{seen}");
}
