//! The [`Lookup`] of `mailzone check`: its questions go through
//! [`mailzone_dns::resolver::Resolver`] (the given `--nameserver` servers, or each zone's
//! authoritative servers found by an NS walk), with CNAME chains followed in the answer
//! and, when the server did not include the target's records (another zone), by asking
//! again for the target (at most [`MAX_CNAME_CHAIN`] links, loops detected).

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use mailzone_dns::resolver::{MAX_CNAME_CHAIN, Resolver, follow};
pub use mailzone_dns::resolver::{parse_nameserver, parse_resolv_conf};
use mailzone_records::{Name, RData};

use crate::lookup::{Answer, Lookup, LookupError, Rcode};

/// Asks real DNS servers (see the module documentation).
pub struct DnsLookup {
    resolver: Resolver,
}

impl DnsLookup {
    /// Every question to `servers` (a resolver or authoritative servers), in order.
    pub fn with_servers(servers: Vec<SocketAddr>, timeout: Duration) -> DnsLookup {
        DnsLookup {
            resolver: Resolver::with_servers(servers, timeout),
        }
    }

    /// Every question to the authoritative servers of the name's zone, found through
    /// `resolvers`.
    pub fn authoritative(resolvers: Vec<SocketAddr>, timeout: Duration) -> DnsLookup {
        DnsLookup {
            resolver: Resolver::authoritative(resolvers, timeout),
        }
    }

    /// [`DnsLookup::authoritative`], asking the authoritative servers on `port` instead of
    /// 53 (for tests, where every server listens on one loopback port).
    pub fn authoritative_on_port(
        resolvers: Vec<SocketAddr>,
        port: u16,
        timeout: Duration,
    ) -> DnsLookup {
        DnsLookup {
            resolver: Resolver::authoritative_on_port(resolvers, port, timeout),
        }
    }

    /// [`DnsLookup::authoritative`] with the resolvers of `/etc/resolv.conf`.
    pub fn from_system(timeout: Duration) -> Result<DnsLookup, LookupError> {
        Ok(DnsLookup {
            resolver: Resolver::from_system(timeout).map_err(|e| LookupError(e.0))?,
        })
    }
}

#[async_trait]
impl Lookup for DnsLookup {
    async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
        let cname_only = rtype.eq_ignore_ascii_case("CNAME");
        let mut current = name.clone();
        let mut chain: Vec<Name> = Vec::new();
        let mut authenticated = true;
        loop {
            let servers = self
                .resolver
                .servers_for(&current)
                .await
                .map_err(|e| LookupError(e.0))?;
            let response = self
                .resolver
                .ask(&servers, &current, rtype)
                .await
                .map_err(|e| LookupError(e.0))?;
            authenticated &= response.authenticated_data;
            if cname_only {
                let records = response
                    .answers
                    .into_iter()
                    .filter(|l| {
                        l.record.name == current && matches!(l.record.data, RData::Cname(_))
                    })
                    .collect();
                return Ok(Answer {
                    rcode: rcode(&response.rcode),
                    records,
                    cname_chain: chain,
                    authenticated,
                });
            }
            let (records, links) = follow(&response.answers, &current, rtype);
            for link in &links {
                if link == name || chain.contains(link) {
                    return Err(LookupError(format!("CNAME loop at {name} ({link})")));
                }
                chain.push(link.clone());
            }
            if chain.len() > MAX_CNAME_CHAIN {
                return Err(LookupError(format!(
                    "the CNAME chain from {name} is longer than {MAX_CNAME_CHAIN} links"
                )));
            }
            if !records.is_empty() || links.is_empty() {
                return Ok(Answer {
                    rcode: rcode(&response.rcode),
                    records,
                    cname_chain: chain,
                    authenticated,
                });
            }
            // The alias leads out of what this server answered: ask for the target.
            current = chain.last().expect("links were added").clone();
        }
    }

    /// The given servers; in authoritative mode the resolvers (they answer for every zone,
    /// RRSIGs included when asked with DO).
    fn servers(&self) -> Vec<SocketAddr> {
        self.resolver.configured_servers()
    }

    fn servers_for_report(&self, name: &Name) -> Vec<SocketAddr> {
        self.resolver.known_servers_for(name)
    }
}

fn rcode(text: &str) -> Rcode {
    match text {
        "NOERROR" => Rcode::NoError,
        "NXDOMAIN" => Rcode::NxDomain,
        "SERVFAIL" => Rcode::ServFail,
        "REFUSED" => Rcode::Refused,
        other => Rcode::Other(other.to_string()),
    }
}
