//! The harness shared by the broken-zone tests (`broken_zones.rs`, `catalogue_zones.rs`):
//! deliberately broken zones served by ONE real Knot on loopback per test binary, asked
//! through [`DnsLookup`] in `--nameserver` mode (the authoritative-discovery mode needs the
//! Internet's root and cannot run offline; its resolv.conf parsing is unit-tested in
//! `dns_lookup.rs`).
//!
//! Every case is its own zone `caseNN.test` with its own server addresses
//! (`192.0.2.1NN`, `2001:db8::1NN`, so each case has its own PTR records in the served
//! reverse zones), serving the complete correct record set that the planner produces for
//! the case's config, with ONE defect; a test asserts the exact finding code, severity
//! and owner name. Each test file gives its own cases as a [`Suite`].
//!
//! Zone `test` is served too, so that CAA tree climbing (RFC 8659 §3) and the organisational
//! domain lookups of other checks get answers instead of REFUSED.
#![allow(dead_code)] // each test file uses a part

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

#[path = "../../src/testutil/web.rs"]
mod web;

/// One case: a config variation, lines removed from the correct zone (an owner-name prefix
/// or any substring) and lines added; `{d}` is the case's domain, `{ip4}`/`{ip6}` its server
/// addresses, `{rev4}`/`{rev6}` their reverse names.
pub struct Case {
    pub n: u8,
    pub config: &'static str,
    pub remove: &'static [&'static str],
    pub add: &'static str,
    /// (code, severity, owner name) the check must report.
    pub expect: (&'static str, Severity, &'static str),
    /// Fetch the MTA-STS policy from the local web server, which serves this text (`{d}`
    /// replaced); `None`: no fetch.
    pub policy: Option<&'static str>,
}

/// What differs between the test files: their cases and the few config and zone
/// variations only some cases need.
pub struct Suite {
    pub cases: &'static [Case],
    /// Cases whose config has a second exchanger (`backup.{d}`, priority 20).
    pub two_exchangers: &'static [u8],
    /// Cases whose selector `202611r` signs with the 4160-bit RSA key of `tests/data`.
    pub long_rsa_key: &'static [u8],
    /// Placeholders of a case's `add` beyond those of [`fill`], replaced after it: the
    /// placeholder and its text for the case's plan.
    pub add_placeholders: &'static [(&'static str, Placeholder)],
}

/// The text of a placeholder for case `n`, from the case's plan.
pub type Placeholder = fn(&Planned, u8) -> String;

pub const DEFAULT_CONFIG: &str = "caa = { issuers = [\"letsencrypt.org\"] }";

pub const CORRECT_POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.{d}\r\nmax_age: 604800\r\n";

/// Case 0 of every suite: the correct zone, with its MTA-STS policy fetched; no finding
/// is expected of it (each file's `case00` test says which ones must stay away).
pub const CORRECT_CASE: Case = Case {
    n: 0,
    config: DEFAULT_CONFIG,
    remove: &[],
    add: "",
    expect: ("", Severity::Info, ""),
    policy: Some(CORRECT_POLICY),
};

pub fn domain(n: u8) -> String {
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

pub fn fill(template: &str, n: u8) -> String {
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

/// The private key file of selector `selector` in case `n`.
fn key_file(suite: &Suite, n: u8, selector: &str) -> PathBuf {
    if selector == "202611r" && suite.long_rsa_key.contains(&n) {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dkim-rsa-4160.pem")
    } else {
        examples().join(format!("keys/{selector}.pem"))
    }
}

/// A case's config, its DKIM keys and its desired records.
pub struct Planned {
    pub config: Config,
    pub keys: Vec<(String, DkimPrivateKey)>,
    pub desired: Vec<DesiredRecord>,
}

fn plan(suite: &Suite, case: &Case) -> Planned {
    let n = case.n;
    let backup = if suite.two_exchangers.contains(&n) {
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
            key_r = key_file(suite, n, "202611r").display()
        ),
        n,
    );
    let config = mailzone_records::config::parse(&text, &examples())
        .unwrap_or_else(|e| panic!("case {n}: bad config: {e}\n{text}"));
    let keys: Vec<(String, DkimPrivateKey)> = ["202611e", "202611r"]
        .into_iter()
        .map(|s| {
            let pem = std::fs::read_to_string(key_file(suite, n, s)).unwrap();
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
fn zone_lines(suite: &Suite, case: &Case, planned: &Planned) -> Vec<String> {
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
    let mut add = fill(case.add, n);
    for (placeholder, text) in suite.add_placeholders {
        add = add.replace(placeholder, &text(planned, n));
    }
    lines.extend(
        add.lines()
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

/// The Knot serving every case of `suite`, started once per test binary (each binary has
/// one suite); `None` when Knot is not installed.
fn harness(suite: &Suite) -> Option<&'static Harness> {
    static HARNESS: OnceLock<Option<Harness>> = OnceLock::new();
    HARNESS
        .get_or_init(|| {
            if !ServerKind::Knot.available() {
                return None;
            }
            let mut planned = HashMap::new();
            let mut zones: Vec<ZoneSpec> = vec![ZoneSpec::empty("test")];
            let (mut rev4, mut rev6) = (String::new(), String::new());
            for case in suite.cases {
                let p = plan(suite, case);
                let mut forward = String::new();
                for line in zone_lines(suite, case, &p) {
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

fn case(suite: &Suite, n: u8) -> &Case {
    suite
        .cases
        .iter()
        .find(|c| c.n == n)
        .unwrap_or_else(|| panic!("no case {n}"))
}

/// All findings of case `n`, checked against the suite's Knot; `None` without Knot.
pub async fn findings_of(suite: &Suite, n: u8) -> Option<Vec<Finding>> {
    let harness = harness(suite)?;
    let case = case(suite, n);
    let planned = &harness.planned[&n];
    let server: SocketAddr = harness.server.addr;
    let lookup = DnsLookup::with_servers(vec![server], Duration::from_secs(3));
    let mut options = CheckOptions {
        fetch_mta_sts: false,
        ..CheckOptions::default()
    };
    if let Some(policy) = case.policy {
        options.fetch_mta_sts = true;
        options.mta_sts_url = Some(web::web_server("200 OK", fill(policy, n)).await);
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

/// Asserts that case `n` reports its expected code, severity and owner name.
pub async fn run_case(suite: &Suite, n: u8) {
    let Some(findings) = findings_of(suite, n).await else {
        return;
    };
    let (code, severity, name) = case(suite, n).expect;
    let name = fill(name, n);
    assert!(
        findings
            .iter()
            .any(|f| f.code == code && f.severity == severity && f.name == name),
        "case {n}: expected {code} ({severity:?}) at {name}; got {findings:#?}"
    );
}

/// One `#[tokio::test]` per `name = n;`, running case `n` of `suite` with [`run_case`].
macro_rules! cases {
    ($suite:expr; $($test:ident = $n:expr;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                zone_cases::run_case(&$suite, $n).await;
            }
        )*
    };
}
