//! The config file (`mailzone.toml`): parsing and validation into the [`crate::model`].
//!
//! Pure: the text is passed in and file names are resolved against a base directory
//! without touching the file system (the engine reads them). Every mistake is reported as
//! one [`ConfigError`] naming the key path and the bad value; unknown keys are errors so
//! that a typo is never silently ignored.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::model::*;

mod acme;
mod chunks;
pub use acme::{DEFAULT_RENEW_BEFORE, managed_zone};
mod dkim_management;
mod dns_server;
mod domain;
mod providers;
pub use providers::{
    DNS_UPDATE_PROVIDERS, NATIVE_PROVIDERS, ProviderKind, Setting as ProviderSetting, close_kinds,
    dns_update_provider, provider_kind, provider_kinds,
};
mod raw;
mod service;
pub mod snapshot;
mod values;
pub use service::DEFAULT_CHECK_INTERVAL;

use crate::name::Name;
use crate::record::RecordPurpose;
use crate::{dkim, dmarc, mtasts, spf};
pub use dns_server::decode_tsig_secret;
use dns_server::*;
use raw::*;
use values::*;
pub use values::{MAX_DURATION, parse_duration};

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
    let (raw, _) = parse_raw(text)?;
    Validator::new(base_dir).config(raw, None)
}

/// [`parse`], letting go of the text once it is read: the text of 100,000 domains (tens
/// of MB) is not held while the validated config is built beside the file as written.
pub fn parse_owned(text: String, base_dir: &Path) -> Result<Config> {
    let (raw, _) = parse_raw(&text)?;
    drop(text);
    Validator::new(base_dir).config(raw, None)
}

/// [`parse_owned`] of a text keyed for a [`snapshot`], with the header a snapshot of its
/// domains is taken under (`None` for a file parsed whole: a small one, where a snapshot
/// would save nothing).
pub fn parse_for_snapshot(keyed: snapshot::Keyed) -> Result<(Config, Option<snapshot::Header>)> {
    let snapshot::Keyed {
        text,
        base_dir,
        key,
    } = keyed;
    let (raw, others) = parse_raw(&text)?;
    drop(text);
    let config = Validator::new(&base_dir).config(raw, None)?;
    Ok((
        config,
        others.map(|others| snapshot::Header::new(key, others)),
    ))
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
    Validator::new(base_dir).config(raw, None)
}

/// A big file is parsed a chunk at a time when that provably gives the same result (see
/// [`chunks`]); any other file, and any file with a mistake, is parsed whole.
/// With the chunked parse, the spans of the chunks holding more than domains.
fn parse_raw(text: &str) -> Result<(RawConfig, Option<Vec<chunks::ChunkSpan>>)> {
    match chunks::parse_chunked(text) {
        Some((raw, others)) => Ok((raw, Some(others))),
        None => parse_whole(text).map(|raw| (raw, None)),
    }
}

fn parse_whole(text: &str) -> Result<RawConfig> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| syntax_error(text, &e))?;
    // Only whitespace and comments: serde would say "missing field `server`" at an empty
    // key path, which reads like a bug rather than a file with nothing in it. The text
    // is valid TOML here, so its tokens tell, without a second parse.
    if chunks::is_blank(text) {
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

/// The domain's DKIM key files replaced by the first value naming the same file, so that
/// a file named by thousands of domains is held once, with the key path of the first key
/// naming it (where a problem with the file is reported).
fn share_key_files(
    domain: &mut Domain,
    known: &mut std::collections::HashMap<std::path::PathBuf, std::sync::Arc<FileRef>>,
) {
    if let DkimManagement::Manual { keys } = &mut domain.dkim_management {
        for key in keys {
            let file = &mut key.private_key_file;
            let shared = known
                .entry(file.path.clone())
                .or_insert_with(|| file.clone());
            *file = std::sync::Arc::clone(shared);
        }
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

impl<'a> Validator<'a> {
    fn new(base_dir: &'a Path) -> Validator<'a> {
        Validator { base_dir }
    }
}

type Result<T> = std::result::Result<T, ConfigError>;
impl Validator<'_> {
    /// The config of `raw`; with `validated`, its domains are these (validated from this
    /// text before: [`snapshot`]) and `raw`'s are not looked at.
    fn config(&self, mut raw: RawConfig, validated: Option<Vec<Domain>>) -> Result<Config> {
        let raw_acme = raw.server.acme.take();
        let mut server = self.server(raw.server)?;
        let mut dns_servers = Vec::with_capacity(raw.dns_server.len());
        for (name, dns_server) in raw.dns_server {
            let key = format!("dnsServer.{}", toml_key(&name));
            dns_servers.push(self.dns_server(&key, name, dns_server)?);
        }
        let domains = match validated {
            Some(domains) => domains,
            None => self.domains(raw.domain, raw.domain_chunks, &server, &dns_servers)?,
        };
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
            domain_index: Default::default(),
        })
    }

    /// The domains of every chunk, validated in file order (the first mistake in the file
    /// is the one reported), a domain named twice failing, every key naming one DKIM key
    /// file given one value (see [`ManualDkimKey`]). The chunks are validated on two
    /// threads and merged in order as each is next ([`chunks::in_turn_merged`]): only a
    /// chunk or two of validated domains wait beside the final list, and each chunk's raw
    /// form is let go once validated.
    fn domains(
        &self,
        domain: indexmap::IndexMap<String, RawDomain>,
        chunks: Vec<indexmap::IndexMap<String, RawDomain>>,
        server: &Server,
        dns_servers: &[DnsServer],
    ) -> Result<Vec<Domain>> {
        let count = domain.len() + chunks.iter().map(|c| c.len()).sum::<usize>();
        let mut domains = Vec::with_capacity(count);
        // Two spellings can name one domain (`Bücher.example`, `xn--bcher-kva.example`).
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut key_files = std::collections::HashMap::new();
        let parts: Vec<std::sync::Mutex<Option<indexmap::IndexMap<String, RawDomain>>>> =
            std::iter::once(domain)
                .chain(chunks)
                .map(|part| std::sync::Mutex::new(Some(part)))
                .collect();
        let validate = |index: usize| {
            let part = parts[index]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .expect("each chunk is validated once");
            let mut valid = Vec::with_capacity(part.len());
            for (name, raw) in part {
                let key = format!("domain.{}", toml_key(&name));
                match self.domain(&key, &name, raw, server, dns_servers) {
                    Ok(domain) => valid.push((name, domain)),
                    Err(e) => return (valid, Some(e)),
                }
            }
            (valid, None)
        };
        chunks::in_turn_merged(parts.len(), validate, |(valid, error)| {
            for (name, mut domain) in valid {
                if !seen.insert(domain.name.clone()) {
                    return Err(ConfigError::new(
                        format!("domain.{}", toml_key(&name)),
                        Some(&name),
                        format!("domain {} is configured twice", domain.name.as_str()),
                    ));
                }
                share_key_files(&mut domain, &mut key_files);
                domains.push(domain);
            }
            error.map_or(Ok(()), Err)
        })?;
        Ok(domains)
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
}
