//! `--dns-server kind=rfc2136,host=…,port=…,keyName=…,keyFile=…`: the `[dnsServer.<name>]`
//! table of the starter config, written with the config file's own key names.

use mailzone_records::Name;

/// The DNS server kinds the config supports.
pub const KINDS: &[&str] = &["rfc2136"];
/// The TSIG algorithms the RFC 2136 provider signs with.
pub const TSIG_ALGORITHMS: &[&str] = &["hmac-sha256", "hmac-sha384", "hmac-sha512"];
/// The table name when `name=` is not given.
pub const DEFAULT_NAME: &str = "primary";

const KEYS: &str = "kind, name, host, port, protocol, keyName, keyFile, keyEnv, algorithm";

/// A `[dnsServer.<name>]` table. The TSIG secret is never part of it: only where it lives
/// (`keyFile` or `keyEnv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServerSpec {
    pub name: String,
    pub kind: String,
    pub host: String,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub key_name: Option<String>,
    pub key_file: Option<String>,
    pub key_env: Option<String>,
    pub algorithm: Option<String>,
}

impl DnsServerSpec {
    /// An RFC 2136 server with the defaults of the other keys.
    pub fn rfc2136(host: &str) -> DnsServerSpec {
        DnsServerSpec {
            name: DEFAULT_NAME.into(),
            kind: "rfc2136".into(),
            host: host.into(),
            port: None,
            protocol: None,
            key_name: None,
            key_file: None,
            key_env: None,
            algorithm: None,
        }
    }
}

/// Parses `key=value,key=value`. No error repeats a value that could be a secret.
pub fn parse(spec: &str) -> Result<DnsServerSpec, String> {
    let mut server = DnsServerSpec::rfc2136("");
    let mut kind = None;
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim().to_string()))
            // The entry is not repeated: it might be a secret pasted in the wrong place.
            .ok_or_else(|| format!("an entry is not key=value (keys: {KEYS})"))?;
        match key {
            "kind" => kind = Some(value),
            "name" => server.name = value,
            "host" => server.host = value,
            "port" => server.port = Some(port(&value)?),
            "protocol" => server.protocol = Some(value),
            "keyName" => server.key_name = Some(value),
            "keyFile" => server.key_file = Some(value),
            "keyEnv" => server.key_env = Some(value),
            "algorithm" => server.algorithm = Some(value),
            "key" => {
                return Err(
                    "the TSIG secret never goes into the config: give keyFile=PATH (a file holding it, 0600) or keyEnv=VARIABLE".into(),
                );
            }
            other => return Err(format!("unknown key {other:?} (keys: {KEYS})")),
        }
    }
    server.kind =
        kind.ok_or_else(|| format!("kind is missing (supported: {})", KINDS.join(", ")))?;
    validate(&server)?;
    Ok(server)
}

/// The checks the config loader makes too, with the flag's key names, so that a mistake
/// is reported before any question is asked.
pub fn validate(server: &DnsServerSpec) -> Result<(), String> {
    if !KINDS.contains(&server.kind.as_str()) {
        return Err(format!(
            "kind {:?} is not supported (supported: {})",
            server.kind,
            KINDS.join(", ")
        ));
    }
    table_name(&server.name)?;
    if server.host.is_empty() {
        return Err("host is missing: the primary DNS server's IP address or name".into());
    }
    host(&server.host)?;
    if let Some(protocol) = &server.protocol
        && protocol != "tcp"
        && protocol != "udp"
    {
        return Err(format!("protocol {protocol:?}: use tcp or udp"));
    }
    if let Some(algorithm) = &server.algorithm {
        tsig_algorithm(algorithm)?;
    }
    if server.key_file.is_some() && server.key_env.is_some() {
        return Err("give the TSIG secret's place once: keyFile or keyEnv".into());
    }
    let has_secret = server.key_file.is_some() || server.key_env.is_some();
    match &server.key_name {
        Some(name) => {
            key_name(name)?;
            if !has_secret {
                return Err(format!(
                    "keyName={name} needs keyFile=PATH (the file holding the TSIG secret) or keyEnv=VARIABLE"
                ));
            }
        }
        None if has_secret => {
            return Err(
                "keyFile/keyEnv need keyName: the TSIG key's name as the DNS server knows it"
                    .into(),
            );
        }
        None => {}
    }
    if let Some(file) = &server.key_file
        && file.is_empty()
    {
        return Err("keyFile is empty".into());
    }
    Ok(())
}

/// `[dnsServer.<name>]`: a bare TOML key.
pub fn table_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "name {name:?}: use letters, digits, - and _ (it names the [dnsServer.<name>] table)"
        ))
    }
}

/// An IP address or a host name.
pub fn host(text: &str) -> Result<(), String> {
    if text.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    Name::host(text)
        .map(|_| ())
        .map_err(|e| format!("host {text:?} is neither an IP address nor a host name: {e}"))
}

pub fn port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {text:?}: a number from 1 to 65535")),
        Ok(port) => Ok(port),
    }
}

pub fn key_name(text: &str) -> Result<(), String> {
    Name::owner(text)
        .map(|_| ())
        .map_err(|e| format!("keyName {text:?} is not a DNS name: {e}"))
}

pub fn tsig_algorithm(text: &str) -> Result<(), String> {
    if TSIG_ALGORITHMS.contains(&text) {
        Ok(())
    } else {
        Err(format!(
            "algorithm {text:?}: use {}",
            TSIG_ALGORITHMS.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_config_key_names() {
        let server = parse(
            "kind=rfc2136,host=192.0.2.53,port=5353,keyName=mailzone,keyFile=/etc/mailzone/tsig.key",
        )
        .unwrap();
        assert_eq!(server.name, "primary");
        assert_eq!(server.host, "192.0.2.53");
        assert_eq!(server.port, Some(5353));
        assert_eq!(server.key_name.as_deref(), Some("mailzone"));
        assert_eq!(server.key_file.as_deref(), Some("/etc/mailzone/tsig.key"));
        assert!(parse("kind=rfc2136,host=ns1.example.org").is_ok());
    }

    #[test]
    fn refuses_secrets_unknown_keys_and_half_keys() {
        let cases = [
            (
                "kind=rfc2136,host=ns1.example.org,keyName=k,key=c2VjcmV0",
                "never goes into the config",
            ),
            ("host=ns1.example.org", "kind is missing"),
            ("kind=route53,host=ns1.example.org", "not supported"),
            ("kind=rfc2136", "host is missing"),
            ("kind=rfc2136,host=ns1..example", "neither an IP address"),
            ("kind=rfc2136,host=h.example,port=0", "1 to 65535"),
            ("kind=rfc2136,host=h.example,keyName=k", "needs keyFile"),
            ("kind=rfc2136,host=h.example,keyFile=k.key", "need keyName"),
            (
                "kind=rfc2136,host=h.example,algorithm=hmac-md5",
                "hmac-sha256",
            ),
            (
                "kind=rfc2136,host=h.example,colour=blue",
                "unknown key \"colour\"",
            ),
            ("kind=rfc2136,host=h.example,name=a.b", "[dnsServer.<name>]"),
        ];
        for (spec, expected) in cases {
            let e = parse(spec).unwrap_err();
            assert!(e.contains(expected), "{spec}: {e}");
        }
    }
}
