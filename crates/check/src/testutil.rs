//! Unit-test fixtures: a configured domain, its desired records, a zone served from text
//! (the desired records, edited per test) and a [`DomainContext`] over it.

use std::path::Path;

use mailzone_records::{Config, DesiredRecord, PlanInput};

use crate::context::{CheckOptions, DomainContext};
use crate::finding::{Finding, Severity};
use crate::lookup::{Lookup, ZoneLookup};

/// The server and `example.org` as in examples/example.org.toml, without files (automatic
/// DKIM, no certificate); `domain_extra` is added to the domain's table.
pub fn config(domain_extra: &str) -> Config {
    let text = format!(
        r#"
[server]
hostname = "mail.example.org"
ipv4 = ["192.0.2.10"]
ipv6 = ["2001:db8::10"]

[[server.mailExchangers]]
hostname = "mail.example.org"
priority = 10

[server.services]
imap = {{ cleartext = false }}
submission = {{ cleartext = true }}
jmap = {{}}

[domain."example.org"]
dmarc = {{ policy = "reject" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}
{domain_extra}
"#
    );
    mailzone_records::config::parse(&text, Path::new("."))
        .unwrap_or_else(|e| panic!("bad test config: {e}"))
}

pub struct Fixture {
    pub config: Config,
    pub desired: Vec<DesiredRecord>,
    pub options: CheckOptions,
}

impl Fixture {
    pub fn new(domain_extra: &str) -> Fixture {
        Fixture::from_config(config(domain_extra))
    }

    pub fn from_config(config: Config) -> Fixture {
        let desired = mailzone_records::plan(PlanInput {
            server: &config.server,
            domain: &config.domains[0],
            dkim_keys: &[],
            tlsa: None,
        })
        .unwrap();
        Fixture {
            config,
            desired,
            options: CheckOptions {
                fetch_mta_sts: false,
                ..CheckOptions::default()
            },
        }
    }

    /// The desired records as zone-file lines (what a correct zone serves), plus the
    /// address of the server host and the PTR records of its addresses.
    pub fn correct_zone(&self) -> String {
        let mut text = String::new();
        for d in &self.desired {
            text.push_str(&crate::support::line(&d.record));
            text.push('\n');
        }
        text.push_str(
            "10.2.0.192.in-addr.arpa. 300 IN PTR mail.example.org.\n\
             0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR mail.example.org.\n",
        );
        text
    }

    /// The correct zone with every line containing one of `remove` dropped (starting with it,
    /// for a pattern starting with `^`) and `add` appended.
    pub fn zone_with(&self, remove: &[&str], add: &str) -> ZoneLookup {
        let text: String = self
            .correct_zone()
            .lines()
            .filter(|l| {
                !remove.iter().any(|r| match r.strip_prefix('^') {
                    Some(prefix) => l.starts_with(prefix),
                    None => l.contains(r),
                })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        ZoneLookup::new(&format!("{text}{add}"))
    }

    pub fn ctx<'a>(&'a self, lookup: &'a dyn Lookup) -> DomainContext<'a> {
        DomainContext {
            server: &self.config.server,
            domain: &self.config.domains[0],
            desired: &self.desired,
            dkim_keys: &[],
            tlsa: None,
            lookup,
            options: &self.options,
        }
    }
}

/// The findings with `code`, as (severity, name).
pub fn with_code(findings: &[Finding], code: &str) -> Vec<(Severity, String)> {
    findings
        .iter()
        .filter(|f| f.code == code)
        .map(|f| (f.severity, f.name.clone()))
        .collect()
}

/// Asserts there are no findings at all, printing them otherwise.
pub fn assert_quiet(findings: &[Finding]) {
    assert!(findings.is_empty(), "unexpected findings: {findings:#?}");
}
