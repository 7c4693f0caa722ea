//! The fixture of mailzone's benchmarks: a config of N mail domains (`d00000.example`, …)
//! sharing one server like `examples/example.org.toml`, and the work that is measured
//! (planning, zone-file rendering, JSON rendering).
//!
//! Key generation and certificate parsing happen once, in [`Fixture::new`]; they are not
//! what is measured.
//!
//! The reconcile programs (`reconcile_table`: mailzone vs octoDNS against one Knot;
//! `powerdns_table`: the same against one PowerDNS through its HTTP API) share
//! [`mail_zones`] (the zones, the config, the records), [`measure`] (a tool's wall time,
//! peak RSS and CPU), [`octodns`] (the peer and its zone files) and [`pcap`] (DNS messages
//! counted from a capture); `reconcile_table` and `scale_table` (the same against one Knot
//! at 1,000 to 100,000 zones) also share [`reconcile`] (knotd, the runs of each tool).

pub mod mail_zones;
pub mod measure;
pub mod octodns;
pub mod pcap;
pub mod reconcile;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mailzone_records::dkim::{DkimPrivateKey, DkimSelectorKey};
use mailzone_records::tlsa::{self, TlsaKeys};
use mailzone_records::{Config, DesiredRecord, DkimAlgorithm, PlanInput, config, json, zonefile};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

/// How many distinct Ed25519 keys the domains cycle through (one RSA key is shared by all).
pub const ED25519_KEYS: usize = 4;

/// The repository's `examples/` directory (certificate chain and DKIM key files).
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
}

/// The name of the `i`th benchmark domain: `d00000.example`, `d00001.example`, …
pub fn domain_name(i: usize) -> String {
    format!("d{i:05}.example")
}

/// The config text for `n` domains. Every domain has DMARC, MTA-STS, CAA and two manual
/// DKIM keys (selectors `202611e` and `202611r`) read from `keys_dir`; the server is that
/// of `examples/example.org.toml` with its TLS chain at `certificate`. Relative paths are
/// resolved against the config file's directory, as in any config.
pub fn config_text(n: usize, keys_dir: &str, certificate: &str) -> String {
    let mut text = format!(
        r#"[server]
hostname = "mail.example.org"
ipv4 = ["192.0.2.10"]
ipv6 = ["2001:db8::10"]
reportAddress = "mailto:postmaster"

[[server.mailExchangers]]
hostname = "mail.example.org"
priority = 10

[server.services]
imap = {{ cleartext = false }}
pop3 = {{ enabled = false }}
submission = {{ cleartext = true }}
jmap = {{}}
caldav = {{}}
carddav = {{}}

[server.tls]
certificate = "{certificate}"
"#
    );
    for i in 0..n {
        let _ = write!(
            text,
            r#"
[domain."{name}"]
dmarc = {{ policy = "reject" }}
mtaSts = {{ mode = "enforce", maxAge = 604800 }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [
  {{ selector = "202611e", privateKeyFile = "{keys_dir}/202611e.pem" }},
  {{ selector = "202611r", privateKeyFile = "{keys_dir}/202611r.pem" }},
] }} }}
"#,
            name = domain_name(i)
        );
    }
    text
}

/// The config text of [`Fixture::new`]: paths relative to `examples/`, as in the example.
pub fn example_relative_config_text(n: usize) -> String {
    config_text(n, "keys", "certs/mail.example.org.pem")
}

/// Parses a config text with `examples/` as the base directory (no file is read).
pub fn parse_config(text: &str) -> Config {
    config::parse(text, &examples_dir()).expect("the generated config is valid")
}

/// A parsed config of N domains with their DKIM keys and the TLSA digests of the example
/// chain, ready to plan.
pub struct Fixture {
    pub config: Config,
    pub tlsa: TlsaKeys,
    /// The published keys of each domain, in config order: one Ed25519 key (cycling
    /// through [`ED25519_KEYS`] keys) and the one RSA-2048 key.
    pub dkim_keys: Vec<Vec<DkimSelectorKey>>,
}

impl Fixture {
    /// Builds the fixture: generates the keys (deterministically, from a fixed seed),
    /// parses the chain `examples/certs/mail.example.org.pem` and the config text of
    /// [`example_relative_config_text`].
    pub fn new(n: usize) -> Fixture {
        let mut rng = StdRng::seed_from_u64(202_611);
        let rsa = DkimPrivateKey::generate(DkimAlgorithm::RsaSha256, &mut rng).public_key();
        let ed25519: Vec<_> = (0..ED25519_KEYS)
            .map(|_| DkimPrivateKey::generate(DkimAlgorithm::Ed25519Sha256, &mut rng).public_key())
            .collect();
        let chain_path = examples_dir().join("certs/mail.example.org.pem");
        let chain = std::fs::read(&chain_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", chain_path.display()));
        let tlsa = tlsa::parse_chain(&chain).expect("the example chain parses");
        let config = parse_config(&example_relative_config_text(n));
        let dkim_keys = (0..n)
            .map(|i| {
                vec![
                    DkimSelectorKey {
                        selector: "202611e".into(),
                        key: ed25519[i % ED25519_KEYS].clone(),
                    },
                    DkimSelectorKey {
                        selector: "202611r".into(),
                        key: rsa.clone(),
                    },
                ]
            })
            .collect();
        Fixture {
            config,
            tlsa,
            dkim_keys,
        }
    }

    pub fn len(&self) -> usize {
        self.config.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.config.domains.is_empty()
    }

    /// Plans the records of domain `i`.
    pub fn plan_one(&self, i: usize) -> Vec<DesiredRecord> {
        mailzone_records::plan(PlanInput {
            server: &self.config.server,
            domain: &self.config.domains[i],
            dkim_keys: &self.dkim_keys[i],
            tlsa: Some(&self.tlsa),
        })
        .expect("the benchmark domains plan")
    }

    /// Plans every domain, as `mailzone records` does before it renders.
    pub fn plan_all(&self) -> Vec<Vec<DesiredRecord>> {
        (0..self.len()).map(|i| self.plan_one(i)).collect()
    }

    /// Zone text of domain `i` from its planned records.
    pub fn render_zone(&self, i: usize, records: &[DesiredRecord]) -> String {
        let domain = &self.config.domains[i];
        zonefile::render(&domain.name, &domain.zone, records)
    }

    /// Plans and renders every domain as zone text, the way `mailzone records` does
    /// (every plan is held, the text of each domain is made and written out in turn; here
    /// it is only counted). Returns the totals.
    pub fn plan_render_zone(&self) -> Totals {
        let planned = self.plan_all();
        let mut totals = Totals::default();
        for (i, records) in planned.iter().enumerate() {
            let text = self.render_zone(i, records);
            totals.records += records.len();
            totals.bytes += text.len();
        }
        totals
    }

    /// Plans every domain and renders all the records as one JSON array (compact). Returns
    /// the totals.
    pub fn plan_render_json(&self) -> Totals {
        let planned = self.plan_all();
        let all: Vec<json::JsonRecord> = planned
            .iter()
            .enumerate()
            .flat_map(|(i, records)| json::records(&self.config.domains[i].name, records))
            .collect();
        let text = serde_json::to_string(&all).expect("records serialize");
        Totals {
            records: all.len(),
            bytes: text.len(),
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub records: usize,
    pub bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_plans_every_domain_alike() {
        let fixture = Fixture::new(3);
        assert_eq!(fixture.len(), 3);
        assert_eq!(fixture.config.domains[2].name.as_str(), "d00002.example");
        let first = fixture.plan_one(0);
        let second = fixture.plan_one(1);
        assert_eq!(first.len(), second.len());
        let zone = fixture.render_zone(0, &first);
        assert!(
            zone.contains("202611r._domainkey.d00000.example."),
            "{zone}"
        );
        assert!(zone.contains("k=ed25519"), "{zone}");
        assert!(zone.contains("_mta-sts.d00000.example."), "{zone}");
        assert!(zone.contains(" CAA "), "{zone}");
        let totals = fixture.plan_render_zone();
        assert_eq!(totals.records, 3 * first.len());
        let json = fixture.plan_render_json();
        assert_eq!(json.records, totals.records);
    }

    #[test]
    fn the_cli_config_uses_the_given_paths() {
        let text = config_text(2, "/k", "/c.pem");
        assert!(text.contains(r#"privateKeyFile = "/k/202611r.pem""#));
        assert!(text.contains(r#"certificate = "/c.pem""#));
        assert_eq!(parse_config(&text).domains.len(), 2);
    }
}
