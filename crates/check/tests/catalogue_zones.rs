//! The catalogue's conditions (docs/checks.md, "Catalogue") against deliberately broken
//! zones served by ONE real Knot on loopback, asked through [`DnsLookup`] in
//! `--nameserver` mode: one case per finding code added from the rules of the standards
//! and the checks of other mail testers, and one per code whose severity the review
//! changed. Same harness as `broken_zones.rs` (each case its own zone).
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

/// Cases whose config has a second exchanger (`backup.{d}`, priority 20).
const TWO_EXCHANGERS: &[u8] = &[];

/// Cases whose selector `202611r` signs with the 4160-bit RSA key of `tests/data`.
const LONG_RSA_KEY: &[u8] = &[22];

/// The private key file of selector `selector` in case `n`.
fn key_file(n: u8, selector: &str) -> PathBuf {
    if selector == "202611r" && LONG_RSA_KEY.contains(&n) {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dkim-rsa-4160.pem")
    } else {
        examples().join(format!("keys/{selector}.pem"))
    }
}

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
        .replace("{long_spf}", &long_spf())
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
  {{ selector = "202611r", privateKeyFile = "{key_r}" }},
] }} }}
"#,
            config = case.config,
            key_r = key_file(n, "202611r").display()
        ),
        n,
    );
    let config = mailzone_records::config::parse(&text, &examples())
        .unwrap_or_else(|e| panic!("case {n}: bad config: {e}\n{text}"));
    let keys: Vec<(String, DkimPrivateKey)> = ["202611e", "202611r"]
        .into_iter()
        .map(|s| {
            let pem = std::fs::read_to_string(key_file(n, s)).unwrap();
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
            .replace("{dkim_r_g}", &dkim_with_granularity(planned, n))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string),
    );
    lines
}

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

#[tokio::test]
async fn case00_correct_zone_has_no_error_and_no_warning() {
    let Some(findings) = findings_of(0).await else {
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
    let Some(findings) = findings_of(16).await else {
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
