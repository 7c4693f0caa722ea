//! `[dnsServer.<name>]`: where and how zones are published — RFC 2136 with TSIG (RFC 8945),
//! the PowerDNS API, zone files, or a provider of the `dns-update` library — each secret
//! read from a file, the environment or the config.

use super::raw::*;
use super::*;

/// Keys every kind takes.
const COMMON_KEYS: [&str; 9] = [
    "kind",
    "ttl",
    "timeout",
    "propagationDelay",
    "pollingInterval",
    "propagationTimeout",
    "authoritativeServers",
    "maxRequestsPerSecond",
    "maxConcurrentZones",
];

impl Validator<'_> {
    pub(super) fn dns_server(
        &self,
        key: &str,
        name: String,
        raw: RawDnsServer,
    ) -> Result<DnsServer> {
        let kind = raw.kind.trim().to_ascii_lowercase();
        let provider = match kind.as_str() {
            "rfc2136" => self.rfc2136(key, &raw)?,
            "powerdns" => self.powerdns(key, &raw)?,
            "zonefile" => self.zonefile(key, &raw)?,
            other => match super::providers::dns_update_provider(other) {
                Some(known) => self.dns_update(key, known, &raw)?,
                None => return Err(unknown_kind(key, &raw.kind)),
            },
        };
        refuse_other_kinds_keys(key, &provider, &raw)?;
        let authoritative_servers = raw
            .authoritative_servers
            .as_ref()
            .map(|servers| {
                list(servers, &format!("{key}.authoritativeServers"), |k, v| {
                    socket_addr(v).ok_or_else(|| {
                        ConfigError::new(
                            k,
                            Some(v),
                            "expected IP or IP:PORT (e.g. 192.0.2.53:53 or [2001:db8::53]:53)",
                        )
                    })
                })
            })
            .transpose()?;
        Ok(DnsServer {
            name,
            provider,
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
            request_interval: request_interval(key, raw.max_requests_per_second)?,
            max_concurrent_zones: concurrent_zones(key, &kind, raw.max_concurrent_zones)?,
        })
    }

    /// RFC 2136 dynamic updates signed with TSIG (RFC 8945).
    fn rfc2136(&self, key: &str, raw: &RawDnsServer) -> Result<DnsProvider> {
        let host = required(
            key,
            "host",
            &raw.host,
            "a host name or IP address is needed",
        )?;
        if let Some(inline) = &raw.key
            && decode_tsig_secret(inline).is_none()
        {
            // Checked here so a typo is found at load time, not at the first publish.
            return Err(ConfigError::new(
                format!("{key}.key"),
                None,
                "the TSIG secret must be base64 text, as tsig-keygen or keymgr print it (the value is not shown)",
            ));
        }
        let secret = self.secret(key, "key", raw)?;
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
        Ok(DnsProvider::Rfc2136 {
            host: host.to_string(),
            port: port(&format!("{key}.port"), raw.port)?.unwrap_or(53),
            protocol: raw.protocol.unwrap_or(Transport::Tcp),
            key_name: raw
                .key_name
                .as_ref()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase()),
            key: secret,
            algorithm: raw.algorithm.unwrap_or(TsigAlgorithm::HmacSha256),
        })
    }

    /// The PowerDNS Authoritative HTTP API.
    fn powerdns(&self, key: &str, raw: &RawDnsServer) -> Result<DnsProvider> {
        let url = raw.url.as_deref().unwrap_or("").trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::new(
                format!("{key}.url"),
                raw.url.as_deref(),
                "the API's base URL is needed, e.g. http://127.0.0.1:8081",
            ));
        }
        let server_id = raw.server_id.as_deref().unwrap_or("localhost").trim();
        if server_id.is_empty() || server_id.contains('/') {
            return Err(ConfigError::new(
                format!("{key}.serverId"),
                Some(server_id),
                "a PowerDNS server id such as localhost",
            ));
        }
        let secret = self.secret(key, "key", raw)?.ok_or_else(|| {
            ConfigError::new(
                format!("{key}.key"),
                None,
                "the API key (api-key in pdns.conf) is needed: keyFile, keyEnv or key",
            )
        })?;
        let dns_address = match raw.dns_address.as_deref().map(str::trim) {
            None => None,
            Some(text) => Some(socket_addr(text).ok_or_else(|| {
                ConfigError::new(
                    format!("{key}.dnsAddress"),
                    Some(text),
                    "expected IP or IP:PORT where this PowerDNS answers DNS (e.g. 127.0.0.1:53)",
                )
            })?),
        };
        Ok(DnsProvider::PowerDns {
            url: url.trim_end_matches('/').to_string(),
            server_id: server_id.to_string(),
            key: secret,
            dns_address,
        })
    }

    /// Zone files on disk.
    fn zonefile(&self, key: &str, raw: &RawDnsServer) -> Result<DnsProvider> {
        let path = required(
            key,
            "path",
            &raw.path,
            "the file to write is needed; {zone} stands for the zone's name and {stateDir} for the state directory, e.g. /var/lib/knot/{zone}.zone",
        )?;
        let layout = raw.layout.unwrap_or_default();
        if raw.zone_file.is_some() && layout != ZoneFileLayout::Include {
            return Err(ConfigError::new(
                format!("{key}.zoneFile"),
                raw.zone_file.as_deref(),
                "zoneFile is the file that $INCLUDEs mailzone's: only with layout = \"include\"",
            ));
        }
        // `{stateDir}` is the state directory, known when publishing; other relative
        // paths are relative to the config file.
        let resolve = |k: &str, p: &str| -> Result<String> {
            if p.starts_with("{stateDir}") {
                return Ok(p.to_string());
            }
            Ok(self
                .file(&format!("{key}.{k}"), p)?
                .path
                .display()
                .to_string())
        };
        Ok(DnsProvider::ZoneFile {
            path: resolve("path", path)?,
            layout,
            zone_file: raw
                .zone_file
                .as_deref()
                .map(|z| resolve("zoneFile", z))
                .transpose()?,
            reload_command: self
                .command(&format!("{key}.reloadCommand"), raw.reload_command.clone())?,
        })
    }

    /// A provider of the `dns-update` library: its settings as the catalog lists them.
    fn dns_update(
        &self,
        key: &str,
        known: &super::providers::ProviderKind,
        raw: &RawDnsServer,
    ) -> Result<DnsProvider> {
        let mut settings = std::collections::BTreeMap::new();
        for setting in known.settings {
            let value = if setting.secret {
                self.secret(key, setting.key, raw)?.map(Setting::Secret)
            } else {
                plain_setting(key, setting.key, raw)?.map(Setting::Plain)
            };
            match value {
                Some(value) => {
                    settings.insert(setting.key.to_string(), value);
                }
                None if setting.required => {
                    let how = if setting.secret {
                        format!(" (as {0}, {0}File or {0}Env)", setting.key)
                    } else {
                        String::new()
                    };
                    return Err(ConfigError::new(
                        format!("{key}.{}", setting.key),
                        None,
                        format!(
                            "{} needs {}{how}: {}",
                            known.title, setting.key, setting.help
                        ),
                    ));
                }
                None => {}
            }
        }
        Ok(DnsProvider::DnsUpdate {
            kind: known.kind.to_string(),
            settings,
        })
    }

    /// A secret given once as `<name>`, `<name>File` or `<name>Env`: `key` (TSIG or API
    /// key) has fields of its own, a provider's secret settings are among `settings`.
    fn secret(&self, key: &str, name: &str, raw: &RawDnsServer) -> Result<Option<SecretSource>> {
        if name == "key" {
            return self.secret_of(
                key,
                name,
                raw.key.clone(),
                raw.key_file.clone(),
                raw.key_env.clone(),
            );
        }
        let text = |suffix: &str| -> Result<Option<String>> {
            let full = format!("{name}{suffix}");
            raw.settings
                .get(&full)
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ConfigError::new(format!("{key}.{full}"), None, "expected a string")
                    })
                })
                .transpose()
        };
        self.secret_of(key, name, text("")?, text("File")?, text("Env")?)
    }

    fn secret_of(
        &self,
        key: &str,
        name: &str,
        inline: Option<String>,
        file: Option<String>,
        env: Option<String>,
    ) -> Result<Option<SecretSource>> {
        let given = [inline.is_some(), file.is_some(), env.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(ConfigError::new(
                key,
                None,
                format!("give the secret once: {name}, {name}File or {name}Env"),
            ));
        }
        if let Some(inline) = inline {
            return Ok(Some(SecretSource::Inline(zeroize::Zeroizing::new(inline))));
        }
        if let Some(file) = file {
            return Ok(Some(SecretSource::File(
                self.file(&format!("{key}.{name}File"), &file)?,
            )));
        }
        Ok(env.map(SecretSource::Env))
    }
}

/// A plain setting of a `dns-update` provider as text (numbers and booleans as written).
fn plain_setting(key: &str, name: &str, raw: &RawDnsServer) -> Result<Option<String>> {
    let Some(value) = raw.settings.get(name) else {
        return Ok(None);
    };
    let text = match value {
        toml::Value::String(s) => s.trim().to_string(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => {
            return Err(ConfigError::new(
                format!("{key}.{name}"),
                None,
                "expected a string, a number or true/false",
            ));
        }
    };
    Ok(Some(text))
}

/// The error for a kind mailzone does not know, with the close names.
fn unknown_kind(key: &str, kind: &str) -> ConfigError {
    let close = super::providers::close_kinds(&kind.trim().to_ascii_lowercase());
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", close.join(", "))
    };
    ConfigError::new(
        format!("{key}.kind"),
        Some(kind),
        format!(
            "unknown DNS server kind{hint} (`mailzone providers` lists every kind: {}, and {} providers of dns-update)",
            super::providers::NATIVE_PROVIDERS
                .iter()
                .map(|p| p.kind)
                .collect::<Vec<_>>()
                .join(", "),
            super::providers::DNS_UPDATE_PROVIDERS.len()
        ),
    )
}

/// A key that belongs to another kind (or to none) is refused by name, so a typo or a
/// half-edited table never passes silently.
fn refuse_other_kinds_keys(key: &str, provider: &DnsProvider, raw: &RawDnsServer) -> Result<()> {
    let own: Vec<String> = super::providers::provider_kind(provider.kind())
        .map(|p| {
            p.settings
                .iter()
                .flat_map(|s| {
                    if s.secret {
                        vec![
                            s.key.to_string(),
                            format!("{}File", s.key),
                            format!("{}Env", s.key),
                        ]
                    } else {
                        vec![s.key.to_string()]
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let given = [
        ("host", raw.host.is_some()),
        ("port", raw.port.is_some()),
        ("protocol", raw.protocol.is_some()),
        ("keyName", raw.key_name.is_some()),
        ("algorithm", raw.algorithm.is_some()),
        ("key", raw.key.is_some()),
        ("keyFile", raw.key_file.is_some()),
        ("keyEnv", raw.key_env.is_some()),
        ("url", raw.url.is_some()),
        ("serverId", raw.server_id.is_some()),
        ("dnsAddress", raw.dns_address.is_some()),
        ("path", raw.path.is_some()),
        ("layout", raw.layout.is_some()),
        ("zoneFile", raw.zone_file.is_some()),
        ("reloadCommand", raw.reload_command.is_some()),
    ];
    let stray = given
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name.to_string())
        .chain(raw.settings.keys().cloned())
        .find(|name| !own.contains(name) && !COMMON_KEYS.contains(&name.as_str()));
    match stray {
        None => Ok(()),
        Some(name) => {
            let mut keys = own.clone();
            keys.extend(COMMON_KEYS.iter().skip(1).map(|k| k.to_string()));
            Err(ConfigError::new(
                format!("{key}.{name}"),
                None,
                format!(
                    "not a setting of kind {}; its keys are: {}",
                    provider.kind(),
                    keys.join(", ")
                ),
            ))
        }
    }
}

/// `maxRequestsPerSecond` as the least interval between two requests.
fn request_interval(key: &str, rate: Option<f64>) -> Result<Option<std::time::Duration>> {
    match rate {
        None => Ok(None),
        Some(r) if r.is_finite() && r > 0.0 && r <= 100_000.0 => {
            Ok(Some(std::time::Duration::from_secs_f64(1.0 / r)))
        }
        Some(r) => Err(ConfigError::new(
            format!("{key}.maxRequestsPerSecond"),
            Some(&r.to_string()),
            "a rate above 0 and at most 100000 (e.g. 0.5 for one request every two seconds)",
        )),
    }
}

/// `maxConcurrentZones`: 1 to 256; by default 32 for RFC 2136 servers, 16 for zone files,
/// 4 for HTTP APIs, whose quotas are per account. 32 is every zone a CLI run holds: an
/// authoritative server syncs its journal once per UPDATE (Knot: `fdatasync`), and more
/// zones at it keep it busy meanwhile (10,000 zones into one Knot on 2 cores: a publish at
/// 1.13–1.14× knotd's CPU instead of 1.17–1.18×, a key change 1.22× instead of 1.26×).
/// PowerDNS counts as an HTTP API here: its web server answered some of 16 simultaneous
/// connections seconds late (measured with 4.7 on 2 cores), and it applies writes one at
/// a time.
fn concurrent_zones(key: &str, kind: &str, given: Option<u32>) -> Result<usize> {
    match given {
        None if kind == "rfc2136" => Ok(32),
        None if kind == "zonefile" => Ok(16),
        None => Ok(4),
        Some(n @ 1..=256) => Ok(n as usize),
        Some(n) => Err(ConfigError::new(
            format!("{key}.maxConcurrentZones"),
            Some(&n.to_string()),
            "between 1 and 256",
        )),
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

/// The trimmed text of the setting `field`, which must not be empty (`why` says what it
/// is for).
fn required<'a>(key: &str, field: &str, value: &'a Option<String>, why: &str) -> Result<&'a str> {
    let text = value.as_deref().unwrap_or("").trim();
    if text.is_empty() {
        return Err(ConfigError::new(
            format!("{key}.{field}"),
            value.as_deref(),
            why,
        ));
    }
    Ok(text)
}
