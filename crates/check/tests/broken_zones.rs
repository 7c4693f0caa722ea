//! `mailzone check` against deliberately broken zones served by ONE real Knot on loopback,
//! asked through [`DnsLookup`] in `--nameserver` mode (the authoritative-discovery mode
//! needs the Internet's root and cannot run offline; its resolv.conf parsing is unit-tested
//! in `dns_lookup.rs`).
//!
//! Every case is its own zone `caseNN.test` with its own server addresses
//! (`192.0.2.1NN`, `2001:db8::1NN`, so each case has its own PTR records in the served
//! reverse zones), serving the complete correct record set that the planner produces for
//! the case's config, with ONE defect; the test asserts the exact finding code, severity
//! and owner name. `case00.test` has no defect: it yields no error and no warning at all
//! (the DNSSEC module may only note that the test zones are unsigned), and its MTA-STS
//! policy is fetched from a local web server.
//!
//! Zone `test` is served too, so that CAA tree climbing (RFC 8659 §3) and the organisational
//! domain lookups of other checks get answers instead of REFUSED. Defects Knot refuses to
//! load (a CNAME at the apex, TXT strings over 255 bytes) are covered by unit tests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use mailzone_check::lookup::Lookup;
use mailzone_check::ptr::reverse_name;
use mailzone_check::{CheckOptions, DnsLookup, DomainContext, Finding, Severity};
use mailzone_records::dkim::DkimPrivateKey;
use mailzone_records::{Config, DesiredRecord, PlanInput};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

/// One case: a config variation, lines removed from the correct zone (an owner-name prefix
/// or any substring) and lines added; `{d}` is the case's domain, `{ip4}`/`{ip6}` its server
/// addresses, `{rev4}`/`{rev6}` their reverse names.
struct Case {
    n: u8,
    config: &'static str,
    remove: &'static [&'static str],
    add: &'static str,
    /// (code, severity, owner name) the check must report.
    expect: (&'static str, Severity, &'static str),
    /// Fetch the MTA-STS policy from the local web server, which serves this text (`{d}`
    /// replaced); `None`: no fetch.
    policy: Option<&'static str>,
}

const DEFAULT_CONFIG: &str = "caa = { issuers = [\"letsencrypt.org\"] }";

const CORRECT_POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.{d}\r\nmax_age: 604800\r\n";

const CASES: &[Case] = &[
    Case {
        n: 0,
        config: DEFAULT_CONFIG,
        remove: &[],
        add: "",
        expect: ("", Severity::Info, ""),
        policy: Some(CORRECT_POLICY),
    },
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

/// Cases whose config has a second exchanger (`backup.{d}`, priority 20).
const TWO_EXCHANGERS: &[u8] = &[22];

fn domain(n: u8) -> String {
    format!("case{n:02}.test")
}

fn ip4(n: u8) -> IpAddr {
    format!("192.0.2.{}", 100 + u16::from(n)).parse().unwrap()
}

fn ip6(n: u8) -> IpAddr {
    format!("2001:db8::{:x}", 0x100 + u16::from(n))
        .parse()
        .unwrap()
}

fn fill(template: &str, n: u8) -> String {
    template
        .replace("{d}", &domain(n))
        .replace("{ip4}", &ip4(n).to_string())
        .replace("{ip6}", &ip6(n).to_string())
        .replace("{rev4}", &reverse_name(ip4(n)).to_string())
        .replace("{rev6}", &reverse_name(ip6(n)).to_string())
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap()
}

/// A case's config, its DKIM keys and its desired records.
struct Planned {
    config: Config,
    keys: Vec<(String, DkimPrivateKey)>,
    desired: Vec<DesiredRecord>,
}

fn plan(case: &Case) -> Planned {
    let n = case.n;
    let backup = if TWO_EXCHANGERS.contains(&n) {
        "[[server.mailExchangers]]\nhostname = \"backup.{d}\"\npriority = 20\n"
    } else {
        ""
    };
    let text = fill(
        &format!(
            r#"
[server]
hostname = "mail.{{d}}"
ipv4 = ["{{ip4}}"]
ipv6 = ["{{ip6}}"]

[[server.mailExchangers]]
hostname = "mail.{{d}}"
priority = 10
{backup}
[server.services]
imap = {{ cleartext = false }}
submission = {{ cleartext = true }}
jmap = {{}}

[domain."{{d}}"]
dmarc = {{ policy = "reject" }}
mtaSts = {{ mode = "enforce", maxAge = 604800 }}
{config}
dkimManagement = {{ manual = {{ keys = [
  {{ selector = "202611e", privateKeyFile = "keys/202611e.pem" }},
  {{ selector = "202611r", privateKeyFile = "keys/202611r.pem" }},
] }} }}
"#,
            config = case.config
        ),
        n,
    );
    let config = mailzone_records::config::parse(&text, &examples())
        .unwrap_or_else(|e| panic!("case {n}: bad config: {e}\n{text}"));
    let keys: Vec<(String, DkimPrivateKey)> = ["202611e", "202611r"]
        .into_iter()
        .map(|s| {
            let pem = std::fs::read_to_string(examples().join(format!("keys/{s}.pem"))).unwrap();
            (s.to_string(), DkimPrivateKey::from_pem(&pem).unwrap())
        })
        .collect();
    let selector_keys =
        mailzone_records::planner::selector_keys(keys.iter().map(|(s, k)| (s.as_str(), k)));
    let desired = mailzone_records::plan(PlanInput {
        server: &config.server,
        domain: &config.domains[0],
        dkim_keys: &selector_keys,
        tlsa: None,
    })
    .unwrap();
    Planned {
        config,
        keys,
        desired,
    }
}

/// The zone lines of a case: the correct records and PTRs, minus `remove`, plus `add`.
fn zone_lines(case: &Case, planned: &Planned) -> Vec<String> {
    let n = case.n;
    let host = format!("mail.{}.", domain(n));
    let mut lines: Vec<String> = planned
        .desired
        .iter()
        .map(|d| {
            format!(
                "{} {} IN {} {}",
                d.record.name,
                d.record.ttl,
                d.record.data.rtype(),
                mailzone_records::zonefile::rdata_presentation(&d.record.data)
            )
        })
        .collect();
    lines.push(format!("{} 300 IN PTR {host}", reverse_name(ip4(n))));
    lines.push(format!("{} 300 IN PTR {host}", reverse_name(ip6(n))));
    let remove: Vec<String> = case.remove.iter().map(|r| fill(r, n)).collect();
    lines.retain(|l| {
        !remove
            .iter()
            .any(|r| l.starts_with(r.as_str()) || l.contains(r.as_str()))
    });
    lines.extend(
        fill(case.add, n)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string),
    );
    lines
}

const REVERSE4: &str = "2.0.192.in-addr.arpa";
const REVERSE6: &str = "8.b.d.0.1.0.0.2.ip6.arpa";

struct Harness {
    server: DnsServer,
    planned: HashMap<u8, Planned>,
}

fn harness() -> Option<&'static Harness> {
    static HARNESS: OnceLock<Option<Harness>> = OnceLock::new();
    HARNESS
        .get_or_init(|| {
            if !ServerKind::Knot.available() {
                return None;
            }
            let mut planned = HashMap::new();
            let mut zones: Vec<ZoneSpec> = vec![ZoneSpec::empty("test")];
            let (mut rev4, mut rev6) = (String::new(), String::new());
            for case in CASES {
                let p = plan(case);
                let mut forward = String::new();
                for line in zone_lines(case, &p) {
                    let owner = line.split_whitespace().next().unwrap_or("");
                    let target = if owner.ends_with(&format!("{REVERSE4}.")) {
                        &mut rev4
                    } else if owner.ends_with(&format!("{REVERSE6}.")) {
                        &mut rev6
                    } else {
                        &mut forward
                    };
                    target.push_str(&line);
                    target.push('\n');
                }
                zones.push(ZoneSpec::new(&domain(case.n), &forward));
                planned.insert(case.n, p);
            }
            zones.push(ZoneSpec::new(REVERSE4, &rev4));
            zones.push(ZoneSpec::new(REVERSE6, &rev6));
            let key = TsigKey::generate("mailzone-key");
            let server =
                DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default())
                    .unwrap_or_else(|e| panic!("Knot does not start: {e}"));
            Some(Harness { server, planned })
        })
        .as_ref()
}

/// A loopback web server answering every GET with 200 and `body`; the URL template for
/// [`CheckOptions::mta_sts_url`].
async fn web_server(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/{{domain}}/.well-known/mta-sts.txt")
}

async fn findings_of(n: u8) -> Option<Vec<Finding>> {
    let harness = harness()?;
    let case = CASES.iter().find(|c| c.n == n).unwrap();
    let planned = &harness.planned[&n];
    let server: SocketAddr = harness.server.addr;
    let lookup = DnsLookup::with_servers(vec![server], Duration::from_secs(3));
    let mut options = CheckOptions {
        fetch_mta_sts: false,
        ..CheckOptions::default()
    };
    if let Some(policy) = case.policy {
        options.fetch_mta_sts = true;
        options.mta_sts_url = Some(web_server(fill(policy, n)).await);
    }
    let lookup: &dyn Lookup = &lookup;
    let ctx = DomainContext {
        server: &planned.config.server,
        domain: &planned.config.domains[0],
        desired: &planned.desired,
        dkim_keys: &planned.keys,
        tlsa: None,
        lookup,
        options: &options,
    };
    Some(mailzone_check::run::check_domain(&ctx).await)
}

async fn run_case(n: u8) {
    let Some(findings) = findings_of(n).await else {
        return;
    };
    let case = CASES.iter().find(|c| c.n == n).unwrap();
    let (code, severity, name) = case.expect;
    let name = fill(name, n);
    assert!(
        findings
            .iter()
            .any(|f| f.code == code && f.severity == severity && f.name == name),
        "case {n}: expected {code} ({severity:?}) at {name}; got {findings:#?}"
    );
}

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
    let Some(findings) = findings_of(0).await else {
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

macro_rules! cases {
    ($($test:ident = $n:expr;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                run_case($n).await;
            }
        )*
    };
}

cases! {
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
    let Some(findings) = findings_of(8).await else {
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
