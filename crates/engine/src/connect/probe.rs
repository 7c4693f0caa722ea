//! "Test connection": one DNS server's credentials tried on one zone, through the very
//! path a publication takes ([`super::connect`], then the provider's `serial` and
//! `read_zone`), so that what passes here is what a publication will meet, and what fails
//! fails with the error, and the [`FailureClass`](crate::FailureClass), a publication
//! would get.
//!
//! Over RFC 2136 with a key, the SOA question is itself TSIG-signed and its answer
//! verified (RFC 8945 §5.3: an unsigned or unverifiable answer to a signed request is an
//! error), so a wrong secret, key name or algorithm is reported as the TSIG error the
//! server gave (BADSIG, BADKEY, BADTIME), never as an unanswered question.
//!
//! A read: nothing is written to the zone or to the state database.

use std::path::Path;
use std::time::{Duration, Instant};

use mailzone_dns::DnsError;
use mailzone_records::{Config, DnsManagement, DnsProvider, DnsServer, Name, RrType};

use crate::error::ZoneFailure;
use crate::{EngineError, LoadedConfig};

/// A DNS server that answered for the zone with the credentials of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTest {
    /// The DNS server's name in the config (`[dnsServer.<name>]`).
    pub dns_server: String,
    pub zone: Name,
    /// The zone's SOA serial as the server gave it; `None` for a provider without serials
    /// (the HTTP providers of `dns-update`), where only the zone read proved the access.
    pub serial: Option<u32>,
    /// What was spoken to: the address the host resolved to (`127.0.0.1:5353`), the HTTP
    /// API's `host:port`, the zone file's path or the provider's name. Never a secret.
    pub endpoint: String,
    /// How the zone was read, as a publication would read it: `transfer` (AXFR),
    /// `queries` (the transfer refused, or a provider read RRset by RRset), `listing`
    /// (an HTTP API) or `file`.
    pub read_by: &'static str,
    /// Whether the answers proved the configured credentials were accepted: a TSIG key
    /// whose signed answers verified, an API key or token the provider took. `false` where
    /// there is nothing to prove (RFC 2136 without a key, a zone file).
    pub authenticated: bool,
    /// From the start of the connection (the host's resolution included) to the end of
    /// the read.
    pub elapsed: Duration,
}

/// Tries the credentials of DNS server `server_name` on `zone`, or, with no zone given,
/// on [`default_zone`]: connects as a publication does, asks the SOA serial and reads the
/// zone (the apex TXT RRset where a provider reads RRset by RRset).
///
/// Errors: an unknown DNS server, or no zone given and none to default to, is
/// [`EngineError::Usage`]; anything the server or the connection did is one
/// [`ZoneFailure`] in [`EngineError::Zones`], naming the zone and the DNS server, with the
/// class a publication's failure would have (unreachable, refused, auth, …). No message
/// holds a secret.
///
/// `state_dir` stands for `{stateDir}` in a zone-file path.
pub async fn test_dns_server(
    loaded: &LoadedConfig,
    server_name: &str,
    zone: Option<&Name>,
    state_dir: &Path,
) -> Result<ConnectionTest, EngineError> {
    let server = loaded.config.dns_server(server_name).ok_or_else(|| {
        EngineError::Usage(format!(
            "there is no DNS server `{server_name}` (dnsServer.{server_name})"
        ))
    })?;
    let zone = match zone {
        Some(zone) => zone.clone(),
        None => default_zone(&loaded.config, server_name).ok_or_else(|| {
            EngineError::Usage(format!(
                "no domain publishes through DNS server `{server_name}`: name the zone to test"
            ))
        })?,
    };
    probe(loaded, server, &zone, state_dir)
        .await
        .map_err(|error| {
            EngineError::Zones(vec![ZoneFailure {
                zone: zone.clone(),
                dns_server: server.name.clone(),
                error,
            }])
        })
}

/// The zone tested when none is given: the zone of the first domain (in config order)
/// that publishes through the DNS server, else the DKIM provider zone of the first domain
/// that delegates its DKIM keys to it (`delegateDnsServer`).
pub fn default_zone(config: &Config, server_name: &str) -> Option<Name> {
    let own = config.domains.iter().find(|d| {
        matches!(&d.dns_management,
            DnsManagement::Automatic { dns_server, .. } if dns_server == server_name)
    });
    if let Some(domain) = own {
        return Some(domain.zone.clone());
    }
    config
        .domains
        .iter()
        .filter_map(|d| d.dkim_management.delegation())
        .find(|delegation| delegation.dns_server == server_name)
        .map(|delegation| delegation.zone.clone())
}

/// Connect, serial, read: the steps of a publication up to its diff, in its order.
async fn probe(
    loaded: &LoadedConfig,
    server: &DnsServer,
    zone: &Name,
    state_dir: &Path,
) -> Result<ConnectionTest, EngineError> {
    let started = Instant::now();
    let connection = super::connect(loaded, server, state_dir).await?;
    let provider = &connection.provider;
    let dns = |error: DnsError| EngineError::Dns {
        zone: zone.as_str().to_string(),
        error,
    };
    // A provider without serials answers 0 without asking anything: not a serial.
    let serial = if provider.capabilities().serial {
        Some(provider.serial(zone).await.map_err(dns)?)
    } else {
        None
    };
    // One RRset, the apex TXT (where SPF lives), for a provider that reads RRset by RRset;
    // one that reads the whole zone (AXFR, a listing, a file) ignores it.
    let wanted = [(zone.clone(), RrType::Txt)];
    let snapshot = provider.read_zone(zone, &wanted).await.map_err(dns)?;
    Ok(ConnectionTest {
        dns_server: server.name.clone(),
        zone: zone.clone(),
        serial: serial.or((snapshot.serial != 0).then_some(snapshot.serial)),
        endpoint: endpoint_text(server, connection.endpoint),
        read_by: snapshot.method.name(),
        authenticated: has_credentials(&server.provider),
        elapsed: started.elapsed(),
    })
}

/// What was spoken to, without any secret: for a DNS server spoken to over DNS the
/// address its host resolved to; for the others what the config names, minus any
/// credentials a URL could carry.
fn endpoint_text(server: &DnsServer, resolved: Option<std::net::SocketAddr>) -> String {
    if let Some(addr) = resolved {
        return addr.to_string();
    }
    match &server.provider {
        DnsProvider::Rfc2136 { host, port, .. } => format!("{host}:{port}"),
        DnsProvider::PowerDns { url, .. } => mailzone_dns::powerdns::api_host(url)
            .map(|(host, port)| format!("{host}:{port}"))
            .unwrap_or_else(|| "PowerDNS API".to_string()),
        DnsProvider::ZoneFile { path, .. } => path.clone(),
        DnsProvider::DnsUpdate { kind, .. } => format!("{kind} API"),
    }
}

/// Whether the provider's requests carry credentials that a successful answer proves
/// accepted. Over RFC 2136 the key signs every request and an answer to a signed request
/// must verify ([`mailzone_dns::rfc2136`]); the HTTP providers send their key or token
/// with every request and a rejected one is an error (401, 403).
fn has_credentials(provider: &DnsProvider) -> bool {
    match provider {
        DnsProvider::Rfc2136 { key, .. } => key.is_some(),
        DnsProvider::PowerDns { .. } => true,
        DnsProvider::ZoneFile { .. } => false,
        DnsProvider::DnsUpdate { settings, .. } => settings
            .values()
            .any(|s| matches!(s, mailzone_records::Setting::Secret(_))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        mailzone_records::config::parse(text, Path::new(".")).unwrap()
    }

    const SERVERS: &str = r#"
[server]
hostname = "mail.example.test"
ipv4 = ["192.0.2.10"]

[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = 5300

[dnsServer.provider]
kind = "rfc2136"
host = "127.0.0.1"
port = 5301

[dnsServer.unused]
kind = "rfc2136"
host = "127.0.0.1"
port = 5302
"#;

    #[test]
    fn the_default_zone_is_the_first_domain_s_then_a_delegation_s() {
        let text = format!(
            r#"{SERVERS}
[domain."manual.test"]

[domain."sub.example.test"]
dnsManagement = {{ automatic = {{ dnsServer = "primary", origin = "example.test" }} }}

[domain."example.test"]
dnsManagement = {{ automatic = {{ dnsServer = "primary" }} }}

[domain."customer.test"]
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"], delegateTo = "dkim.provider.test", delegateDnsServer = "provider" }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary" }} }}
"#
        );
        let config = config(&text);
        let zone = |name| default_zone(&config, name).map(|z| z.as_str().to_string());
        // The first domain's zone (its origin), not its name.
        assert_eq!(zone("primary").as_deref(), Some("example.test"));
        assert_eq!(zone("provider").as_deref(), Some("dkim.provider.test"));
        assert_eq!(zone("unused"), None);
        assert_eq!(zone("nonexistent"), None);
    }
}
