//! The config file (`mailzone.toml`): parsing and validation into the [`crate::model`].
//!
//! Pure: the text is passed in and file names are resolved against a base directory
//! without touching the file system (the engine reads them). Every mistake is reported as
//! one [`ConfigError`] naming the key path and the bad value; unknown keys are errors so
//! that a typo is never silently ignored.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::model::*;

mod acme;
pub use acme::{DEFAULT_RENEW_BEFORE, managed_zone};
mod raw;
mod service;
pub use service::DEFAULT_CHECK_INTERVAL;

use crate::name::Name;
use crate::record::DnsRecordType;
use crate::{dkim, dmarc, mtasts, spf};
use raw::*;

/// Default TTL of every record, in seconds.
pub const DEFAULT_TTL: u32 = 3600;
/// Default MTA-STS `max_age`: one week (RFC 8461 §3.2 advises weeks or more).
pub const DEFAULT_MTA_STS_MAX_AGE: u32 = 604_800;
/// `server.tls.retireAfter`: a replaced TLSA digest stays published two days (longer than
/// any sane TLSA TTL, and time for every server of a cluster to load the new certificate).
pub const DEFAULT_TLSA_RETIRE_AFTER: &str = "2d";

/// One problem in the config: where (`server.ipv4[0]`), what value, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}{}", value.as_ref().map(|v| format!(" (value: {v})")).unwrap_or_default())]
pub struct ConfigError {
    pub key: String,
    pub value: Option<String>,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, value: Option<&str>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            value: value.map(|v| format!("{v:?}")),
            message: message.into(),
        }
    }
}

/// Parses and validates the config text. `base_dir` is the directory of the config file;
/// relative file names in it are resolved against it.
pub fn parse(text: &str, base_dir: &Path) -> Result<Config> {
    let raw = parse_raw(text)?;
    Validator { base_dir }.config(raw)
}

/// [`parse`] of a config that is not one file's text: the file's tables with others added
/// (the service's API-defined objects). Errors name key paths only: line numbers of a
/// text no person wrote would point nowhere.
pub fn parse_table(table: toml::Table, base_dir: &Path) -> Result<Config> {
    if table.is_empty() {
        return Err(empty_file_error());
    }
    let raw = serde_path_to_error::deserialize(table)
        .map_err(|e| shape_error(e.path(), e.inner().message(), String::new()))?;
    Validator { base_dir }.config(raw)
}

fn parse_raw(text: &str) -> Result<RawConfig> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| syntax_error(text, &e))?;
    // Only whitespace and comments: serde would say "missing field `server`" at an empty
    // key path, which reads like a bug rather than a file with nothing in it.
    if text.parse::<toml::Table>().is_ok_and(|t| t.is_empty()) {
        return Err(empty_file_error());
    }
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let inner = e.inner();
        let position = inner
            .span()
            .map(|span| line_col(text, span.start))
            .map(|(l, c)| format!(" (line {l}, column {c})"))
            .unwrap_or_default();
        shape_error(e.path(), inner.message(), position)
    })
}

fn empty_file_error() -> ConfigError {
    ConfigError::new(
        "(top level)",
        None,
        "the config file is empty: it needs at least a [server] table with the mail server's hostname (`mailzone init` writes a starter file)",
    )
}

/// A value of the wrong shape at `path`. A table missing at the top level (serde's
/// "missing field" at an empty path) is named as the table.
fn shape_error(path: &serde_path_to_error::Path, message: &str, position: String) -> ConfigError {
    let key = toml_key_path(path);
    let message = one_line(message);
    let missing_table = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    if let (true, Some(table)) = (key.is_empty(), missing_table) {
        // No position: the table is missing from the whole file, not at one place.
        return ConfigError::new(table, None, format!("the [{table}] table is missing"));
    }
    ConfigError {
        key: if key.is_empty() {
            "(top level)".into()
        } else {
            key
        },
        value: None,
        message: format!("{message}{position}"),
    }
}

/// A key path the way TOML writes it: `domain."example.org".dmarc.rua[0]` (keys that are
/// not bare TOML keys are quoted, so dots inside domain names stay unambiguous).
fn toml_key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&toml_key(key));
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// A TOML key: bare when it is only letters, digits, `-` and `_`, quoted otherwise (as
/// the key paths of [`ConfigError`] write it).
pub fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let (line, col) = error
        .span()
        .map(|s| line_col(text, s.start))
        .unwrap_or((0, 0));
    ConfigError {
        key: format!("line {line}, column {col}"),
        value: None,
        message: format!("TOML syntax error: {}", one_line(error.message())),
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

// ---------------------------------------------------------------------------------------
// Validation: raw values → model, with the key path of every mistake.

struct Validator<'a> {
    base_dir: &'a Path,
}

type Result<T> = std::result::Result<T, ConfigError>;

impl Validator<'_> {
    fn config(&self, mut raw: RawConfig) -> Result<Config> {
        let raw_acme = raw.server.acme.take();
        let mut server = self.server(raw.server)?;
        let mut dns_servers = Vec::with_capacity(raw.dns_server.len());
        for (name, dns_server) in raw.dns_server {
            let key = format!("dnsServer.{}", toml_key(&name));
            dns_servers.push(self.dns_server(&key, name, dns_server)?);
        }
        let mut domains = Vec::with_capacity(raw.domain.len());
        // Two spellings can name one domain (`Bücher.example`, `xn--bcher-kva.example`).
        let mut seen = std::collections::HashSet::with_capacity(raw.domain.len());
        for (name, domain) in raw.domain {
            let key = format!("domain.{}", toml_key(&name));
            let domain = self.domain(&key, &name, domain, &server, &dns_servers)?;
            if !seen.insert(domain.name.clone()) {
                return Err(ConfigError::new(
                    key,
                    Some(&name),
                    format!("domain {} is configured twice", domain.name.as_str()),
                ));
            }
            domains.push(domain);
        }
        server.acme = raw_acme
            .map(|acme| self.acme(acme, &server, &domains))
            .transpose()?;
        let serve = self.serve(raw.serve)?;
        let notify = self.notify(raw.notify)?;
        Ok(Config {
            server,
            domains,
            dns_servers,
            serve,
            notify,
        })
    }

    fn dns_server(&self, key: &str, name: String, raw: RawDnsServer) -> Result<DnsServer> {
        if raw.kind != "rfc2136" {
            return Err(ConfigError::new(
                format!("{key}.kind"),
                Some(&raw.kind),
                "unsupported DNS server kind; supported: rfc2136",
            ));
        }
        if raw.host.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{key}.host"),
                Some(&raw.host),
                "a host name or IP address is needed",
            ));
        }
        let sources = [
            raw.key.is_some(),
            raw.key_file.is_some(),
            raw.key_env.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(ConfigError::new(
                key,
                None,
                "give the TSIG secret once: key, keyFile or keyEnv",
            ));
        }
        let secret = if let Some(inline) = raw.key {
            // Checked here so a typo is found at load time, not at the first publish.
            if decode_tsig_secret(&inline).is_none() {
                return Err(ConfigError::new(
                    format!("{key}.key"),
                    None,
                    "the TSIG secret must be base64 text, as tsig-keygen or keymgr print it (the value is not shown)",
                ));
            }
            Some(SecretSource::Inline(zeroize::Zeroizing::new(inline)))
        } else if let Some(file) = raw.key_file {
            Some(SecretSource::File(
                self.file(&format!("{key}.keyFile"), &file)?,
            ))
        } else {
            raw.key_env.map(SecretSource::Env)
        };
        if secret.is_some() != raw.key_name.is_some() {
            return Err(ConfigError::new(
                format!("{key}.keyName"),
                None,
                "a TSIG key needs both keyName and its secret (key, keyFile or keyEnv)",
            ));
        }
        if let Some(key_name) = &raw.key_name {
            Name::owner(key_name).map_err(|e| {
                ConfigError::new(format!("{key}.keyName"), Some(key_name), e.to_string())
            })?;
        }
        let authoritative_servers = list(
            &raw.authoritative_servers,
            &format!("{key}.authoritativeServers"),
            |k, v| {
                socket_addr(v).ok_or_else(|| {
                    ConfigError::new(
                        k,
                        Some(v),
                        "expected IP or IP:PORT (e.g. 192.0.2.53:53 or [2001:db8::53]:53)",
                    )
                })
            },
        )?;
        Ok(DnsServer {
            name,
            provider: DnsProvider::Rfc2136 {
                host: raw.host.trim().to_string(),
                port: port(&format!("{key}.port"), raw.port)?.unwrap_or(53),
                protocol: raw.protocol.unwrap_or(Transport::Tcp),
                key_name: raw
                    .key_name
                    .map(|n| n.trim_end_matches('.').to_ascii_lowercase()),
                key: secret,
                algorithm: raw.algorithm.unwrap_or(TsigAlgorithm::HmacSha256),
            },
            ttl: ttl(&format!("{key}.ttl"), raw.ttl)?,
            timeout: duration(&format!("{key}.timeout"), raw.timeout, "10s")?,
            propagation_delay: duration(
                &format!("{key}.propagationDelay"),
                raw.propagation_delay,
                "0s",
            )?,
            polling_interval: duration(
                &format!("{key}.pollingInterval"),
                raw.polling_interval,
                "2s",
            )?,
            propagation_timeout: duration(
                &format!("{key}.propagationTimeout"),
                raw.propagation_timeout,
                "120s",
            )?,
            authoritative_servers,
        })
    }

    fn server(&self, raw: RawServer) -> Result<Server> {
        let hostname = host("server.hostname", &raw.hostname)?;
        let ipv4 = list(&raw.ipv4, "server.ipv4", |key, v| {
            v.parse::<Ipv4Addr>()
                .map_err(|_| ConfigError::new(key, Some(v), "not an IPv4 address"))
        })?;
        let ipv6 = list(&raw.ipv6, "server.ipv6", |key, v| {
            v.parse::<Ipv6Addr>()
                .map_err(|_| ConfigError::new(key, Some(v), "not an IPv6 address"))
        })?;
        let mail_exchangers = match raw.mail_exchangers {
            None => vec![MailExchanger {
                hostname: hostname.clone(),
                priority: 10,
            }],
            Some(list) if list.is_empty() => {
                return Err(ConfigError::new(
                    "server.mailExchangers",
                    None,
                    "at least one mail exchanger is needed (omit the key for the default: the server hostname, priority 10)",
                ));
            }
            Some(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, mx)| {
                    Ok(MailExchanger {
                        hostname: host(
                            &format!("server.mailExchangers[{i}].hostname"),
                            &mx.hostname,
                        )?,
                        priority: mx.priority.unwrap_or(10),
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let report_address = raw
            .report_address
            .unwrap_or_else(|| "mailto:postmaster".into());
        dmarc::validate_report_uri(&dmarc::complete_report_uri(
            &report_address,
            "example.invalid",
        ))
        .map_err(|m| ConfigError::new("server.reportAddress", Some(&report_address), m))?;
        let services = self.services(raw.services, &hostname)?;
        let tls = raw
            .tls
            .map(|tls| -> Result<TlsFiles> {
                Ok(TlsFiles {
                    certificate: self.file("server.tls.certificate", &tls.certificate)?,
                    next_key: tls
                        .next_key
                        .map(|p| self.file("server.tls.nextKey", &p))
                        .transpose()?,
                    retire_after: duration(
                        "server.tls.retireAfter",
                        tls.retire_after,
                        DEFAULT_TLSA_RETIRE_AFTER,
                    )?,
                })
            })
            .transpose()?;
        Ok(Server {
            hostname,
            ipv4,
            ipv6,
            mail_exchangers,
            services,
            report_address,
            tls,
            ttl: ttl("server.ttl", raw.ttl)?.unwrap_or(DEFAULT_TTL),
            acme: None,
        })
    }

    fn services(&self, raw: RawServices, default_host: &Name) -> Result<Services> {
        let one = |family: ServiceFamily, raw: Option<RawService>| -> Result<Option<Service>> {
            let Some(raw) = raw else { return Ok(None) };
            if raw.enabled == Some(false) {
                return Ok(None);
            }
            let key = format!("server.services.{}", family.key());
            let hostname = match &raw.hostname {
                Some(h) => host(&format!("{key}.hostname"), h)?,
                None => default_host.clone(),
            };
            let (tls_port, clear_port) = family.default_ports();
            if family == ServiceFamily::Jmap
                && (raw.cleartext == Some(true) || raw.cleartext_port.is_some())
            {
                return Err(ConfigError::new(
                    format!("{key}.cleartext"),
                    None,
                    "JMAP is only offered over HTTPS (RFC 8620 §2.2 defines no cleartext SRV)",
                ));
            }
            let cleartext = raw.cleartext.unwrap_or(raw.cleartext_port.is_some());
            Ok(Some(Service {
                hostname,
                port: port(&format!("{key}.port"), raw.port)?.unwrap_or(tls_port),
                cleartext_port: if cleartext {
                    Some(
                        port(&format!("{key}.cleartextPort"), raw.cleartext_port)?
                            .unwrap_or(clear_port),
                    )
                } else {
                    None
                },
            }))
        };
        Ok(Services {
            imap: one(ServiceFamily::Imap, raw.imap)?,
            pop3: one(ServiceFamily::Pop3, raw.pop3)?,
            submission: one(ServiceFamily::Submission, raw.submission)?,
            jmap: one(ServiceFamily::Jmap, raw.jmap)?,
            caldav: one(ServiceFamily::Caldav, raw.caldav)?,
            carddav: one(ServiceFamily::Carddav, raw.carddav)?,
        })
    }

    fn domain(
        &self,
        key: &str,
        written: &str,
        raw: RawDomain,
        server: &Server,
        dns_servers: &[DnsServer],
    ) -> Result<Domain> {
        let name = host(key, written)?;
        let (dns_management, origin, server_ttl) = dns_management(
            &format!("{key}.dnsManagement"),
            raw.dns_management,
            dns_servers,
        )?;
        let zone = match &origin {
            Some(origin) => {
                let zone = host(&format!("{key}.dnsManagement.automatic.origin"), origin)?;
                if !name.is_within(&zone) {
                    return Err(ConfigError::new(
                        format!("{key}.dnsManagement.automatic.origin"),
                        Some(origin),
                        format!(
                            "the domain {} is not inside the zone {}",
                            name.as_str(),
                            zone.as_str()
                        ),
                    ));
                }
                zone
            }
            None => name.clone(),
        };
        let domain_str = name.as_str().to_string();
        let report = |uris: Option<Vec<String>>, key: &str| -> Result<Vec<String>> {
            let uris = uris.unwrap_or_else(|| vec![server.report_address.clone()]);
            list(&uris, key, |key, uri| {
                let full = dmarc::complete_report_uri(uri, &domain_str);
                dmarc::validate_report_uri(&full)
                    .map(|_| full)
                    .map_err(|m| ConfigError::new(key, Some(uri), m))
            })
        };
        let dmarc_raw = raw.dmarc.unwrap_or(RawDmarc {
            policy: None,
            subdomain_policy: None,
            rua: None,
            ruf: None,
            adkim: None,
            aspf: None,
        });
        let dmarc = DmarcPolicy {
            policy: dmarc_raw.policy.unwrap_or(DmarcDisposition::Reject),
            subdomain_policy: dmarc_raw.subdomain_policy,
            rua: report(dmarc_raw.rua, &format!("{key}.dmarc.rua"))?,
            ruf: match dmarc_raw.ruf {
                Some(ruf) => report(Some(ruf), &format!("{key}.dmarc.ruf"))?,
                None => Vec::new(),
            },
            adkim: dmarc_raw.adkim,
            aspf: dmarc_raw.aspf,
        };
        let tls_rpt = match raw.tls_rpt {
            Some(t) => TlsRptPolicy {
                enabled: t.enabled.unwrap_or(true),
                rua: report(t.rua, &format!("{key}.tlsRpt.rua"))?,
            },
            None => TlsRptPolicy {
                enabled: true,
                rua: report(None, &format!("{key}.tlsRpt.rua"))?,
            },
        };
        Ok(Domain {
            ttl: ttl(&format!("{key}.ttl"), raw.ttl)?
                .or(server_ttl)
                .unwrap_or(server.ttl),
            spf: spf_policy(&format!("{key}.spf"), raw.spf)?,
            dmarc,
            tls_rpt,
            mta_sts: mta_sts_policy(&format!("{key}.mtaSts"), raw.mta_sts, server)?,
            caa: raw
                .caa
                .map(|c| {
                    caa_policy(
                        &format!("{key}.caa"),
                        c,
                        &dmarc::complete_report_uri(&server.report_address, &domain_str),
                    )
                })
                .transpose()?,
            dkim_management: self.dkim_management(
                &format!("{key}.dkimManagement"),
                raw.dkim_management,
                dns_servers,
            )?,
            dns_management,
            name,
            zone,
        })
    }

    fn dkim_management(
        &self,
        key: &str,
        raw: Option<RawDkimManagement>,
        dns_servers: &[DnsServer],
    ) -> Result<DkimManagement> {
        match raw {
            None => Ok(DkimManagement::Automatic {
                algorithms: vec![DkimAlgorithm::Ed25519Sha256, DkimAlgorithm::RsaSha256],
                selector_template: DEFAULT_SELECTOR_TEMPLATE.into(),
                rsa_bits: dkim::GENERATED_RSA_BITS,
                rotation: DkimRotation::default(),
                on_key_change: Vec::new(),
                delegation: None,
            }),
            Some(RawDkimManagement::Manual(manual)) => {
                let mut keys: Vec<ManualDkimKey> = Vec::new();
                for (i, k) in manual.keys.into_iter().enumerate() {
                    let key_path = format!("{key}.manual.keys[{i}]");
                    let selector = k.selector.trim().to_ascii_lowercase();
                    dkim::validate_selector(&selector).map_err(|m| {
                        ConfigError::new(format!("{key_path}.selector"), Some(&k.selector), m)
                    })?;
                    if keys.iter().any(|existing| existing.selector == selector) {
                        return Err(ConfigError::new(
                            format!("{key_path}.selector"),
                            Some(&k.selector),
                            "selector listed twice",
                        ));
                    }
                    keys.push(ManualDkimKey {
                        selector,
                        private_key_file: self
                            .file(&format!("{key_path}.privateKeyFile"), &k.private_key_file)?,
                    });
                }
                Ok(DkimManagement::Manual { keys })
            }
            Some(RawDkimManagement::Automatic(auto)) => {
                let names = auto
                    .algorithms
                    .unwrap_or_else(|| vec!["ed25519-sha256".into(), "rsa-sha256".into()]);
                let algorithms = list(&names, &format!("{key}.automatic.algorithms"), |k, v| {
                    DkimAlgorithm::parse(v).ok_or_else(|| {
                        ConfigError::new(
                            k,
                            Some(v),
                            "unknown DKIM algorithm; use ed25519-sha256 or rsa-sha256",
                        )
                    })
                })?;
                if algorithms.is_empty() {
                    return Err(ConfigError::new(
                        format!("{key}.automatic.algorithms"),
                        None,
                        "at least one algorithm is needed",
                    ));
                }
                // One key per algorithm is made and rotated: a second entry would only
                // make the same selector twice.
                if let Some(i) =
                    (1..algorithms.len()).find(|&i| algorithms[..i].contains(&algorithms[i]))
                {
                    return Err(ConfigError::new(
                        format!("{key}.automatic.algorithms[{i}]"),
                        Some(&names[i]),
                        "algorithm listed twice",
                    ));
                }
                let auto_selector_template_written = auto.selector_template.is_some();
                let template = auto
                    .selector_template
                    .unwrap_or_else(|| DEFAULT_SELECTOR_TEMPLATE.into());
                let template_key = format!("{key}.automatic.selectorTemplate");
                let samples: Vec<String> = algorithms
                    .iter()
                    .map(|a| dkim::expand_selector(&template, (2026, 11, 26), *a))
                    .collect();
                for sample in &samples {
                    dkim::validate_selector(sample)
                        .map_err(|m| ConfigError::new(&template_key, Some(&template), m))?;
                }
                if algorithms.len() > 1 && !template.contains("{algorithm}") {
                    return Err(ConfigError::new(
                        &template_key,
                        Some(&template),
                        "with several algorithms the template must contain {algorithm}, or their selectors collide",
                    ));
                }
                let rsa_bits = rsa_bits(&format!("{key}.automatic.rsaBits"), auto.rsa_bits)?;
                let rotation = DkimRotation {
                    rotate_after: duration(
                        &format!("{key}.automatic.rotateAfter"),
                        auto.rotate_after,
                        "90d",
                    )?,
                    retire_after: duration(
                        &format!("{key}.automatic.retireAfter"),
                        auto.retire_after,
                        "7d",
                    )?,
                    delete_after: duration(
                        &format!("{key}.automatic.deleteAfter"),
                        auto.delete_after,
                        "30d",
                    )?,
                };
                let on_key_change =
                    self.command(&format!("{key}.automatic.onKeyChange"), auto.on_key_change)?;
                let delegation = delegation(
                    &format!("{key}.automatic"),
                    auto.delegate_to,
                    auto.delegate_dns_server,
                    auto_selector_template_written,
                    dns_servers,
                )?;
                Ok(DkimManagement::Automatic {
                    algorithms,
                    selector_template: template,
                    rsa_bits,
                    rotation,
                    on_key_change,
                    delegation,
                })
            }
        }
    }

    /// A command as an argv list (no shell). A program path with a `/` is taken relative
    /// to the config file's directory; a bare name is looked up in `PATH` when run.
    fn command(&self, key: &str, argv: Option<Vec<String>>) -> Result<Vec<String>> {
        let Some(mut argv) = argv else {
            return Ok(Vec::new());
        };
        let Some(program) = argv.first_mut() else {
            return Err(ConfigError::new(
                key,
                Some("[]"),
                "an empty command; give the program and its arguments, e.g. [\"/usr/local/bin/reload-mta\"], or leave the key out",
            ));
        };
        if program.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{key}[0]"),
                Some(program.as_str()),
                "the program name is empty",
            ));
        }
        if program.contains('/') && !Path::new(program.as_str()).is_absolute() {
            *program = self.base_dir.join(&*program).display().to_string();
        }
        Ok(argv)
    }

    fn file(&self, key: &str, written: &str) -> Result<FileRef> {
        if written.trim().is_empty() {
            return Err(ConfigError::new(
                key,
                Some(written),
                "a file name is needed",
            ));
        }
        let path = PathBuf::from(written);
        let path = if path.is_absolute() {
            path
        } else {
            self.base_dir.join(path)
        };
        Ok(FileRef {
            path,
            key_path: key.to_string(),
        })
    }
}

/// `dkimManagement.automatic.delegateTo` and `delegateDnsServer`: both or neither. The
/// provider zone is published through a configured DNS server; the selectors are the fixed
/// slots, so a `selectorTemplate` beside `delegateTo` is a contradiction.
fn delegation(
    key: &str,
    delegate_to: Option<String>,
    dns_server: Option<String>,
    template_written: bool,
    dns_servers: &[DnsServer],
) -> Result<Option<DkimDelegation>> {
    let (zone_written, server_name) = match (delegate_to, dns_server) {
        (None, None) => return Ok(None),
        (None, Some(server)) => {
            return Err(ConfigError::new(
                format!("{key}.delegateDnsServer"),
                Some(&server),
                "delegateDnsServer without delegateTo: name the provider zone the keys are delegated to",
            ));
        }
        (Some(zone), None) => {
            return Err(ConfigError::new(
                format!("{key}.delegateDnsServer"),
                None,
                format!(
                    "delegateTo = {zone:?} needs delegateDnsServer: the [dnsServer.<name>] that publishes the provider zone"
                ),
            ));
        }
        (Some(zone), Some(server)) => (zone, server),
    };
    let zone = host(&format!("{key}.delegateTo"), &zone_written)?;
    if !dns_servers.iter().any(|s| s.name == server_name) {
        let known: Vec<&str> = dns_servers.iter().map(|s| s.name.as_str()).collect();
        return Err(ConfigError::new(
            format!("{key}.delegateDnsServer"),
            Some(&server_name),
            format!(
                "no [dnsServer.{server_name}] table (defined: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    if template_written {
        return Err(ConfigError::new(
            format!("{key}.selectorTemplate"),
            None,
            "with delegateTo the selectors are the fixed slots e1/e2 (Ed25519) and r1/r2 (RSA); remove selectorTemplate",
        ));
    }
    Ok(Some(DkimDelegation {
        zone,
        dns_server: server_name,
    }))
}

/// The domain's `dnsManagement`, its zone origin and the TTL of its DNS server.
fn dns_management(
    key: &str,
    raw: Option<RawDnsManagement>,
    dns_servers: &[DnsServer],
) -> Result<(DnsManagement, Option<String>, Option<u32>)> {
    let Some(RawDnsManagement::Automatic(auto)) = raw else {
        return Ok((DnsManagement::Manual, None, None));
    };
    let key = format!("{key}.automatic");
    let Some(server) = dns_servers.iter().find(|s| s.name == auto.dns_server) else {
        let known: Vec<&str> = dns_servers.iter().map(|s| s.name.as_str()).collect();
        return Err(ConfigError::new(
            format!("{key}.dnsServer"),
            Some(&auto.dns_server),
            format!(
                "no [dnsServer.{}] table (defined: {})",
                auto.dns_server,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    let publish_records = match auto.publish_records {
        None => DEFAULT_PUBLISH_RECORDS.to_vec(),
        Some(names) => list(&names, &format!("{key}.publishRecords"), |k, v| {
            v.parse::<DnsRecordType>()
                .map_err(|e| ConfigError::new(k, Some(v), e.to_string()))
        })?,
    };
    Ok((
        DnsManagement::Automatic {
            dns_server: auto.dns_server,
            publish_records,
        },
        auto.origin,
        server.ttl,
    ))
}

/// `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
fn socket_addr(text: &str) -> Option<std::net::SocketAddr> {
    text.parse().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
    })
}

/// Decodes a TSIG secret written as base64 text, or as the BIND `key { secret "…"; }`
/// block `tsig-keygen` writes; `None` when it is neither (or empty).
pub fn decode_tsig_secret(text: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let base64_text =
        zeroize::Zeroizing::new(bind_secret(text).unwrap_or_else(|| text.trim().to_string()));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_text.trim())
        .ok()?;
    (!bytes.is_empty()).then(|| zeroize::Zeroizing::new(bytes))
}

/// The `secret "…";` of a BIND key file, if the text is one.
fn bind_secret(text: &str) -> Option<String> {
    let start = text.find("secret")?;
    let rest = &text[start + "secret".len()..];
    let open = rest.find('"')?;
    let close = rest[open + 1..].find('"')?;
    Some(rest[open + 1..open + 1 + close].to_string())
}

/// The longest duration a setting may take: a century. Longer ones mean "never" anyway,
/// and would overflow the clocks they are added to (instants, Unix seconds).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(3_155_760_000);

/// A duration such as `0s`, `500ms`, `30s`, `5m` or `1h` (humantime's syntax), at most
/// [`MAX_DURATION`]. Command-line flags parse durations with it too.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|e| format!("not a duration ({e}); write e.g. 500ms, 30s, 5m"))?;
    if parsed > MAX_DURATION {
        return Err("too long: a duration is at most 100 years".to_string());
    }
    Ok(parsed)
}

fn duration(key: &str, value: Option<String>, default: &str) -> Result<std::time::Duration> {
    let text = value.unwrap_or_else(|| default.to_string());
    parse_duration(&text).map_err(|reason| ConfigError::new(key, Some(&text), reason))
}

/// RFC 8301 §3.2: verifiers accept RSA keys of 1024 to 4096 bits; mailzone makes 2048 or
/// more.
fn rsa_bits(key: &str, value: Option<i64>) -> Result<usize> {
    let Some(bits) = value else {
        return Ok(dkim::GENERATED_RSA_BITS);
    };
    usize::try_from(bits)
        .ok()
        .filter(|b| dkim::RSA_BITS_ALLOWED.contains(b))
        .ok_or_else(|| {
            ConfigError::new(
                key,
                Some(&bits.to_string()),
                "RSA keys are made with 2048, 3072 or 4096 bits (RFC 8301 §3.2: fewer is weak, more does not verify everywhere)",
            )
        })
}

fn host(key: &str, written: &str) -> Result<Name> {
    Name::host(written).map_err(|e| ConfigError::new(key, Some(written), e.to_string()))
}

fn list<T>(values: &[String], key: &str, f: impl Fn(&str, &str) -> Result<T>) -> Result<Vec<T>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| f(&format!("{key}[{i}]"), v.trim()))
        .collect()
}

/// RFC 2181 §8: a TTL is at most 2^31 - 1; zero defeats caching entirely.
fn ttl(key: &str, value: Option<u32>) -> Result<Option<u32>> {
    match value {
        Some(v) if v == 0 || v > i32::MAX as u32 => Err(ConfigError::new(
            key,
            Some(&v.to_string()),
            "a TTL must be between 1 and 2147483647 seconds",
        )),
        other => Ok(other),
    }
}

fn port(key: &str, value: Option<u16>) -> Result<Option<u16>> {
    match value {
        Some(0) => Err(ConfigError::new(
            key,
            Some("0"),
            "port 0 is not a service port",
        )),
        other => Ok(other),
    }
}

fn spf_policy(key: &str, raw: Option<RawSpf>) -> Result<SpfPolicy> {
    let Some(raw) = raw else {
        return Ok(SpfPolicy {
            all_qualifier: '-',
            mechanisms: Vec::new(),
        });
    };
    let all_qualifier = match raw.qualifier.as_deref().map(str::trim) {
        None | Some("-") | Some("fail") | Some("-all") => '-',
        Some("~") | Some("softfail") | Some("~all") => '~',
        Some("?") | Some("neutral") | Some("?all") => '?',
        Some(other) => {
            return Err(ConfigError::new(
                format!("{key}.qualifier"),
                Some(other),
                "use \"-\" (fail), \"~\" (softfail) or \"?\" (neutral); \"+all\" would authorise every host on the Internet",
            ));
        }
    };
    let mechanisms = list(&raw.mechanisms, &format!("{key}.mechanisms"), |k, m| {
        spf::validate_term(m)
            .map(|_| m.to_string())
            .map_err(|e| ConfigError::new(k, Some(m), e))
    })?;
    Ok(SpfPolicy {
        all_qualifier,
        mechanisms,
    })
}

fn mta_sts_policy(key: &str, raw: Option<RawMtaSts>, server: &Server) -> Result<MtaStsPolicy> {
    let default_mx = || {
        server
            .mail_exchangers
            .iter()
            .map(|m| m.hostname.as_str().to_string())
            .collect::<Vec<_>>()
    };
    let Some(raw) = raw else {
        return Ok(MtaStsPolicy {
            enabled: true,
            mode: MtaStsMode::Enforce,
            max_age: DEFAULT_MTA_STS_MAX_AGE,
            mx: default_mx(),
        });
    };
    let max_age = raw.max_age.unwrap_or(DEFAULT_MTA_STS_MAX_AGE);
    if max_age > mtasts::MAX_AGE_LIMIT {
        return Err(ConfigError::new(
            format!("{key}.maxAge"),
            Some(&max_age.to_string()),
            "RFC 8461 §3.2 allows at most 31557600 seconds",
        ));
    }
    let mx = match raw.mx {
        None => default_mx(),
        Some(patterns) => list(&patterns, &format!("{key}.mx"), |k, p| {
            // RFC 8461 §4.1: a pattern is a host name or `*.` followed by one, in A-labels
            // (§3.2's ABNF is ASCII): a Unicode name is served as its A-label.
            let (wildcard, host_part) = match p.strip_prefix("*.") {
                Some(rest) => ("*.", rest),
                None => ("", p),
            };
            Name::host(host_part)
                .map(|name| format!("{wildcard}{}", name.as_str()))
                .map_err(|e| ConfigError::new(k, Some(p), e.to_string()))
        })?,
    };
    Ok(MtaStsPolicy {
        enabled: raw.enabled.unwrap_or(true),
        mode: raw.mode.unwrap_or(MtaStsMode::Enforce),
        max_age,
        mx,
    })
}

fn caa_policy(key: &str, raw: RawCaa, default_iodef: &str) -> Result<CaaPolicy> {
    if raw.issuers.is_empty() {
        return Err(ConfigError::new(
            format!("{key}.issuers"),
            None,
            "name at least one CA (e.g. \"letsencrypt.org\")",
        ));
    }
    let issuers = list(&raw.issuers, &format!("{key}.issuers"), host)?;
    let issuers_wild = raw
        .issuers_wild
        .map(|w| list(&w, &format!("{key}.issuersWild"), host))
        .transpose()?;
    for (i, method) in raw.validation_methods.iter().enumerate() {
        // RFC 8657 §4: method names are ACME challenge types, letters, digits and hyphens.
        if method.is_empty()
            || !method
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ConfigError::new(
                format!("{key}.validationMethods[{i}]"),
                Some(method),
                "not an ACME challenge type (e.g. dns-01)",
            ));
        }
    }
    if let Some(uri) = &raw.account_uri
        && (uri.contains(char::is_whitespace) || uri.contains(';') || uri.contains('"'))
    {
        return Err(ConfigError::new(
            format!("{key}.accountUri"),
            Some(uri),
            "an account URI may not contain spaces, `;` or quotes",
        ));
    }
    let iodef = raw.iodef.unwrap_or_else(|| default_iodef.to_string());
    if !(iodef.starts_with("mailto:") || iodef.starts_with("https:")) {
        return Err(ConfigError::new(
            format!("{key}.iodef"),
            Some(&iodef),
            "iodef must be a mailto: or https: URI (RFC 8659 §4.4)",
        ));
    }
    Ok(CaaPolicy {
        issuers,
        issuers_wild,
        account_uri: raw.account_uri,
        validation_methods: raw.validation_methods,
        iodef: Some(iodef),
    })
}
