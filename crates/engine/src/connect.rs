//! Builds a [`Provider`] from a `DnsServer` of the config: resolves the host, reads the TSIG
//! secret from wherever the config says it is. Secrets are never part of an error.

use std::net::SocketAddr;
use std::path::Path;

use mailzone_dns::Provider;
use mailzone_dns::rfc2136::{Rfc2136Config, Rfc2136Provider, TsigConfig};
use mailzone_records::{DnsProvider, DnsServer, SecretSource};
use zeroize::Zeroizing;

use crate::{EngineError, LoadedConfig};

/// A DNS server connected to: its provider, and the address its host resolved to (the
/// primary, which propagation does not need to poll).
pub struct Connection {
    pub provider: Box<dyn Provider>,
    pub endpoint: SocketAddr,
}

/// Connects to a DNS server of the config: its host resolved once, here.
pub async fn connect(loaded: &LoadedConfig, server: &DnsServer) -> Result<Connection, EngineError> {
    let DnsProvider::Rfc2136 {
        host,
        port,
        protocol,
        key_name,
        key,
        algorithm,
    } = &server.provider;
    let key_path = format!("dnsServer.{}", server.name);
    let addr = resolve(loaded, server, host, *port).await?;
    let tsig = match (key_name, key) {
        (Some(name), Some(source)) => Some(TsigConfig {
            key_name: name.clone(),
            algorithm: *algorithm,
            secret: read_secret(&loaded.path, &key_path, source)?,
        }),
        _ => None,
    };
    let config = Rfc2136Config {
        server: addr,
        protocol: *protocol,
        tsig,
        timeout: server.timeout,
    };
    Ok(Connection {
        provider: Box::new(Rfc2136Provider::new(config)),
        endpoint: addr,
    })
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
fn read_secret(
    config_file: &Path,
    key_path: &str,
    source: &SecretSource,
) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let fail = |key: &str, reason: String| {
        EngineError::InvalidConfig(format!("{}: {key}: {reason}", config_file.display()))
    };
    let (text, key) = match source {
        SecretSource::Inline(text) => (Zeroizing::new(text.to_string()), format!("{key_path}.key")),
        SecretSource::File(file) => {
            let text = crate::files::read_to_string_limited(
                &file.path,
                crate::files::REFERENCED_FILE_LIMIT,
            )
            .map_err(|e| {
                fail(
                    &file.key_path,
                    format!("cannot read {}: {e}", file.path.display()),
                )
            })?;
            (Zeroizing::new(text), file.key_path.clone())
        }
        SecretSource::Env(var) => {
            let text = std::env::var(var).map_err(|_| {
                fail(
                    &format!("{key_path}.keyEnv"),
                    format!("the environment variable {var} is not set"),
                )
            })?;
            (Zeroizing::new(text), format!("{key_path}.keyEnv"))
        }
    };
    mailzone_records::config::decode_tsig_secret(&text).ok_or_else(|| {
        fail(
            &key,
            "the TSIG secret is not valid base64 (the secret itself is not shown)".into(),
        )
    })
}
