//! `[dnsServer.<name>]`: where and how zones are published (RFC 2136 with TSIG, RFC 8945),
//! the secret read from a file, the environment or the config.

use super::raw::*;
use super::*;

impl Validator<'_> {
    pub(super) fn dns_server(
        &self,
        key: &str,
        name: String,
        raw: RawDnsServer,
    ) -> Result<DnsServer> {
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
}

/// `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
pub(super) fn socket_addr(text: &str) -> Option<std::net::SocketAddr> {
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
pub(super) fn bind_secret(text: &str) -> Option<String> {
    let start = text.find("secret")?;
    let rest = &text[start + "secret".len()..];
    let open = rest.find('"')?;
    let close = rest[open + 1..].find('"')?;
    Some(rest[open + 1..open + 1 + close].to_string())
}
