//! Builds a [`Provider`] from a `DnsServer` of the config: resolves the host, reads the
//! secret (TSIG key, API key, token) from wherever the config says it is, paces the
//! requests when `maxRequestsPerSecond` is set. Secrets are never part of an error.
//! [`test_dns_server`] (`probe.rs`) tries a DNS server's credentials on one zone through
//! the same connection, for the "Test connection" of the API and the web UI.

use std::net::SocketAddr;
use std::path::Path;

use mailzone_dns::Provider;
use mailzone_dns::paced::Paced;
use mailzone_dns::powerdns::{PowerDnsConfig, PowerDnsProvider};
use mailzone_dns::rfc2136::{Rfc2136Config, Rfc2136Provider, TsigConfig};
use mailzone_dns::zone_file::{Layout, ZoneFileConfig, ZoneFileProvider};
use mailzone_records::{DnsProvider, DnsServer, SecretSource, Setting, ZoneFileLayout};
use zeroize::Zeroizing;

use crate::{EngineError, LoadedConfig};

mod probe;
pub use probe::{ConnectionTest, default_zone, test_dns_server};

/// A DNS server connected to: its provider, and, for a DNS server spoken to over DNS, the
/// address its host resolved to (the primary, which propagation does not need to poll).
pub struct Connection {
    pub provider: Box<dyn Provider>,
    pub endpoint: Option<SocketAddr>,
}

/// Connects to a DNS server of the config: its host resolved once, here; its secret read
/// here; its requests paced when the config limits their rate.
/// `state_dir` stands for `{stateDir}` in a zone-file path.
pub async fn connect(
    loaded: &LoadedConfig,
    server: &DnsServer,
    state_dir: &Path,
) -> Result<Connection, EngineError> {
    let key_path = format!("dnsServer.{}", server.name);
    let (provider, endpoint): (Box<dyn Provider>, Option<SocketAddr>) = match &server.provider {
        DnsProvider::Rfc2136 {
            host,
            port,
            protocol,
            key_name,
            key,
            algorithm,
        } => {
            let addr = resolve(loaded, server, host, *port).await?;
            let tsig = match (key_name, key) {
                (Some(name), Some(source)) => Some(TsigConfig {
                    key_name: name.clone(),
                    algorithm: *algorithm,
                    secret: read_tsig_secret(&loaded.path, &key_path, source)?,
                }),
                _ => None,
            };
            let config = Rfc2136Config {
                server: addr,
                protocol: *protocol,
                tsig,
                timeout: server.timeout,
            };
            (Box::new(Rfc2136Provider::new(config)), Some(addr))
        }
        DnsProvider::PowerDns {
            url,
            server_id,
            key,
            dns_address,
        } => {
            let (host, port) = mailzone_dns::powerdns::api_host(url).ok_or_else(|| {
                EngineError::InvalidConfig(format!(
                    "{}: {key_path}.url: not a URL with a host: {url}",
                    loaded.path.display()
                ))
            })?;
            let address = resolve(loaded, server, &host, port).await?;
            let config = PowerDnsConfig {
                url: url.clone(),
                server_id: server_id.clone(),
                api_key: read_secret_text(&loaded.path, &key_path, "key", key)?,
                timeout: server.timeout,
                address,
                dns_address: *dns_address,
            };
            let provider = PowerDnsProvider::new(config).map_err(|e| EngineError::Dns {
                zone: String::new(),
                error: e,
            })?;
            (Box::new(provider), None)
        }
        DnsProvider::ZoneFile {
            path,
            layout,
            zone_file,
            reload_command,
        } => {
            let in_state_dir = |p: &str| p.replace("{stateDir}", &state_dir.to_string_lossy());
            let config = ZoneFileConfig {
                path: in_state_dir(path),
                layout: match layout {
                    ZoneFileLayout::Zone => Layout::Zone,
                    ZoneFileLayout::Include => Layout::Include,
                },
                zone_file: zone_file.as_deref().map(in_state_dir),
                reload: (!reload_command.is_empty()).then(|| reload_command.clone()),
                timeout: server.timeout,
            };
            (Box::new(ZoneFileProvider::new(config)), None)
        }
        DnsProvider::DnsUpdate { kind, settings } => {
            let mut values = mailzone_dns::dns_update::catalog::Settings::new();
            for (name, setting) in settings {
                let value = match setting {
                    Setting::Plain(text) => Zeroizing::new(text.clone()),
                    Setting::Secret(source) => {
                        read_secret_text(&loaded.path, &key_path, name, source)?
                    }
                };
                values.insert(name.clone(), value);
            }
            let provider =
                mailzone_dns::dns_update::DnsUpdateProvider::new(kind, &values, server.timeout)
                    .map_err(|reason| {
                        EngineError::InvalidConfig(format!(
                            "{}: {key_path}: {reason}",
                            loaded.path.display()
                        ))
                    })?;
            (Box::new(provider), None)
        }
    };
    let provider = match server.request_interval {
        Some(interval) => Box::new(Paced::new(provider, interval)) as Box<dyn Provider>,
        None => provider,
    };
    Ok(Connection { provider, endpoint })
}

/// The first address of `host`, asked of the system's resolver within the server's
/// timeout. A name that does not resolve now may resolve later (the resolver is down, the
/// name was just registered), so the failure is [`EngineError::Unreachable`]: transient.
async fn resolve(
    loaded: &LoadedConfig,
    server: &DnsServer,
    host: &str,
    port: u16,
) -> Result<SocketAddr, EngineError> {
    let unreachable = |reason: String| EngineError::Unreachable {
        file: loaded.path.clone(),
        dns_server: server.name.clone(),
        host: host.to_string(),
        reason,
    };
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(server.timeout, lookup).await {
        Err(_) => Err(unreachable(format!(
            "no answer from the resolver within {}",
            humantime::format_duration(server.timeout)
        ))),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| unreachable("the name has no address".into())),
    }
}

/// Reads and decodes a TSIG secret: base64 text, inline, from a file (plain base64 or a
/// BIND `key { secret "…"; }` block, as `tsig-keygen` writes it), or from an environment
/// variable.
fn read_tsig_secret(
    config_file: &Path,
    key_path: &str,
    source: &SecretSource,
) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let (text, key) = read_secret(config_file, key_path, "key", source)?;
    mailzone_records::config::decode_tsig_secret(&text).ok_or_else(|| {
        EngineError::InvalidConfig(format!(
            "{}: {key}: the TSIG secret is not valid base64 (the secret itself is not shown)",
            config_file.display()
        ))
    })
}

/// A secret as text (an API key, a token), surrounding whitespace removed.
fn read_secret_text(
    config_file: &Path,
    key_path: &str,
    name: &str,
    source: &SecretSource,
) -> Result<Zeroizing<String>, EngineError> {
    let (text, key) = read_secret(config_file, key_path, name, source)?;
    let trimmed = Zeroizing::new(text.trim().to_string());
    if trimmed.is_empty() {
        return Err(EngineError::InvalidConfig(format!(
            "{}: {key}: the secret is empty",
            config_file.display()
        )));
    }
    Ok(trimmed)
}

/// A secret's text and the key path that gave it: inline, from a file, or from an
/// environment variable.
fn read_secret(
    config_file: &Path,
    key_path: &str,
    name: &str,
    source: &SecretSource,
) -> Result<(Zeroizing<String>, String), EngineError> {
    crate::files::read_secret(config_file, &format!("{key_path}.{name}"), source)
        .map_err(EngineError::InvalidConfig)
}
