//! Fixtures shared by the DKIM, TLSA and DNSSEC tests (`dkim_*.rs`, `tlsa_*.rs`,
//! `dnssec_*.rs`): a domain `example.test` with the example DKIM keys and certificate
//! chain of `examples/`, its planned records, a [`DomainContext`] over any lookup, and a
//! [`ServerLookup`] asking a real server (the testkit's Knot) directly.
#![allow(dead_code)] // each test file uses a part

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use mailzone_check::lookup::{Answer, Lookup, LookupError, Rcode};
use mailzone_check::{CheckOptions, DomainContext, Finding, Severity};
use mailzone_records::dkim::DkimPrivateKey;
use mailzone_records::planner::{PlanInput, plan, selector_keys};
use mailzone_records::tlsa::TlsaKeys;
use mailzone_records::{Config, DesiredRecord, Name, RData};

pub const DOMAIN: &str = "example.test";

/// A test's view of a domain: config, keys, certificate digests and planned records.
pub struct Fixture {
    pub config: Config,
    pub keys: Vec<(String, DkimPrivateKey)>,
    pub tlsa: Option<TlsaKeys>,
    pub desired: Vec<DesiredRecord>,
}

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The RSA-2048 example key (selector `202611r`).
pub fn rsa_key() -> DkimPrivateKey {
    key_file("202611r.pem")
}

/// The Ed25519 example key (selector `202611e`).
pub fn ed25519_key() -> DkimPrivateKey {
    key_file("202611e.pem")
}

fn key_file(name: &str) -> DkimPrivateKey {
    let text = std::fs::read_to_string(examples_dir().join("keys").join(name)).unwrap();
    DkimPrivateKey::from_pem(&text).unwrap()
}

/// A 1024-bit RSA key made with `openssl genpkey` for these tests (accepted, but weak).
pub const RSA_1024_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBANChsT3IirMlUIuF
QnVSXc04uxrnDi0ODCS+UHIjTP/GdNhK8rmoL9luob7yTv4pR+Bhvmq5DyfofFYo
WnRyzIpu5L4IGTfWUf2U9mprDZknq5/IzqIeDSbEvMC5OyPWRnNYzWHBqf8bzkT1
mbXknrlGH1LdEGotokw/079ep6BxAgMBAAECgYAh0HMnrl88lemuE1UoKsdlQbKh
s51KlCJHukjTlwEd246Il+0rRiUrOpEgn6lJ7Grn5S+1oHTiZP3yAOxYP1sDMbP7
zo0iXouVOKZu/BjhAxQ4cjVFpxbAlNWU2mkVzH/2A0MLVYJ5F+Kms10tEt1Fxk5l
XdHXKb0i7xMS6ihhGQJBAPtja58jn/FeBMeNKlSNyVBmPvyYAOJJ8nqXiJwWTG9c
PUV34mrtgrhA8aaYcbhKu2nXNL329aIhTZNmjadmcGsCQQDUdXnf2cI5KayjSoGh
LePk1Y+wEf/w/d+0kjYKlnK35le9OFIpC6rAGxKraS3OeINjxeJYkzzVcDRRLiV9
t/mTAkBhJl/eBVd3YN05/R0BxjWpg4oN9fRJf0hdBhi+MYPieWQYZ6cxqY4eBMMe
ncU88myRD6ELVNhCito+/5/4tIb3AkAveEwR0wLNaN1U4snR7IH12C2xpmPsQZ0h
KGYAuZrKMiI6egIJf7zYDXR/bhG5Bz48JbOsHMHD4r0dwlTIIToXAkEAqfx+Qvtm
gxyKM4cxef2by7T5N4F8isgJVkHEUm5gcmhxbATwcqERoLRsfmRu5GSWBNiFKiW0
l4z+U1nIukrFBQ==
-----END PRIVATE KEY-----
";

/// The SubjectPublicKeyInfo (base64) of a 512-bit RSA key (`openssl genpkey`): too short.
pub const RSA_512_SPKI: &str = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBALlQMlsbHtRHbaYgigtjnX2ulBIOnqgVqXAPMJsOaXU4u911xgi9zn2lDKl1rVg7wj3d/iGdYg54geoMG5/5/K8CAwEAAQ==";

/// The config of the tests: `mail.example.test` receives mail for `example.test` and
/// offers IMAP (993) and submission (465, STARTTLS 587) with the example certificate.
pub const CONFIG: &str = r#"
[server]
hostname = "mail.example.test"
ipv4 = ["192.0.2.10"]
reportAddress = "mailto:postmaster"

[[server.mailExchangers]]
hostname = "mail.example.test"
priority = 10

[server.services]
imap = { cleartext = false }
pop3 = { enabled = false }
submission = { cleartext = true }
jmap = { enabled = false }
caldav = { enabled = false }
carddav = { enabled = false }

[server.tls]
certificate = "certs/mail.example.org.pem"

[domain."example.test"]
dmarc = { policy = "reject" }
"#;

impl Fixture {
    /// `example.test` with the two example DKIM keys and the example certificate chain.
    pub fn new() -> Fixture {
        Fixture::with_keys(vec![
            ("202611e".to_string(), ed25519_key()),
            ("202611r".to_string(), rsa_key()),
        ])
    }

    pub fn with_keys(keys: Vec<(String, DkimPrivateKey)>) -> Fixture {
        let chain = std::fs::read(examples_dir().join("certs/mail.example.org.pem")).unwrap();
        let tlsa = mailzone_records::tlsa::parse_chain(&chain).unwrap();
        Fixture::build(keys, Some(tlsa))
    }

    /// Same keys, with TLSA digests `tlsa` (e.g. with a next key) or none.
    pub fn build(keys: Vec<(String, DkimPrivateKey)>, tlsa: Option<TlsaKeys>) -> Fixture {
        let config = mailzone_records::config::parse(CONFIG, &examples_dir()).unwrap();
        let published = selector_keys(keys.iter().map(|(s, k)| (s.as_str(), k)));
        let domain = config.domain(&name(DOMAIN)).unwrap().clone();
        let desired = plan(PlanInput {
            server: &config.server,
            domain: &domain,
            dkim_keys: &published,
            tlsa: tlsa.as_ref(),
        })
        .unwrap();
        Fixture {
            config,
            keys,
            tlsa,
            desired,
        }
    }

    pub fn domain(&self) -> &mailzone_records::Domain {
        self.config.domain(&name(DOMAIN)).unwrap()
    }

    /// The planned records as zone-file lines (absolute names).
    pub fn zone_text(&self) -> String {
        mailzone_records::zonefile::render(&name(DOMAIN), &name(DOMAIN), &self.desired)
    }

    /// The planned records with `edit` applied to each line (return `None` to drop it).
    pub fn zone_text_with(&self, edit: impl Fn(&str) -> Option<String>) -> String {
        self.zone_text()
            .lines()
            .filter_map(edit)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    pub fn ctx<'a>(
        &'a self,
        lookup: &'a dyn Lookup,
        options: &'a CheckOptions,
    ) -> DomainContext<'a> {
        DomainContext {
            server: &self.config.server,
            domain: self.domain(),
            desired: &self.desired,
            dkim_keys: &self.keys,
            tlsa: self.tlsa.as_ref(),
            lookup,
            options,
        }
    }

    /// The planned TXT value of a DKIM selector.
    pub fn dkim_value(&self, selector: &str) -> String {
        let owner = name(&format!("{selector}._domainkey.{DOMAIN}"));
        self.desired
            .iter()
            .find_map(|d| match &d.record.data {
                RData::Txt(v) if d.record.name == owner => {
                    Some(String::from_utf8_lossy(v).into_owned())
                }
                _ => None,
            })
            .unwrap()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

pub fn name(s: &str) -> Name {
    Name::owner(s).unwrap()
}

/// Options for offline tests (no MTA-STS fetch).
pub fn options() -> CheckOptions {
    CheckOptions {
        fetch_mta_sts: false,
        timeout: Duration::from_secs(5),
        ..CheckOptions::default()
    }
}

/// Findings with one of the given code prefixes (`dkim-`, `tlsa-`, `dnssec-`).
pub fn only<'a>(findings: &'a [Finding], prefix: &str) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|f| f.code.starts_with(prefix))
        .collect()
}

/// Asserts that exactly one finding has `code` at `name`, with `severity`, and returns it.
pub fn assert_one<'a>(
    findings: &'a [Finding],
    code: &str,
    severity: Severity,
    name: &str,
) -> &'a Finding {
    let matching: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.code == code && f.name == name)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "expected one {code} at {name}, got {}: {findings:#?}",
        matching.len()
    );
    let finding = matching[0];
    assert_eq!(finding.severity, severity, "{finding:#?}");
    finding
}

/// A [`Lookup`] asking one server directly (no cache), over `mailzone_dns::query_rrset`,
/// following CNAMEs; [`Lookup::servers`] names the server so the DNSSEC checks ask it too.
/// Answers are never `authenticated` (an authoritative server does not validate).
pub struct ServerLookup {
    pub server: SocketAddr,
}

#[async_trait]
impl Lookup for ServerLookup {
    async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
        let timeout = Duration::from_secs(5);
        let mut current = name.clone();
        let mut chain = Vec::new();
        for _ in 0..8 {
            let records = mailzone_dns::query_rrset(self.server, &current, rtype, timeout)
                .await
                .map_err(|e| LookupError(e.to_string()))?;
            if !records.is_empty() || rtype.eq_ignore_ascii_case("CNAME") {
                return Ok(Answer {
                    rcode: Rcode::NoError,
                    records,
                    cname_chain: chain,
                    authenticated: false,
                });
            }
            let cname = mailzone_dns::query_rrset(self.server, &current, "CNAME", timeout)
                .await
                .map_err(|e| LookupError(e.to_string()))?;
            match cname.first().map(|r| &r.record.data) {
                Some(RData::Cname(target)) => {
                    chain.push(target.clone());
                    current = target.clone();
                }
                _ => {
                    return Ok(Answer {
                        rcode: Rcode::NoError,
                        records,
                        cname_chain: chain,
                        authenticated: false,
                    });
                }
            }
        }
        Err(LookupError(format!("CNAME loop at {name}")))
    }

    fn servers(&self) -> Vec<SocketAddr> {
        vec![self.server]
    }
}

/// The Python of the venv with the cross-checkers (`MAILZONE_TEST_PYTHON`, else
/// `.venv-test/bin/python`), or `None` (skip; a failure under `MAILZONE_REQUIRE_TOOLS=1`).
pub fn python() -> Option<PathBuf> {
    let path = std::env::var_os("MAILZONE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/python")
        });
    let ok = std::process::Command::new(&path)
        .args(["-c", "import dkim"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(path);
    }
    if std::env::var("MAILZONE_REQUIRE_TOOLS").is_ok_and(|v| v.trim() == "1") {
        panic!("{} with dkimpy missing: run scripts/test", path.display());
    }
    eprintln!(
        "skipping: no Python with dkimpy ({}); scripts/test makes it",
        path.display()
    );
    None
}

/// Everything of the DKIM, TLSA and DNSSEC checks for the fixture's domain.
pub async fn check_all(
    fixture: &Fixture,
    lookup: &dyn Lookup,
    options: &CheckOptions,
) -> Vec<Finding> {
    let ctx = fixture.ctx(lookup, options);
    let (dkim, tlsa, dnssec) = tokio::join!(
        mailzone_check::dkim::check(&ctx),
        mailzone_check::tlsa::check(&ctx),
        mailzone_check::dnssec::check(&ctx)
    );
    dkim.into_iter().chain(tlsa).chain(dnssec).collect()
}

/// Knot serving `zones`, signing them when `dnssec`; `None` (skip) without Knot.
pub fn knot(
    zones: &[mailzone_testkit::ZoneSpec],
    dnssec: bool,
) -> Option<mailzone_testkit::DnsServer> {
    use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey};
    if !ServerKind::Knot.available() || !mailzone_testkit::require_tool("keymgr") {
        return None;
    }
    let options = ServerOptions {
        dnssec,
        ..ServerOptions::default()
    };
    Some(
        DnsServer::start(
            ServerKind::Knot,
            zones,
            &TsigKey::generate("mailzone"),
            &options,
        )
        .unwrap_or_else(|e| panic!("Knot does not start: {e}")),
    )
}

/// The fixture's planned records as a testkit zone `example.test`.
pub fn zone_spec(zone_text: &str) -> mailzone_testkit::ZoneSpec {
    mailzone_testkit::ZoneSpec::new(DOMAIN, zone_text)
}

/// Options with `anchors` as trust anchors.
pub fn anchored(anchors: &[String]) -> CheckOptions {
    CheckOptions {
        trust_anchors: anchors.to_vec(),
        ..options()
    }
}

/// `delv` (BIND's validating lookup tool, written independently of mailzone) asked at
/// `server` for `name` `rtype`, validating from the DS `anchors` with `root` as the top of
/// the tree: `(fully validated, output)`. `None` (skip) without delv.
pub fn delv(
    server: SocketAddr,
    anchors: &[String],
    root: &str,
    name: &str,
    rtype: &str,
) -> Option<(bool, String)> {
    if !mailzone_testkit::require_tool("delv") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut conf = String::from("trust-anchors {\n");
    for ds in anchors {
        // `owner [TTL] [IN] DS tag alg type hex`
        let words: Vec<&str> = ds.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "DS").unwrap();
        conf.push_str(&format!(
            "  {} static-ds {} {} {} \"{}\";\n",
            words[0],
            words[at + 1],
            words[at + 2],
            words[at + 3],
            words[at + 4..].concat()
        ));
    }
    conf.push_str("};\n");
    let file = dir.path().join("anchors.conf");
    std::fs::write(&file, conf).unwrap();
    let output = std::process::Command::new(mailzone_testkit::tool_path("delv").unwrap())
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .arg("-a")
        .arg(&file)
        .arg(format!("+root={root}"))
        .arg(name)
        .arg(rtype)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((text.contains("; fully validated"), text))
}
