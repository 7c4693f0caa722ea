//! Shared by the SPF/DMARC tests against a real Knot (spf_knot.rs, dmarc_knot.rs) and the
//! checkdmarc cross-check: a configured mail domain per test zone, its correct records from
//! the planner, edited per case, and a [`DomainContext`] asking the server over DNS.

#![allow(dead_code)] // each test file uses part of it

use std::path::Path;
use std::time::Duration;

use mailzone_check::context::{CheckOptions, DomainContext};
use mailzone_check::finding::{Finding, Severity};
use mailzone_check::lookup::Lookup;
use mailzone_records::{Config, DesiredRecord, PlanInput};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

/// A mail domain `zone` served by `mail.<zone>` at 192.0.2.10 and 2001:db8::10;
/// `domain_extra` is added to the domain's table of the config.
pub struct Case {
    pub zone: String,
    pub config: Config,
    pub desired: Vec<DesiredRecord>,
    pub options: CheckOptions,
}

impl Case {
    pub fn new(zone: &str, domain_extra: &str) -> Case {
        let text = format!(
            r#"
[server]
hostname = "mail.{zone}"
ipv4 = ["192.0.2.10"]
ipv6 = ["2001:db8::10"]

[[server.mailExchangers]]
hostname = "mail.{zone}"
priority = 10

[server.services]
imap = {{ cleartext = false }}
submission = {{ cleartext = true }}

[domain."{zone}"]
dmarc = {{ policy = "reject" }}
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}
{domain_extra}
"#
        );
        let config = mailzone_records::config::parse(&text, Path::new("."))
            .unwrap_or_else(|e| panic!("bad test config: {e}"));
        let desired = mailzone_records::plan(PlanInput {
            server: &config.server,
            domain: &config.domains[0],
            dkim_keys: &[],
            tlsa: None,
        })
        .unwrap();
        Case {
            zone: zone.to_string(),
            config,
            desired,
            options: CheckOptions {
                fetch_mta_sts: false,
                timeout: Duration::from_secs(5),
                ..CheckOptions::default()
            },
        }
    }

    /// The zone served for the case: the planner's records, minus the lines containing
    /// one of `remove`, plus `add` (zone-file lines, absolute names or relative to the zone).
    pub fn zone_spec(&self, remove: &[&str], add: &str) -> ZoneSpec {
        let mut text = String::new();
        for d in &self.desired {
            let line = mailzone_check::support::line(&d.record);
            if !remove.iter().any(|r| line.contains(r)) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text.push_str(add);
        ZoneSpec::new(&self.zone, &text)
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

/// A Knot serving `zones`, or `None` (test skipped) when Knot is not installed.
pub fn knot(zones: &[ZoneSpec]) -> Option<DnsServer> {
    if !ServerKind::Knot.available() {
        return None;
    }
    let key = TsigKey::generate("mailzone");
    Some(
        DnsServer::start(ServerKind::Knot, zones, &key, &ServerOptions::default())
            .expect("knotd starts"),
    )
}

/// The findings as (code, severity, name), sorted.
pub fn summary(findings: &[Finding]) -> Vec<(&'static str, Severity, String)> {
    let mut out: Vec<_> = findings
        .iter()
        .map(|f| (f.code, f.severity, f.name.clone()))
        .collect();
    out.sort();
    out
}
